"""The `nginx` traffic provider: weighted servers in an upstream block, in a file your nginx
config includes (`include .../upstream.conf;` and `proxy_pass http://pipeline_kit;`).

nginx weights are integers of at least 1, so 0% and 100% are rendered as the one server that
takes everything. The new file is checked with your `test` command (`nginx -t ...`) and applied
with `reload` (`nginx -s reload ...`); if either fails, the previous file is put back and the
error raised: the weight in force is always one the kit knows. nginx quietly fails over from a
dead canary to stable, so a check on the canary's own traffic belongs in the analysis.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path

from pipeline_kit._internal.files import read_regular
from pipeline_kit._internal.fs import atomic_write
from pipeline_kit.errors import EnvironmentFailure, PipelineKitError
from pipeline_kit.traffic.interface import Split, TrafficProvider, run_command

# a `server` directive: its address, then any parameters (weight=, max_fails=, down, backup...)
SERVER = re.compile(r"(?:^|[{;])\s*server\s+([^\s;]+)([^;]*);", re.MULTILINE)
WEIGHT = re.compile(r"weight=(\d{1,6})")
INCLUDE = re.compile(r"(?:^|[{;])\s*include\s", re.MULTILINE)  # servers read from elsewhere
MAX_UPSTREAM_BYTES = 64 * 1024


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

    def weights(self, slots: Mapping[str, str]) -> dict[str, int] | str:
        """The weights in the upstream file nginx loads (whoever wrote it last): a server of no
        slot's address, or a file that cannot be read, is no answer."""
        try:
            text = read_regular(self.path, MAX_UPSTREAM_BYTES).decode("utf-8", errors="replace")
        except (PipelineKitError, OSError) as exc:
            why = exc.message if isinstance(exc, PipelineKitError) else exc.strerror
            return f"{self.path}: cannot read the upstreams ({why})"
        if INCLUDE.search(text):
            return f"{self.path}: an include: the servers it adds are not read"
        servers = [(address, _weight(parameters.split())) for address, parameters in SERVER.findall(text)]
        by_address = {address: slot for slot, address in slots.items()}
        strangers = [address for address, _ in servers if address not in by_address]
        total = sum(weight for _, weight in servers)
        if strangers or total == 0:
            return f"{self.path}: " + (f"a server of no slot ({strangers[0]})" if strangers else "no server")
        weights = dict.fromkeys(slots, 0)
        for address, weight in servers:
            weights[by_address[address]] += weight
        return {slot: round(100 * weight / total) for slot, weight in weights.items()}


def _weight(parameters: list[str]) -> int:
    """A server's weight as nginx gives it: `weight=N` (default 1); `down` serves nothing."""
    if "down" in parameters:
        return 0
    weight = next((m[1] for p in parameters if (m := WEIGHT.fullmatch(p))), None)
    return int(weight or 1)
