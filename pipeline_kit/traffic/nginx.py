"""The `nginx` traffic provider: weighted servers in an upstream block, in a file your nginx
config includes (`include .../upstream.conf;` and `proxy_pass http://pipeline_kit;`).

nginx weights are integers of at least 1, so 0% and 100% are rendered as the one server that
takes everything. The new file is checked with your `test` command (`nginx -t ...`) and applied
with `reload` (`nginx -s reload ...`); if either fails, the previous file is put back and the
error raised: the weight in force is always one the kit knows. nginx quietly fails over from a
dead canary to stable, so a check on the canary's own traffic belongs in the analysis.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from pipeline_kit._internal.fs import atomic_write
from pipeline_kit.errors import EnvironmentFailure
from pipeline_kit.traffic.interface import Split, TrafficProvider, run_command


def render(name: str, split: Split) -> str:
    servers = [(split.stable, 100 - split.weight), (split.canary, split.weight)]
    lines = [f"# written by pipeline-kit: {split.weight}% to {split.canary_slot}", f"upstream {name} {{"]
    lines += [f"    server {address} weight={weight};" for address, weight in servers if weight > 0]
    return "\n".join([*lines, "}"]) + "\n"


class NginxTraffic(TrafficProvider):
    kind = "nginx"

    def __init__(
        self,
        path: Path,
        name: str,
        test: str | Sequence[str] | None,
        reload: str | Sequence[str],
        workdir: Path,
        timeout: float,
    ) -> None:
        self.path = path
        self.name = name
        self.test = test
        self.reload = reload
        self.workdir = workdir
        self.timeout = timeout

    def apply(self, split: Split, env: Mapping[str, str]) -> str:
        previous = self.path.read_bytes() if self.path.is_file() else None
        self.path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(self.path, render(self.name, split).encode())
        for command, what in ((self.test, "nginx config test"), (self.reload, "nginx reload")):
            if command is None:
                continue
            problem = run_command(command, what, self.workdir, env, self.timeout)
            if problem is not None:
                if previous is None:
                    self.path.unlink(missing_ok=True)
                else:
                    atomic_write(self.path, previous)
                raise EnvironmentFailure(f"traffic to {split.weight}%: {problem}; the previous upstreams are back")
        return f"{split.weight}% to {split.canary_slot} ({split.canary}) via nginx upstream {self.name}"
