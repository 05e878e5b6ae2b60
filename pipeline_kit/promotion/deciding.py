"""Deciding: what the gates see (`context_for`), every gate judged (`plan`), and the decision on
a plan judged in this process (`decide`), the only thing a promotion's VSA is signed on."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import InitVar, dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pipeline_kit.digest import sha256_bytes
from pipeline_kit.errors import PipelineKitError
from pipeline_kit.evidence import EvidenceDir
from pipeline_kit.gates import GateResult, PromotionContext, compile_gates, evaluate
from pipeline_kit.ledger import GENESIS, Entry, head, in_flight
from pipeline_kit.models import Release
from pipeline_kit.promotion.finding import forge_attestations, vsa_candidates
from pipeline_kit.promotion.model import (
    Decision,
    GateRecord,
    Project,
    check_environment,
    history,
    now_utc,
    resource_uri,
)
from pipeline_kit.promotion.states import contract_state, schema_states
from pipeline_kit.vsa import LEDGER_INPUT, hold_level, root_cause_level, search

if TYPE_CHECKING:
    from pipeline_kit.stopline import LineState

# Only `plan` and `decide` hold it: a Plan or a Decided cannot be made from a file or a ledger line.
_JUDGED = object()


@dataclass(frozen=True)
class Plan:
    """Every gate of one environment judged on the release, in this process: only `plan` makes one."""

    release: Release
    environment: str
    results: list[GateResult]
    integrity: str | None = None  # why the evidence does not verify; None when it does
    ledger_head: tuple[int, str] = (0, GENESIS)  # (seq, hash) of the last entry the plan read
    unfinished: tuple[Entry, ...] = ()  # promotions to this environment whose deploy never finished
    key: InitVar[object] = None

    def __post_init__(self, key: object) -> None:
        if key is not _JUDGED:
            raise TypeError("a Plan is made by plan(), which judges every gate in this process")

    @property
    def passed(self) -> bool:
        return all(r.verdict == "passed" for r in self.results)

    def blocking(self) -> list[GateResult]:
        return [r for r in self.results if r.verdict != "passed"]


def context_for(
    project: Project, environment: str, release: Release, entries: Sequence[Entry], now: datetime | None = None
) -> PromotionContext:
    """Everything the gates need; verification problems become data the gates deny on."""
    from pipeline_kit.trust import TrustRootUnavailable
    from pipeline_kit.verify import SourceExpectation, projected_release, verify_release

    trust = project.trust
    files = project.workdir if project.files_here else None
    verification, problem = None, trust.unverified
    if problem is None and trust.policy is None:
        problem = "no identity policy (signing.identity or --cert-identity/--cert-oidc-issuer)"
    elif trust.projected and trust.policy is not None:
        expected = SourceExpectation(trust.repository, trust.ref)
        verification, problem = projected_release(project.evidence, files, trust.policy, expected), None
    elif problem is None and trust.policy is not None:
        try:
            verification = verify_release(
                project.evidence,
                files,
                trust.policy,
                trust.load(),
                SourceExpectation(trust.repository, trust.ref),
            )
        except TrustRootUnavailable:
            raise  # one clear error, not the same failure in every gate
        except PipelineKitError as exc:
            problem = exc.message
    after = project.config.environments[environment].after
    upstream = holds = upstream_holds = root_causes = None
    if trust.policy is not None and trust.unverified is None and not trust.projected:
        kept = forge_attestations(project, release)  # one listing serves every search
        if after is not None:
            candidates, looked = vsa_candidates(project, release, after, entries, kept)
            uri = resource_uri(project.config, after)
            upstream = search(after, candidates, looked, release, uri, trust.policy, trust.load())
            candidates, looked = vsa_candidates(project, release, after, entries, kept, kind="hold")
            upstream_holds = search(
                after, candidates, looked, release, uri, trust.policy, trust.load(), hold_level(after)
            )
        candidates, looked = vsa_candidates(project, release, environment, entries, kept, kind="hold")
        uri = resource_uri(project.config, environment)
        holds = search(
            environment, candidates, looked, release, uri, trust.policy, trust.load(), hold_level(environment)
        )
        candidates, looked = vsa_candidates(project, release, environment, entries, kept, kind="root-cause")
        root_causes = search(
            environment, candidates, looked, release, uri, trust.policy, trust.load(), root_cause_level(environment)
        )
    schemas = contracts = None
    # what the environments run: a dry run reads it as CI will, with only the signatures on trust
    judged = trust.policy is not None and trust.unverified is None
    if judged and project.config.migrations is not None and _declares_contract_steps(project.evidence):
        schemas = schema_states(project, entries)
    if judged and not trust.projected and project.config.contracts is not None:
        contracts = contract_state(project, release, environment, entries)
    return PromotionContext(
        release=release,
        environment=environment,
        config=project.config,
        evidence=project.evidence,
        workdir=project.workdir,
        history=entries,
        now=now or now_utc(),
        actor=project.actor,
        verification=verification,
        verification_problem=problem,
        forge=project.forge,
        upstream=upstream,
        holds=holds,
        root_causes=root_causes,
        upstream_holds=upstream_holds,
        projected=trust.projected,
        schemas=schemas,
        contracts=contracts,
        line=org_line(project, entries),
    )


def org_line(project: Project, entries: Sequence[Entry]) -> LineState | None:
    """The org's line, read for this project (None without `org:`, or when nothing can be
    verified here: the stop-the-line gate denies on it). A dry run takes the statements'
    signatures on trust, as it does the evidence's."""
    from pipeline_kit.stopline import last_seen, read_line

    trust = project.trust
    if project.config.org is None or trust.unverified is not None:
        return None
    trust_config = None if trust.projected else trust.load()
    return read_line(project.config.org, project.workdir, trust_config, last_seen(entries))


def require_line(project: Project, what: str) -> None:
    """Refuse (`LineStopped`, exit 1) to start `what` while the org's line is stopped, or cannot be
    read or verified here."""
    if project.config.org is None:
        return
    from pipeline_kit.stopline import RESUME_HINT, LineStopped

    line = org_line(project, history(project.ledger))
    if line is None or not line.running:
        why = line.summary() if line is not None else "the org's line cannot be verified here"
        raise LineStopped(f"{what} not started: {why}", hint=RESUME_HINT)


def plan(project: Project, environment: str, now: datetime | None = None, completing: int | None = None) -> Plan:
    """Evaluate every gate exactly as promote would, recording nothing. `completing`: the seq of
    the decision this plan completes (an arrival), which is no unfinished promotion of its own."""
    check_environment(project.config, environment)
    gates = compile_gates(project.config, environment)
    release = project.evidence.load_release()
    entries = history(project.ledger)
    context = context_for(project, environment, release, entries, now)
    unfinished = tuple(e for e in in_flight(entries, environment) if e.seq != completing)
    return Plan(release, environment, evaluate(gates, context), _integrity(context), head(entries), unfinished, _JUDGED)


def _integrity(context: PromotionContext) -> str | None:
    """Why the evidence itself fails (signatures, provenance, SBOM attestation, source), if it does."""
    if context.verification is None:
        return context.verification_problem or "the evidence was not verified"
    return context.verification.first_failure()


def _declares_contract_steps(evidence: EvidenceDir) -> bool:
    """Whether the release's migration record declares expand steps; a record that cannot be read
    says nothing here (the migrations gate denies it as not the one the provenance signed)."""
    from pipeline_kit.migrations import load_record

    try:
        return bool(load_record(evidence).get("expand_steps"))
    except PipelineKitError:
        return False


def effective_policy(project: Project) -> dict[str, Any]:
    """What a promotion was judged by: the config file, and the identity and source policy actually
    applied, naming whatever flags or variables changed from the config's."""
    config, trust = project.config, project.trust
    identity = None
    if trust.policy is not None:
        policy = trust.policy
        identity = {"issuer": policy.issuer, "san": policy.san, "sanRegex": policy.san_regex}
        if policy.caller_regex is not None:
            identity["callerRegex"] = policy.caller_regex
    source = {"repository": trust.repository, "ref": trust.ref}
    configured = config.signing.identity
    from_config = {
        "issuer": configured.issuer if configured else None,
        "san": configured.san if configured else None,
        "sanRegex": configured.san_regex if configured else None,
        "callerRegex": configured.caller_regex if configured else None,
        "repository": configured.repository if configured else None,
        "ref": configured.ref if configured else None,
    }
    applied = {"callerRegex": None, **(identity or dict.fromkeys(("issuer", "san", "sanRegex"))), **source}
    return {
        "uri": Path(config.source_path or "pipeline-kit.yml").name,
        "sha256": config.source_sha256 or "",
        "identity": identity,
        "source": source,
        "overrides": sorted(key for key, value in applied.items() if value != from_config[key]),
    }


def ledger_input(seq: int, entry_hash: str) -> dict[str, Any]:
    """The inputAttestations entry committing a signed decision to the ledger head it was made on."""
    return {"name": LEDGER_INPUT, "digest": {"sha256": entry_hash}, "annotations": {"seq": seq}}


def input_attestations(evidence: EvidenceDir, release: Release) -> list[dict[str, Any]]:
    from pipeline_kit.signing import PROVENANCE_BUNDLE, SBOM_BUNDLE, subject_bundle

    names = [subject_bundle(s.name) for s in release.subjects] + [PROVENANCE_BUNDLE, SBOM_BUNDLE]
    return [
        {"uri": name, "digest": {"sha256": sha256_bytes(evidence.path(name).read_bytes())}}
        for name in names
        if evidence.path(name).is_file()
    ]


@dataclass(frozen=True)
class Decided:
    """A decision taken in this process on a plan judged in this process: the only thing a
    promotion's VSA is signed on (`records.sign_vsa`). Only `decide` makes one."""

    plan: Plan
    decision: Decision
    key: InitVar[object]

    def __post_init__(self, key: object) -> None:
        if key is not _JUDGED:
            raise TypeError("a Decided is made by decide() on a plan judged in this process")

    @property
    def release(self) -> Release:
        return self.plan.release

    @property
    def environment(self) -> str:
        return self.plan.environment


def decide(
    project: Project,
    result: Plan,
    verdict: Literal["passed", "denied", "waived"],
    reason: str | None,
    purpose: Literal["promotion", "reconcile"] = "promotion",
) -> Decided:
    """The decision on `result`, a plan judged in this process (`Plan` is made by `plan` alone).
    It commits to the ledger it was made on: truncating or rewriting the ledger up to here no
    longer matches a signed VSA (`ledger verify`). A verdict the plan does not support is refused:
    passed needs every gate passed, waived a plan whose evidence verifies."""
    if verdict == "passed" and not result.passed:
        raise ValueError("a passed decision needs every gate passed")
    if verdict == "waived" and (result.passed or result.integrity is not None):
        raise ValueError("a waiver is for a plan that failed a policy gate, with evidence that verifies")
    release = result.release
    inputs = [*input_attestations(project.evidence, release), ledger_input(*result.ledger_head)]
    decision = Decision(
        release=release.id,
        subjects={s.name: s.sha256 for s in release.subjects},
        environment=result.environment,
        verdict=verdict,
        gates=tuple(
            GateRecord(gate=r.gate, verdict=r.verdict, reason=r.reason, evidence=r.evidence, duration_ms=r.duration_ms)
            for r in result.results
        ),
        actor=project.actor,
        time=now_utc(),
        reason=reason,
        break_glass=verdict == "waived",
        purpose=purpose,
        policy=effective_policy(project),
        input_attestations=tuple(inputs),
    )
    return Decided(result, decision, _JUDGED)
