"""What a kill switch is: a named feature flag the kit can turn off in one environment (the first
step of a rollback: faster than a redeploy) and turn back on by hand."""

from __future__ import annotations

from abc import ABC, abstractmethod


class KillSwitches(ABC):
    kind: str

    @abstractmethod
    def kill(self, flag: str, environment: str) -> str:
        """Turn `flag` off in `environment`; returns what changed, in words. Raises on failure."""

    @abstractmethod
    def restore(self, flag: str, environment: str) -> str:
        """Undo a kill; returns what changed. Raises on failure or when the flag was not killed."""
