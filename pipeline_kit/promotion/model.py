"""The promotion's model: where promotions happen (`Project`), what a decision records, what a
plan and a promotion are, and the few facts every use case shares."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from pipeline_kit.config import Config
from pipeline_kit.errors import UsageError
from pipeline_kit.evidence import PROMOTIONS_DIR, EvidenceDir
from pipeline_kit.forge import Forge
from pipeline_kit.identity import KIT_REPOSITORY
from pipeline_kit.ledger import Entry, Ledger
from pipeline_kit.models import Model
from pipeline_kit.trust import Trust

KIT_URI = f"https://github.com/{KIT_REPOSITORY}"


TokenProvider = Callable[[], tuple[str, str]]


def decision_file(environment: str) -> str:
    return f"{PROMOTIONS_DIR}/{environment}.decision.json"


def resource_uri(config: Config, environment: str) -> str:
    """What the VSA is about: the environment's URL, or a URN naming the environment."""
    return config.environments[environment].url or f"urn:pipeline-kit:environment:{environment}"


class GateRecord(Model):
    gate: str
    verdict: Literal["passed", "denied", "error"]
    reason: str
    evidence: dict[str, Any] = Field(default_factory=dict)
    duration_ms: int


class Decision(Model):
    """promotions/ENV.decision.json: what was decided, on what grounds, by whom, when."""

    schema_: Literal["pipeline-kit/decision/v1"] = Field(default="pipeline-kit/decision/v1", alias="schema")
    release: str
    subjects: dict[str, str]
    environment: str
    verdict: Literal["passed", "denied", "waived"]
    gates: tuple[GateRecord, ...]
    actor: str
    time: datetime
    reason: str | None = None
    break_glass: bool = False
    purpose: Literal["promotion", "reconcile"] = "promotion"  # reconcile: the signed release put back after a drift
    policy: dict[str, Any]  # the policy applied: config file digest, identity and source, overrides
    input_attestations: tuple[dict[str, Any], ...] = ()


@dataclass(frozen=True)
class Project:
    """Where promotions happen: the config, the evidence, the working directory, the ledger,
    whom to trust, and who acts."""

    config: Config
    evidence: EvidenceDir
    workdir: Path
    ledger: Ledger
    trust: Trust
    actor: str
    forge: Forge | None = None  # where deployments, statuses and attestations are also recorded
    # whether the subjects' files under `workdir` are the evidence's release (False: a release
    # promoted again from its archive, whose files there are another build's: checked by digest)
    files_here: bool = True


def now_utc() -> datetime:
    return datetime.now(timezone.utc).replace(microsecond=0)


def refuse_command_elsewhere(deploy: object) -> None:
    """A promotion or rollback deployed by another job takes no deploy command here: whatever
    runs here runs beside the signing identity."""
    if deploy:
        raise UsageError("--deploy-elsewhere takes no deploy command: the deploy runs in another job")


def check_environment(config: Config, environment: str) -> None:
    if environment not in config.environments:
        known = ", ".join(config.environment_order()) or "none configured"
        raise UsageError(f"unknown environment {environment!r} (environments: {known})")


def history(ledger: Ledger) -> list[Entry]:
    """The ledger's entries, verified: a broken chain stops every promotion (exit 1)."""
    return ledger.verify()


def require_environment(config: Config | None) -> Config:
    if config is None or not config.environments:
        raise UsageError("no environments configured", hint="add an `environments:` section to pipeline-kit.yml")
    return config
