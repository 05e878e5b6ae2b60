"""What every CI platform provider gives the kit: one `CIContext` describing the run."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar

from pipeline_kit.models import Platform


@dataclass(frozen=True)
class SignerIdentity:
    """The certificate identity a keyless signature made in this context will carry."""

    issuer: str
    san: str
    token_source: str
    note: str | None = None
    source: str | None = None  # the Source Repository URI the certificate will name
    caller: str | None = None  # its Build Config URI: the top-level workflow at its ref


@dataclass(frozen=True)
class CIContext:
    platform: Platform
    repository: str | None
    commit: str | None
    ref: str | None
    actor: str | None
    builder_id: str
    invocation_uri: str | None
    started_on: datetime | None
    builder_version: Mapping[str, str]
    external_parameters: Mapping[str, Any]
    internal_parameters: Mapping[str, Any]
    # None when run by a person: a local signature carries whatever identity they sign in with.
    signer: SignerIdentity | None
    notes: tuple[str, ...] = field(default_factory=tuple)


def pick(env: Mapping[str, str], names: Iterable[tuple[str, str]]) -> dict[str, str]:
    """`{key: env[VAR]}` for each (key, VAR) pair whose variable is set and non-empty."""
    return {key: env[var] for key, var in names if env.get(var)}


class Reporter:
    """The local (no CI) reporter: outputs go nowhere, messages are plain."""

    def outputs(self, values: Mapping[str, str]) -> None:
        """Publish step outputs (kebab-case names)."""

    def summary(self, markdown: str) -> None:
        """Add Markdown to the job summary."""

    def error_line(self, message: str, file: str | None = None) -> str:
        return f"error: {message}"

    def mask(self, secret: str) -> str | None:
        """The line that tells the platform to hide `secret` from logs, if it has one."""
        return None


class CIPlatform(ABC):
    name: ClassVar[Platform]

    @staticmethod
    @abstractmethod
    def detects(env: Mapping[str, str]) -> bool:
        """True when `env` is this platform's job environment."""

    @abstractmethod
    def context(self, env: Mapping[str, str], workdir: Path) -> CIContext: ...

    def reporter(self, env: Mapping[str, str], workdir: Path) -> Reporter:
        """How this platform takes step outputs, summaries and annotations."""
        return Reporter()
