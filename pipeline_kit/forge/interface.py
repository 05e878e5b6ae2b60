"""What the kit asks of a forge (GitHub, GitLab): record deployments and commit statuses, keep
attestations, and answer the questions gates ask (who approved, which freeze periods exist).

Every failure (an HTTP error, a rate limit, a timeout, an unexpected answer) is a ForgeError; a
gate that asked turns it into `error`, which denies: a forge that cannot be asked never passes.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from pipeline_kit.errors import EnvironmentFailure

DeploymentState = Literal["in_progress", "success", "failure"]


class ForgeError(EnvironmentFailure):
    """The forge could not be asked or refused."""


@dataclass(frozen=True)
class Approvals:
    """Who approved the change being promoted, and who wrote it."""

    approvers: tuple[str, ...]
    authors: tuple[str, ...]
    source: str  # what was asked, e.g. "pull request #12 reviews"
    rejected: tuple[str, ...] = ()  # whoever's last word was a rejection: that stands, and denies
    stale: tuple[str, ...] = ()  # approved an earlier head than the one merged: not counted


@dataclass(frozen=True)
class CommitCheck:
    """A check or status the forge holds for a commit, reduced to what a gate needs."""

    name: str
    state: Literal["success", "failure", "pending"]
    detail: str


@dataclass(frozen=True)
class DeploymentRecord:
    """A deployment the forge remembers: what went where, when, and how it ended."""

    environment: str
    release: str | None  # the release id from the deployment's payload (GitHub)
    sha: str
    state: str  # the forge's last word: success, failure, in_progress, ...
    time: datetime  # when it reached that state


@dataclass(frozen=True)
class FreezePeriod:
    start_cron: str
    end_cron: str
    timezone: str


class Forge(ABC):
    name: str

    @abstractmethod
    def describe(self) -> str:
        """The project on the forge, for messages."""

    @abstractmethod
    def start_deployment(self, environment: str, sha: str, ref: str | None, payload: dict[str, object]) -> str:
        """Create a deployment of `sha` to `environment` (in progress); returns its id."""

    @abstractmethod
    def finish_deployment(self, deployment_id: str, environment: str, state: DeploymentState, description: str) -> None:
        """Record how a deployment ended."""

    @abstractmethod
    def commit_status(self, sha: str, state: Literal["success", "failure"], context: str, description: str) -> None:
        """Mark a commit with the outcome of a promotion."""

    def upload_attestation(self, bundle: bytes) -> str | None:
        """Store a Sigstore bundle with the forge, if it keeps attestations; returns its id."""
        return None

    def attestations(self, sha256: str) -> list[bytes]:
        """Sigstore bundles the forge keeps about a subject digest (none where it keeps none)."""
        return []

    @abstractmethod
    def approvals(self, sha: str, environment: str) -> Approvals:
        """Who approved the change that produced `sha`, and its promotion to `environment`."""

    @abstractmethod
    def commit_checks(self, sha: str) -> list[CommitCheck]:
        """The checks and statuses the forge records for `sha`."""

    @abstractmethod
    def deployments(self, environment: str) -> list[DeploymentRecord]:
        """The most recent deployments to `environment` (newest first): history that outlives any
        one pipeline, for the previous-stage gate."""

    def freeze_periods(self) -> list[FreezePeriod]:
        """Freeze periods the forge defines for the project (none where it has no such notion)."""
        return []
