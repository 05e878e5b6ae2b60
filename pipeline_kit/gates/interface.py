"""What a gate is: a check of one promotion, returning passed, denied or error with a reason.

A gate gets everything through the `PromotionContext` (release, environment, config, evidence,
ledger history, the evidence verification, the clock), so gates never import use cases and can
be tested with real backends swapped in. The engine turns an exception or a timeout into an
`error`, and any `error` denies: gates fail closed.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import Field

from pipeline_kit.config import Config
from pipeline_kit.config.base import ConfigModel
from pipeline_kit.evidence import RELEASE_FILE, EvidenceDir
from pipeline_kit.forge import Forge
from pipeline_kit.ledger import Entry
from pipeline_kit.models import Release

if TYPE_CHECKING:
    from pipeline_kit.contracts import ContractState
    from pipeline_kit.stopline import LineState
    from pipeline_kit.verify import Check, Verification
    from pipeline_kit.vsa import Search

Verdict = Literal["passed", "denied", "error"]


class Options(ConfigModel):
    """A gate's options, written kebab-case in the config; unknown keys are errors."""

    # seconds before the gate counts as an error: a number (not true/false), finite, at most a day
    timeout: float = Field(default=60.0, gt=0, le=86400, strict=True, allow_inf_nan=False)


@dataclass(frozen=True)
class Outcome:
    verdict: Verdict
    reason: str
    evidence: dict[str, Any] = field(default_factory=dict)


def passed(reason: str, **evidence: Any) -> Outcome:
    return Outcome("passed", reason, evidence)


def denied(reason: str, **evidence: Any) -> Outcome:
    return Outcome("denied", reason, evidence)


def error(reason: str, **evidence: Any) -> Outcome:
    return Outcome("error", reason, evidence)


def deferred(reason: str) -> Outcome:
    """A dry run's answer for what only CI can judge (a VSA from the environment before, the
    forge's records): no objection here, and says what CI will decide on. Only a projected
    context (see `PromotionContext.projected`) ever produces one."""
    return Outcome("passed", f"in CI: {reason}", {"deferred": True})


@dataclass(frozen=True)
class GateResult:
    gate: str
    verdict: Verdict
    reason: str
    evidence: dict[str, Any]
    duration_ms: int


@dataclass(frozen=True)
class PromotionContext:
    release: Release
    environment: str
    config: Config
    evidence: EvidenceDir
    workdir: Path
    history: Sequence[Entry]
    now: datetime
    actor: str
    verification: Verification | None = None
    verification_problem: str | None = None  # why the evidence could not be verified at all
    forge: Forge | None = None
    upstream: Search | None = None  # the signed VSAs showing the `after:` environment passed this release
    holds: Search | None = None  # signed rollbacks of this release out of this environment
    root_causes: Search | None = None  # signed root causes, each lifting a hold older than it
    upstream_holds: Search | None = None  # signed rollbacks of this release out of the `after:` one
    # a dry run's projection: the unsigned evidence judged as CI will judge it once signed by the
    # policy's identity (`verify.projected_release`); what only CI can know is `deferred`
    projected: bool = False
    # environment -> (the release it runs, the migration files its signed record has, or why that
    # cannot be shown): what the migrations gate judges a contract step by
    schemas: dict[str, tuple[str | None, frozenset[str] | None, str]] | None = None
    # this release's contracts and verifications and its peers' in this environment, from signed
    # evidence: what the contracts gate judges (None when not computed)
    contracts: ContractState | None = None
    # the org's line as its verified statements show it, read before the gates run (None: not
    # read, which the stop-the-line gate denies when the config has `org:`)
    line: LineState | None = None

    def checks_for(self, *targets: str) -> list[Check]:
        if self.verification is None:
            return []
        return [c for c in self.verification.checks if c.target in targets]


def from_verification(context: PromotionContext, targets: list[str], what: str) -> Outcome | None:
    """The error or denial the evidence verification gives for `targets`; None if all passed."""
    from pipeline_kit.verify import first_failure

    if context.verification is None:
        return error(f"evidence not verified: {context.verification_problem}")
    checks = context.checks_for(*targets)
    if not checks:
        return error(f"{what} was not verified")
    failure = first_failure(checks)
    if failure:
        return denied(failure, failed=[c.target for c in checks if not c.ok])
    return None


def forge_and_commit(context: PromotionContext, purpose: str) -> tuple[Forge, str] | Outcome:
    """The forge and the commit to ask about: the signed provenance's, never release.json's copy
    (a job could point the forge gates at a well-reviewed commit it was not built from)."""
    if context.forge is None:
        if context.projected:
            return deferred(f"asks the forge for {purpose} of the signed commit")
        return error(f"no forge to ask for {purpose} (run in CI, or configure `forge:`)")
    if context.verification is None:
        return error(f"evidence not verified: {context.verification_problem}")
    commit = context.verification.commit
    if not commit:
        return error(f"the signed provenance names no source commit: nothing to look up {purpose} for")
    mismatch = [c for c in context.checks_for(RELEASE_FILE) if not c.ok]
    if mismatch:
        return error(f"release.json: {mismatch[0].detail}")
    return context.forge, commit


class Gate(ABC):
    name: ClassVar[str]
    options_model: ClassVar[type[Options]] = Options

    def __init__(self, options: Options) -> None:
        self.options = options

    @property
    def timeout(self) -> float:
        return self.options.timeout

    def config_problem(self, config: Config) -> str | None:
        """What the gate's options ask of the rest of the config that it lacks (checked at load)."""
        return None

    @abstractmethod
    def evaluate(self, context: PromotionContext) -> Outcome:
        """Judge the promotion; raising is allowed and counts as an error (deny)."""
