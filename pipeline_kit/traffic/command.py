"""The `command` traffic provider: your command sets the weight (a load balancer API, a service
mesh, a cloud CLI). It gets PIPELINE_KIT_CANARY_WEIGHT (0-100) and the slots' names and
addresses, in a scrubbed environment; exit 0 means the weight is in effect."""

from __future__ import annotations

import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from pipeline_kit.errors import EnvironmentFailure, first_line
from pipeline_kit.traffic.interface import Split, TrafficProvider


class CommandTraffic(TrafficProvider):
    kind = "command"

    def __init__(self, command: str | Sequence[str], workdir: Path, timeout: float) -> None:
        self.command = command
        self.workdir = workdir
        self.timeout = timeout

    def apply(self, split: Split, env: Mapping[str, str]) -> str:
        try:
            done = subprocess.run(
                self.command,
                shell=isinstance(self.command, str),
                cwd=self.workdir,
                env={**env, **split.variables()},
                capture_output=True,
                text=True,
                timeout=self.timeout,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise EnvironmentFailure(f"traffic command for weight {split.weight}: {first_line(exc)}") from exc
        if done.returncode != 0:
            tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or [f"exit code {done.returncode}"]
            raise EnvironmentFailure(f"traffic command for weight {split.weight} failed: {tail[0]}")
        return f"{split.weight}% to {split.canary_slot} ({split.canary}) by the traffic command"
