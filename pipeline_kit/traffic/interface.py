"""What a traffic provider is: it sends `weight` percent of requests to the canary slot and the
rest to the stable one, and says what it did. A failure raises (EnvironmentFailure): a rollout
never assumes a weight it could not set."""

from __future__ import annotations

import subprocess
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from pipeline_kit._internal.proc import run_bounded
from pipeline_kit.errors import first_line


@dataclass(frozen=True)
class Split:
    stable_slot: str
    stable: str  # address, host:port
    canary_slot: str
    canary: str
    weight: int  # percent of requests to the canary, 0-100

    def variables(self) -> dict[str, str]:
        """What a command learns of the split (the traffic command, the deploy command)."""
        return {
            "PIPELINE_KIT_CANARY_WEIGHT": str(self.weight),
            "PIPELINE_KIT_STABLE_SLOT": self.stable_slot,
            "PIPELINE_KIT_STABLE_ADDRESS": self.stable,
            "PIPELINE_KIT_CANARY_SLOT": self.canary_slot,
            "PIPELINE_KIT_CANARY_ADDRESS": self.canary,
        }


class TrafficProvider(ABC):
    kind: str

    @abstractmethod
    def apply(self, split: Split, env: Mapping[str, str]) -> str:
        """Set the split; `env` is the scrubbed environment for any child process."""

    def weights(self, slots: Mapping[str, str]) -> dict[str, int] | str:
        """The percent of requests each of `slots` (slot -> address) gets now, as far as the
        provider can tell without running a program; else why not (`drift` then asks its probe)."""
        return f"the {self.kind} traffic provider cannot say which weights are in force"


def run_command(
    command: str | Sequence[str], what: str, workdir: Path, env: Mapping[str, str], timeout: float
) -> str | None:
    """Run a provider's command (a string through /bin/sh, or a list); None when it exited 0,
    else why not, in one line (its last line of output). A command that times out is killed with
    everything it started before this returns: nothing it began sets a weight afterwards."""
    try:
        done = run_bounded(command, cwd=workdir, env=env, timeout=timeout, text=True)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"{what}: {first_line(exc)}"
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or [f"exit code {done.returncode}"]
        return f"{what} failed: {tail[0]}"
    return None
