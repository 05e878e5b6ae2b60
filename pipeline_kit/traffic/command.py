"""The `command` traffic provider: your command sets the weight (a load balancer API, a service
mesh, a cloud CLI). It gets PIPELINE_KIT_CANARY_WEIGHT (0-100) and the slots' names and
addresses, in a scrubbed environment; exit 0 means the weight is in effect."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from pipeline_kit.errors import EnvironmentFailure
from pipeline_kit.traffic.interface import Split, TrafficProvider, run_command


class CommandTraffic(TrafficProvider):
    kind = "command"

    def __init__(self, command: str | Sequence[str], workdir: Path, timeout: float) -> None:
        self.command = command
        self.workdir = workdir
        self.timeout = timeout

    def apply(self, split: Split, env: Mapping[str, str]) -> str:
        what = f"traffic command for weight {split.weight}"
        problem = run_command(self.command, what, self.workdir, {**env, **split.variables()}, self.timeout)
        if problem is not None:
            raise EnvironmentFailure(problem)
        return f"{split.weight}% to {split.canary_slot} ({split.canary}) by the traffic command"
