"""Promotion: plan, promote and roll back the same digest through the configured environments.

promote = verify the evidence, evaluate every gate (concurrently, each with a timeout), write
the decision, sign a SLSA VSA for the environment, append to the ledger, and only then deploy.
Every step that can fail closed does: a gate error denies, a ledger that does not verify stops
everything, a VSA that cannot be signed means nothing was promoted.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field

from pipeline_kit import __version__
from pipeline_kit._internal.proc import run_streaming
from pipeline_kit.config import Config
from pipeline_kit.digest import sha256_bytes
from pipeline_kit.errors import BuildFailed, EnvironmentFailure, PipelineKitError, UsageError, VerificationError
from pipeline_kit.evidence import ARCHIVE_DIR, PROMOTIONS_DIR, EvidenceDir
from pipeline_kit.forge import DeploymentState, Forge
from pipeline_kit.gates import GateResult, PromotionContext, compile_gates, evaluate
from pipeline_kit.gates.command import release_environment
from pipeline_kit.ledger import GENESIS, Draft, Entry, Ledger, arrived, head, in_flight
from pipeline_kit.models import Model, Release, Subject, check_release_id, release_id, release_id_of
from pipeline_kit.signing import Signable, sign_all, statement_json
from pipeline_kit.trust import Trust
from pipeline_kit.vsa import (
    ANALYSIS_PASSED,
    LEDGER_INPUT,
    VSA_PREDICATE,
    WAIVED,
    Accepted,
    Candidate,
    analysis_file,
    distinct,
    hold_bundle,
    hold_level,
    read_bundles,
    root_cause_bundle,
    root_cause_level,
    search,
    verified,
    vsa_bundle,
)

if TYPE_CHECKING:
    from pipeline_kit.analysis import Analysis, Result
    from pipeline_kit.contracts import ContractState
    from pipeline_kit.rollout import Outcome as RolloutOutcome
    from pipeline_kit.verify import Custody

KIT_URI = "https://github.com/pipeline-kit/pipeline-kit"

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


@dataclass(frozen=True)
class Plan:
    release: Release
    environment: str
    results: list[GateResult]
    integrity: str | None = None  # why the evidence does not verify; None when it does
    ledger_head: tuple[int, str] = (0, GENESIS)  # (seq, hash) of the last entry the plan read
    unfinished: tuple[Entry, ...] = ()  # promotions to this environment whose deploy never finished

    @property
    def passed(self) -> bool:
        return all(r.verdict == "passed" for r in self.results)

    def blocking(self) -> list[GateResult]:
        return [r for r in self.results if r.verdict != "passed"]


@dataclass(frozen=True)
class Promotion:
    plan: Plan
    decision: Decision
    entry: Entry
    deployed: bool | None  # None: no deploy command
    break_glass_refused: str | None = None  # the integrity failure a --break-glass could not waive
    analysis: Analysis | None = None  # the analysis after the deploy, when the environment has one
    aftermath: tuple[str, ...] = ()  # what a failed analysis did: kill switches, the rollback
    rollout: RolloutOutcome | None = None  # the strategy's steps, when the environment has one


def _now() -> datetime:
    return datetime.now(timezone.utc).replace(microsecond=0)


def _check_environment(config: Config, environment: str) -> None:
    if environment not in config.environments:
        known = ", ".join(config.environment_order()) or "none configured"
        raise UsageError(f"unknown environment {environment!r} (environments: {known})")


def history(ledger: Ledger) -> list[Entry]:
    """The ledger's entries, verified: a broken chain stops every promotion (exit 1)."""
    return ledger.verify()


def context_for(
    project: Project, environment: str, release: Release, entries: Sequence[Entry], now: datetime | None = None
) -> PromotionContext:
    """Everything the gates need; verification problems become data the gates deny on."""
    from pipeline_kit.trust import TrustRootUnavailable
    from pipeline_kit.verify import SourceExpectation, projected_release, verify_release

    trust = project.trust
    verification, problem = None, trust.unverified
    if problem is None and trust.policy is None:
        problem = "no identity policy (signing.identity or --cert-identity/--cert-oidc-issuer)"
    elif trust.projected and trust.policy is not None:
        expected = SourceExpectation(trust.repository, trust.ref)
        verification, problem = projected_release(project.evidence, project.workdir, trust.policy, expected), None
    elif problem is None and trust.policy is not None:
        try:
            verification = verify_release(
                project.evidence,
                project.workdir,
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
    judged = trust.policy is not None and trust.unverified is None and not trust.projected
    if judged and project.config.migrations is not None and _declares_contract_steps(project.evidence):
        schemas = schema_states(project, entries)
    if judged and project.config.contracts is not None:
        contracts = contract_state(project, release, environment, entries)
    return PromotionContext(
        release=release,
        environment=environment,
        config=project.config,
        evidence=project.evidence,
        workdir=project.workdir,
        history=entries,
        now=now or _now(),
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
    )


def audit(ledger: Ledger, evidence: EvidenceDir, trust: Trust) -> tuple[list[Entry], list[str]]:
    """The ledger's entries (chain verified), and every way it contradicts a signed decision.

    Each VSA commits to the ledger head it was decided on, and each promotion's entry names its
    VSA. So a ledger truncated, rewritten or missing an entry up to the last signed decision no
    longer matches a VSA kept elsewhere (the ledger's attachments, the evidence dir and its
    archives). After the last signed decision, an unkeyed chain cannot tell.
    """
    from sigstore.verify import Verifier

    from pipeline_kit.vsa import signed_statement

    if trust.policy is None:
        raise UsageError("no identity policy to verify the ledger's signed decisions with")
    entries = history(ledger)
    verifier = Verifier(trusted_root=trust.load().trusted_root)
    referenced = {e.details["vsa"]: e for e in entries if isinstance(e.details.get("vsa"), str)}
    found: dict[str, Candidate] = {}
    for digest, entry in referenced.items():
        data = ledger.attachment(digest)
        if data is not None:
            found[digest] = Candidate(f"ledger seq {entry.seq}'s VSA", data)
    root = evidence.root
    seen = {distinct(candidate) for candidate in found.values()}
    for candidate in read_bundles(
        [*root.glob("promotions/*.vsa.sigstore.json"), *root.glob("releases/*/promotions/*.vsa.sigstore.json")]
    ):
        if distinct(candidate) not in seen:  # a copy with other whitespace is the same decision
            seen.add(distinct(candidate))
            found.setdefault(sha256_bytes(candidate.data), candidate)
    problems = [
        f"ledger seq {entry.seq}: its VSA ({digest[:12]}) is in neither the ledger nor the evidence dir"
        for digest, entry in referenced.items()
        if digest not in found
    ]
    hashes = [GENESIS, *(e.hash for e in entries)]
    for digest, candidate in found.items():
        signed = signed_statement(candidate, trust.policy, verifier)
        if isinstance(signed, str):
            if digest in referenced:  # a stray unverifiable file is not the ledger's; a referenced one is
                problems.append(f"{candidate.where}: {signed}")
            continue
        decided = signed.ledger_head
        if decided is None:
            continue  # decided before VSAs named the ledger head
        seq, head_hash = decided
        if seq >= len(hashes):
            problems.append(
                f"{candidate.where}: decided on ledger seq {seq}, but the ledger has {len(entries)} entries: truncated"
            )
        elif hashes[seq] != head_hash:
            problems.append(f"{candidate.where}: ledger seq {seq} is not the entry it was decided on: rewritten")
        elif digest not in referenced:
            problems.append(f"{candidate.where}: the ledger has no entry for this signed decision: dropped")
    return entries, problems


def custody(project: Project, environment: str) -> Custody:
    """What `verify --env ENV` checks: a signed PASSED VSA for ENV and every environment before it,
    found where a promotion would look."""
    from pipeline_kit.verify import Custody

    _check_environment(project.config, environment)
    chain = (environment, *project.config.upstream(environment))
    release = project.evidence.load_release()
    entries = history(project.ledger)
    kept = forge_attestations(project, release)
    return Custody(
        chain,
        {env: resource_uri(project.config, env) for env in chain},
        lambda env: vsa_candidates(project, release, env, entries, kept),
    )


def forge_attestations(project: Project, release: Release) -> tuple[list[Candidate], str | None]:
    """The Sigstore bundles the forge keeps about the release's first subject, and where they came
    from (None: no forge). An unreadable forge is noted, not fatal: other stores may hold the VSA."""
    from pipeline_kit.forge import ForgeError

    if project.forge is None:
        return [], None
    where = f"{project.forge.describe()} attestations"
    try:
        return [Candidate(where, data) for data in project.forge.attestations(release.subjects[0].sha256)], where
    except ForgeError as exc:
        return [], f"{where} (unreadable: {exc.message})"


def vsa_candidates(
    project: Project,
    release: Release,
    environment: str,
    entries: Sequence[Entry],
    forge: tuple[list[Candidate], str | None],
    *,
    kind: Literal["vsa", "hold", "root-cause"] = "vsa",
) -> tuple[list[Candidate], list[str]]:
    """Every VSA about `release` for `environment` (or every signed rollback of it out of there,
    or every signed root cause lifting such a hold) the kit can find, and where it looked: the
    evidence dir (as passed between jobs), the release's archive in it, the ledger's attachments,
    and the forge's attestations (`forge`, listed once by the caller). Each is verified by the
    caller, so any store will do."""
    candidates, looked = [], []
    name = {"vsa": vsa_bundle, "hold": hold_bundle, "root-cause": root_cause_bundle}[kind](environment)
    paths = [project.evidence.path(name), project.evidence.archive(release.id) / name]
    looked += [str(path) for path in paths]
    candidates += read_bundles(paths)
    looked.append(f"the ledger's attachments ({project.ledger.describe()})")
    for entry in entries:
        digest = entry.details.get(kind.replace("-", "_"))
        about = entry.details.get("from") if kind == "hold" else entry.release
        if entry.environment == environment and about == release.id and isinstance(digest, str):
            data = project.ledger.attachment(digest)
            if data is not None:
                candidates.append(Candidate(f"ledger seq {entry.seq}", data))
    kept, where = forge
    candidates += kept
    if where is not None:
        looked.append(where)
    return candidates, looked


def plan(project: Project, environment: str, now: datetime | None = None) -> Plan:
    """Evaluate every gate exactly as promote would, recording nothing."""
    _check_environment(project.config, environment)
    gates = compile_gates(project.config, environment)
    release = project.evidence.load_release()
    entries = history(project.ledger)
    context = context_for(project, environment, release, entries, now)
    unfinished = tuple(in_flight(entries, environment))
    return Plan(release, environment, evaluate(gates, context), _integrity(context), head(entries), unfinished)


def _integrity(context: PromotionContext) -> str | None:
    """Why the evidence itself fails (signatures, provenance, SBOM attestation, source), if it does."""
    if context.verification is None:
        return context.verification_problem or "the evidence was not verified"
    failures = context.verification.failures
    return f"{failures[0].target}: {failures[0].detail}" if failures else None


def _declares_contract_steps(evidence: EvidenceDir) -> bool:
    """Whether the release's migration record declares expand steps; a record that cannot be read
    says nothing here (the migrations gate denies it as not the one the provenance signed)."""
    from pipeline_kit.migrations import load_record

    try:
        return bool(load_record(evidence).get("expand_steps"))
    except PipelineKitError:
        return False


@dataclass(frozen=True)
class Arrival:
    release: str
    signed_at: datetime
    seq: int  # the ledger head the decision names (signed): orders decisions within one second
    subjects: frozenset[tuple[str, str]]  # (name, sha256), as signed
    passed: bool  # PASSED; else waived (--break-glass): deployed, but never a rollback target


@dataclass(frozen=True)
class Timeline:
    """What the signed record shows of one environment, oldest first: each release's arrivals (a
    signed VSA for it there, PASSED or waived) and each signed rollback (a FAILED VSA holding
    it out, naming the release it went back to). The ledger only says where to look."""

    arrivals: tuple[Arrival, ...]
    holds: tuple[tuple[str, str | None, datetime, int], ...]  # (from, to, signed_at, seq)
    current: str | None  # the release the last signed event left there
    why: str  # when `current` is None
    since: int = 0  # the ledger seq that event signed: a failed deploy after it casts doubt
    before: str | None = None  # what ran before that event (what runs if its deploy failed)

    def held_since(self, arrival: Arrival) -> bool:
        """A signed rollback of the arrival's release after it (a tie: the rollback wins)."""
        return any(
            bad == arrival.release and (at, seq) >= (arrival.signed_at, arrival.seq) for bad, _, at, seq in self.holds
        )

    def arrival(self, release: str) -> Arrival | None:
        """The newest signed arrival of `release`."""
        return next((a for a in reversed(self.arrivals) if a.release == release), None)


def signed_timeline(project: Project, environment: str, entries: Sequence[Entry]) -> Timeline:
    """Every signed VSA and rollback of `environment` the kit can find (the ledger's attachments,
    the evidence dir and its archives), verified against the identity policy, replayed in the
    order of their verified signing times. A line added to the ledger changes nothing here."""
    from pipeline_kit.models import RELEASE_ID

    trust = project.trust
    assert trust.policy is not None
    uri = resource_uri(project.config, environment)
    candidates = [
        Candidate(f"ledger seq {e.seq}", data)
        for e in entries
        if e.environment == environment
        for key in ("vsa", "hold")
        if isinstance(e.details.get(key), str) and (data := project.ledger.attachment(e.details[key])) is not None
    ]
    root = project.evidence.root
    names = (vsa_bundle(environment), hold_bundle(environment))
    candidates += read_bundles(
        [root / name for name in names] + [p for name in names for p in root.glob(f"{ARCHIVE_DIR}/*/{name}")]
    )
    arrivals: list[Arrival] = []
    holds: list[tuple[str, str | None, datetime, int]] = []
    for signed in verified(candidates, trust.policy, trust.load()):
        if signed.predicate.get("resourceUri") != uri or not signed.subjects:
            continue
        release = release_id_of(signed.subjects)
        seq = signed.order[1]
        result, levels = signed.predicate.get("verificationResult"), signed.predicate.get("verifiedLevels") or []
        if result == "PASSED" or (result == "FAILED" and WAIVED in levels):
            arrivals.append(Arrival(release, signed.signed_at, seq, signed.subjects, result == "PASSED"))
        elif result == "FAILED" and hold_level(environment) in levels:
            to = (signed.predicate.get("policy") or {}).get("annotations", {}).get("to")
            to = to if isinstance(to, str) and RELEASE_ID.fullmatch(to) else None
            holds.append((release, to, signed.signed_at, seq))
    arrivals.sort(key=lambda a: (a.signed_at, a.seq))
    holds.sort(key=lambda h: (h[2], h[3]))
    events = sorted(  # by (time, seq), an arrival before a rollback of the same moment
        [(a.signed_at, a.seq, 0, a.release, None) for a in arrivals]
        + [(at, seq, 1, bad, to) for bad, to, at, seq in holds],
        key=lambda event: event[:3],
    )
    current: str | None = None
    before: str | None = None
    since = 0
    why = f"nothing signed shows what {environment} runs (looked in the ledger's attachments and {root})"
    for _, seq, kind, release, to in events:
        if kind == 0 and release != current:
            before, current, since = current, release, seq
        elif kind == 0:
            since = seq  # promoted there again
        elif current == release:
            before, current, since = current, to, seq
            why = f"{release} was rolled back out of {environment} (signed) to a release the signature does not name"
    return Timeline(tuple(arrivals), tuple(holds), current, why, since, before)


@dataclass(frozen=True)
class Running:
    """What an environment runs, shown from signed evidence: the release and its verified
    evidence (`evidence` None, with `why`, when that cannot be shown)."""

    release: str | None
    evidence: EvidenceDir | None
    why: str


def running_release(
    project: Project,
    environment: str,
    entries: Sequence[Entry],
    expected: str | None = None,
    *,
    verified: dict[str, tuple[EvidenceDir | None, str]] | None = None,
) -> Running:
    """The release `environment` runs (`expected`, when the caller names it): the last one the
    signed record leaves there (`signed_timeline`), whose evidence (this evidence dir, its
    archive, or the ledger's attachments) verifies. The ledger can only cast doubt: an arrival it
    shows as unfinished or failed, or another release it shows deployed since without a signed
    decision (an analysis that failed or never ended), makes what runs unknown."""
    timeline = signed_timeline(project, environment, entries)
    candidate = timeline.current
    if candidate is None:
        return Running(None, None, timeline.why)
    if expected is not None and candidate != expected:
        return Running(None, None, f"the signed record shows {candidate} in {environment}, not {expected}")
    failed = _failed_since(entries, environment, timeline)
    if failed is not None:
        return Running(candidate, None, f"the deploy of {candidate} to {environment} failed (ledger seq {failed.seq})")
    unfinished = [e for e in in_flight(entries, environment) if e.release == candidate]
    if unfinished:
        seq = unfinished[-1].seq
        return Running(candidate, None, f"the deploy of {candidate} to {environment} did not finish (ledger seq {seq})")
    by_ledger = current_release(entries, environment)
    if by_ledger is not None and by_ledger != candidate:
        return Running(
            candidate, None, f"the ledger shows {by_ledger} deployed to {environment} after {candidate}, unsigned"
        )
    # `verified`: the caller's results of `verified_evidence` by release, kept across environments
    shown = verified if verified is not None else {}
    if candidate not in shown:
        shown[candidate] = verified_evidence(project, entries, candidate)
    evidence, why = shown[candidate]
    if evidence is None:
        return Running(candidate, None, why)
    return Running(candidate, evidence, "signed")


def _failed_since(entries: Sequence[Entry], environment: str, timeline: Timeline) -> Entry | None:
    """A failed deploy of the current release after the signed event that made it current: a line
    added later cannot take this doubt away (a `deployed` line after it changes nothing)."""
    return next(
        (
            e
            for e in entries
            if e.environment == environment
            and e.release == timeline.current
            and e.kind == "deploy-failed"
            and e.seq > timeline.since
        ),
        None,
    )


def verified_evidence(project: Project, entries: Sequence[Entry], release: str) -> tuple[EvidenceDir | None, str]:
    """`release`'s evidence (this evidence dir, its archive, or the ledger's attachments),
    verified against the identity policy, or None and why not."""
    from pipeline_kit.verify import SourceExpectation, verify_release

    trust = project.trust
    assert trust.policy is not None
    here = project.evidence if project.evidence.has_release() else None
    evidence = here if here and here.load_release().id == release else EvidenceDir(project.evidence.archive(release))
    if not evidence.has_release():
        evidence = restore_from_ledger(project.ledger, entries, release) or evidence
    if not evidence.has_release():
        return None, f"no evidence of {release} here or in the ledger"
    if evidence.load_release().id != release:  # ids are recomputed from the subjects on load
        return None, f"the evidence kept for {release} is another release's"
    checked = verify_release(evidence, None, trust.policy, trust.load(), SourceExpectation(trust.repository, trust.ref))
    if not checked.ok:
        first = checked.failures[0]
        return None, f"{release}'s evidence does not verify: {first.target}: {first.detail}"
    return evidence, "signed"


def restore_from_ledger(ledger: Ledger, entries: Sequence[Entry], release_id: str) -> EvidenceDir | None:
    """`release_id`'s evidence, as the newest promotion of it attached it to the ledger, written
    into a directory of its own (removed when the process ends; never into a project's evidence);
    None when the ledger has none. It is only a candidate: the caller verifies it like any evidence
    (a forged attachment does not verify)."""
    import atexit
    import shutil
    import tempfile

    named = next(
        (
            e.details["evidence"]
            for e in reversed(entries)
            if e.release == release_id and isinstance(e.details.get("evidence"), dict)
        ),
        None,
    )
    if not named:
        return None
    files: dict[str, bytes] = {}
    for name, digest in named.items():
        data = ledger.attachment(str(digest))
        if data is None or sha256_bytes(data) != digest:
            return None  # incomplete: the caller says the evidence is missing
        files[str(name)] = data
    root = Path(tempfile.mkdtemp(prefix="pipeline-kit-restored-"))
    atexit.register(shutil.rmtree, root, ignore_errors=True)
    restored = EvidenceDir(root)
    try:
        restored.restore(files)
    except (PipelineKitError, OSError, ValueError):
        return None  # a name leaving the directory, or one no file can have: a forged entry
    return restored


def schema_states(
    project: Project, entries: Sequence[Entry]
) -> dict[str, tuple[str | None, frozenset[str] | None, str]]:
    """For every environment: the release it runs and the migration files that release's signed
    record has, or (files None) why that cannot be shown (see `running_release`): the release
    being promoted too counts only with its signed VSA there. Each release is verified once."""
    from pipeline_kit.migrations import load_record

    states: dict[str, tuple[str | None, frozenset[str] | None, str]] = {}
    verified: dict[str, tuple[EvidenceDir | None, str]] = {}  # environments often run one release
    for environment in project.config.environments:
        running = running_release(project, environment, entries, verified=verified)
        if running.evidence is None:
            states[environment] = (running.release, None, running.why)
        else:
            files = frozenset(item["path"] for item in load_record(running.evidence).get("files", []))
            states[environment] = (running.release, files, running.why)
    return states


def peer_project(project: Project, directory: Path) -> Project:
    """Another service's project (its config, evidence and ledger), judged by this promotion's
    identity policy; its source repository is its own, so none is expected of it."""
    from pipeline_kit.config import load_config
    from pipeline_kit.evidence import DEFAULT_DIR_NAME
    from pipeline_kit.ledger import open_ledger

    config = load_config(directory / "pipeline-kit.yml")
    trust = Trust(project.trust.policy, project.trust.load)
    return Project(
        config,
        EvidenceDir(directory / DEFAULT_DIR_NAME),
        directory,
        open_ledger(config.ledger, directory),
        trust,
        project.actor,
    )


def contract_state(project: Project, release: Release, environment: str, own: Sequence[Entry]) -> ContractState:
    """This release's contracts and signed verifications, and for each peer the release it runs
    in `environment` (shown from signed evidence), that release's contracts and verifications."""
    from pipeline_kit.contracts import ContractState, Peer, load_pacts, verified_pacts

    config, trust = project.config.contracts, project.trust
    assert config is not None and trust.policy is not None
    _, pacts = load_pacts(project.evidence)
    verified = verified_pacts(project.evidence, release, trust.policy, trust.load(), project.ledger, own)
    peers = []
    for name, directory in config.peers.items():
        try:
            peer = peer_project(project, project.workdir / directory)
            entries = history(peer.ledger)
            running = running_release(peer, environment, entries)
        except PipelineKitError as exc:
            peers.append(Peer(name, None, why=exc.message))
            continue
        if running.evidence is None:
            peers.append(Peer(name, None, why=running.why))
            continue
        their_name, their_pacts = load_pacts(running.evidence)
        if their_name not in (None, name):
            peers.append(Peer(name, None, why=f"{running.release}'s contracts name it {their_name!r}"))
            continue
        theirs = verified_pacts(
            peer.evidence, running.evidence.load_release(), trust.policy, trust.load(), peer.ledger, entries
        )
        peers.append(Peer(name, running.release, tuple(their_pacts), theirs))
    return ContractState(config.name, tuple(pacts), verified, tuple(peers))


def effective_policy(project: Project) -> dict[str, Any]:
    """What a promotion was judged by: the config file, and the identity and source policy actually
    applied, naming whatever flags or variables changed from the config's."""
    config, trust = project.config, project.trust
    identity = None
    if trust.policy is not None:
        identity = {"issuer": trust.policy.issuer, "san": trust.policy.san, "sanRegex": trust.policy.san_regex}
    source = {"repository": trust.repository, "ref": trust.ref}
    configured = config.signing.identity
    from_config = {
        "issuer": configured.issuer if configured else None,
        "san": configured.san if configured else None,
        "sanRegex": configured.san_regex if configured else None,
        "repository": configured.repository if configured else None,
        "ref": configured.ref if configured else None,
    }
    applied = {**(identity or dict.fromkeys(("issuer", "san", "sanRegex"))), **source}
    return {
        "uri": Path(config.source_path or "pipeline-kit.yml").name,
        "sha256": config.source_sha256 or "",
        "identity": identity,
        "source": source,
        "overrides": sorted(key for key, value in applied.items() if value != from_config[key]),
    }


def decide(
    project: Project, result: Plan, verdict: Literal["passed", "denied", "waived"], reason: str | None
) -> Decision:
    """The decision on `result`, a plan judged in this process (never one read from a file). It
    commits to the ledger it was made on: truncating or rewriting the ledger up to here no longer
    matches a signed VSA (`ledger verify`)."""
    release = result.release
    inputs = [*_input_attestations(project.evidence, release), _ledger_input(*result.ledger_head)]
    return Decision(
        release=release.id,
        subjects={s.name: s.sha256 for s in release.subjects},
        environment=result.environment,
        verdict=verdict,
        gates=tuple(
            GateRecord(gate=r.gate, verdict=r.verdict, reason=r.reason, evidence=r.evidence, duration_ms=r.duration_ms)
            for r in result.results
        ),
        actor=project.actor,
        time=_now(),
        reason=reason,
        break_glass=verdict == "waived",
        policy=effective_policy(project),
        input_attestations=tuple(inputs),
    )


def promote(
    project: Project,
    environment: str,
    *,
    reason: str | None,
    break_glass: bool,
    deploy: str | Sequence[str] | None,
    token: TokenProvider,
    on_output: Callable[[str], None] | None = None,
    on_progress: Callable[[int, Result], None] | None = None,
    on_step: Callable[[str], None] | None = None,
    step_mode: bool = False,
) -> Promotion:
    if break_glass and not reason:
        raise UsageError("--break-glass needs --reason: a waiver is recorded with its why")
    config, evidence, actor = project.config, project.evidence, project.actor
    strategy = config.environments[environment].strategy if environment in config.environments else None
    if strategy is not None:
        from pipeline_kit import rollout

        rollout.refuse_second(history(project.ledger), environment)
    result = plan(project, environment)
    release = result.release
    # Break-glass waives policy gates, never integrity: evidence that does not verify is not a
    # release of ours, whoever insists.
    refused = None if not break_glass or result.passed or result.integrity is None else result.integrity
    verdict: Literal["passed", "denied", "waived"] = (
        "passed" if result.passed else "waived" if break_glass and refused is None else "denied"
    )
    decision = decide(project, result, verdict, reason)
    files = {decision_file(environment): decision.to_json()}
    # a rollout signs its VSA once its last step passed, like an analysis
    analysed = config.environments[environment].analysis is not None or strategy is not None
    # read (and refused, exit 2) before anything is signed or written: the names come from
    # release.json, and the bytes leave with the ledger
    travelling = evidence.travelling(evidence.load_release()) if verdict != "denied" else {}
    if verdict != "denied":
        # Sign before anything is recorded: a promotion without its VSA did not happen. With an
        # analysis after the deploy, the VSA is signed once the analysis passed (a release whose
        # analysis failed or never finished has no PASSED VSA to show the next environment); the
        # identity token is asked for now all the same, so a missing one stops before the deploy.
        raw, source = token()
        if not analysed:
            files[vsa_bundle(environment)] = sign_vsa(project, release, decision, lambda: (raw, source))
    evidence.record_many(release, files)
    command = deploy if deploy else config.environments[environment].deploy
    entry = project.ledger.append(
        Draft(
            kind=verdict if verdict != "passed" else "promoted",
            environment=environment,
            release=release.id,
            subjects=decision.subjects,
            actor=actor,
            time=decision.time,
            reason=reason,
            details={
                "decision": sha256_bytes(files[decision_file(environment)]),
                **({"vsa": sha256_bytes(files[vsa_bundle(environment)])} if vsa_bundle(environment) in files else {}),
                "blocking": [f"{r.gate}: {r.reason}" for r in result.blocking()],
                **({"break_glass_refused": refused} if refused else {}),
                # an arrival counts once its deploy succeeded (a `deployed` entry), or at once
                # when there is nothing to deploy
                **({"deploy": "pending" if command else "none"} if verdict != "denied" else {}),
                # the release's evidence travels with the ledger: a job that never had its
                # archive can still show (by verifying it) what this environment runs
                **({"evidence": {n: sha256_bytes(d) for n, d in travelling.items()}} if travelling else {}),
            },
        ),
        [*([files[vsa_bundle(environment)]] if vsa_bundle(environment) in files else []), *travelling.values()],
    )
    if verdict == "denied":
        _record_on_forge(project, environment, release, decision, files, deployed=False)
        return Promotion(result, decision, entry, None, refused)
    if strategy is not None:
        from pipeline_kit import rollout

        outcome = rollout.start(
            project,
            environment,
            release,
            decision,
            token,
            step_mode=step_mode,
            on_output=on_output,
            on_progress=on_step,
            on_result=on_progress,
        )
        return Promotion(result, decision, entry, outcome.verdict == "finished", rollout=outcome)
    deployment = _start_forge_deployment(project, environment, release, decision, files)
    try:
        deployed = _deploy(project, environment, release, evidence, deploy, on_output)
    except BuildFailed:
        _finish_forge_deployment(project, environment, deployment, "failure")
        raise
    _finish_forge_deployment(project, environment, deployment, "success")
    if not analysed or verdict == "waived":  # break-glass skips the analysis: it was waived
        _record_on_forge(project, environment, release, decision, files, deployed=True)
        return Promotion(result, decision, entry, deployed)
    analysis, aftermath = _analyse_deploy(project, environment, release, decision, files, token, on_progress)
    return Promotion(result, decision, entry, deployed, analysis=analysis, aftermath=aftermath)


def _analyse_deploy(
    project: Project,
    environment: str,
    release: Release,
    decision: Decision,
    files: dict[str, bytes],
    token: TokenProvider,
    on_progress: Callable[[int, Result], None] | None,
) -> tuple[Analysis, tuple[str, ...]]:
    """Measure the deployed release; sign its PASSED VSA if the analysis passed, else turn the
    kill switches off and roll back (each step recorded). Returns the analysis and what was done."""
    import os

    from pipeline_kit.analysis import analyse, release_values
    from pipeline_kit.metrics import open_provider

    config = project.config
    settings = config.environments[environment]
    assert settings.analysis is not None
    provider = open_provider(config, settings.analysis.provider, os.environ)
    analysis = analyse(provider, settings.analysis, release_values(release, environment, ""), on_result=on_progress)
    record = json.dumps(
        {"release": release.id, "environment": environment, **analysis.as_dict()}, indent=2, sort_keys=True
    ).encode()
    recorded = {analysis_file(environment): record}
    details: dict[str, Any] = {
        "verdict": analysis.verdict,
        "reason": analysis.reason,
        "analysis": sha256_bytes(record),
        "counts": analysis.counts(),
    }
    attachments = []
    if analysis.passed:
        analysed = {"name": analysis_file(environment), "sha256": sha256_bytes(record)}
        bundle = sign_vsa(project, release, decision, token, after_analysis=analysed, late=True)
        recorded[vsa_bundle(environment)] = bundle
        details["vsa"] = sha256_bytes(bundle)
        attachments.append(bundle)
    try:
        project.evidence.record_many(release, recorded)
    except (PipelineKitError, OSError) as exc:
        if analysis.passed:
            raise
        # a planted file where the record goes must never keep a failed release deployed: the
        # ledger keeps the verdict, and the kill switches and the rollback run all the same
        details["unrecorded"] = exc.message if isinstance(exc, PipelineKitError) else str(exc.strerror)
    project.ledger.append(
        Draft(
            kind="analysed",
            environment=environment,
            release=release.id,
            subjects=decision.subjects,
            actor=project.actor,
            time=_now(),
            reason=analysis.reason,
            details=details,
        ),
        attachments,
    )
    if analysis.passed:
        _record_on_forge(project, environment, release, decision, {**files, **recorded}, deployed=True)
        return analysis, ()
    return analysis, _after_failure(project, environment, release, analysis, token)


def _after_failure(
    project: Project, environment: str, release: Release, analysis: Analysis, token: TokenProvider
) -> tuple[str, ...]:
    """A failed analysis: the kill switches off first (fastest), then the signed rollback. A step
    that fails is recorded and raised as an EnvironmentFailure (exit 3) after the others ran."""
    settings = project.config.environments[environment].on_failure
    reason = f"analysis {analysis.verdict}: {analysis.reason}"
    done, failures = trip_kill_switches(project, environment, reason)
    if settings.rollback:
        try:
            current, target, _ = rollback(
                project, environment, to=None, reason=reason, deploy=None, token=token, from_release=release
            )
            done.append(f"rolled {environment} back from {current} to {target}")
        except PipelineKitError as exc:
            failures.append(f"rollback: {exc.message}")
            project.ledger.append(
                Draft(
                    kind="rollback-failed",
                    environment=environment,
                    release=release.id,
                    actor=project.actor,
                    time=_now(),
                    reason=exc.message,
                    details={"analysis": analysis.verdict},
                )
            )
    if failures:
        raise EnvironmentFailure(
            f"the analysis of {release.id} in {environment} failed ({analysis.reason}), and so did: "
            + "; ".join(failures)
            + (f" (done: {'; '.join(done)})" if done else "")
        )
    return tuple(done)


def trip_kill_switches(project: Project, environment: str, reason: str) -> tuple[list[str], list[str]]:
    """Turn off every kill switch `on-failure` names for `environment`, each tried whatever the
    others did; returns what was done and what failed, in words."""
    done, failures = [], []
    for flag in project.config.environments[environment].on_failure.kill_switches:
        try:
            done.append(
                switch_flag(project.config, project.workdir, project.ledger, project.actor, flag, environment, reason)
            )
        except PipelineKitError as exc:  # noqa: PERF203 - each switch is tried, whatever the others did
            failures.append(f"kill switch {flag}: {exc.message}")
    return done, failures


def switch_flag(
    config: Config,
    workdir: Path,
    ledger: Ledger,
    actor: str,
    flag: str,
    environment: str,
    reason: str,
    *,
    restore: bool = False,
) -> str:
    """Turn the kill switch `flag` off (or back on) in `environment` and record it in the ledger."""
    import os

    from pipeline_kit.flags import open_switches

    _check_environment(config, environment)
    switches = open_switches(config, workdir, os.environ)
    what = switches.restore(flag, environment) if restore else switches.kill(flag, environment)
    ledger.append(
        Draft(
            kind="flag-restored" if restore else "flag-killed",
            environment=environment,
            actor=actor,
            time=_now(),
            reason=reason,
            details={"flag": flag, "switches": switches.kind, "change": what},
        )
    )
    return what


def _start_forge_deployment(
    project: Project, environment: str, release: Release, decision: Decision, files: dict[str, bytes]
) -> str | None:
    """A deployment on the forge, in progress, carrying the release and the VSA's digest."""
    if project.forge is None or not release.source.commit:
        return None
    payload: dict[str, object] = {
        "release": release.id,
        "subjects": decision.subjects,
        "vsa": sha256_bytes(files[vsa_bundle(environment)]) if vsa_bundle(environment) in files else None,
        "decision": sha256_bytes(files[decision_file(environment)]),
        "verdict": decision.verdict,
    }
    return project.forge.start_deployment(environment, release.source.commit, release.source.ref, payload)


def _finish_forge_deployment(
    project: Project, environment: str, deployment: str | None, state: DeploymentState
) -> None:
    if project.forge is not None and deployment is not None:
        project.forge.finish_deployment(deployment, environment, state, f"pipeline-kit: deploy {state}")


FORGE_DEADLINE = 60.0  # seconds for a promotion's forge records in all (each request has its own timeout too)


def _record_on_forge(
    project: Project, environment: str, release: Release, decision: Decision, files: dict[str, bytes], *, deployed: bool
) -> None:
    """A commit status with the verdict, and (where the forge keeps them) the attestations: each
    an independent request, sent at once, all within FORGE_DEADLINE; the first failure (in this
    order) is raised."""
    forge = project.forge
    if forge is None:
        return
    requests: list[Callable[[], object]] = []
    if release.source.commit:
        commit = release.source.commit
        state: Literal["success", "failure"] = "success" if decision.verdict != "denied" else "failure"
        description = f"{decision.verdict}: release {release.id}"
        requests.append(partial(forge.commit_status, commit, state, f"pipeline-kit/{environment}", description))
    if deployed:
        from pipeline_kit.signing import PROVENANCE_BUNDLE, SBOM_BUNDLE

        bundles = [
            project.evidence.path(n).read_bytes()
            for n in (PROVENANCE_BUNDLE, SBOM_BUNDLE)
            if project.evidence.path(n).is_file()
        ]
        if vsa_bundle(environment) in files:
            bundles.append(files[vsa_bundle(environment)])
        requests += [partial(forge.upload_attestation, data) for data in bundles]
    from pipeline_kit._internal.http import HttpProblem, all_within
    from pipeline_kit.forge import ForgeError

    try:
        all_within(requests, FORGE_DEADLINE, f"{forge.describe()} records")
    except HttpProblem as exc:
        raise ForgeError(str(exc)) from None


def _deploy(
    project: Project,
    environment: str,
    release: Release,
    evidence: EvidenceDir,
    deploy: str | Sequence[str] | None,
    on_output: Callable[[str], None] | None,
    details: dict[str, Any] | None = None,
    extra_env: dict[str, str] | None = None,
    kind: Literal["deployed", "canary-deployed"] = "deployed",
) -> bool | None:
    """Run the deploy command for `release` and record how it went (`kind` when it succeeded)."""
    command = deploy if deploy else project.config.environments[environment].deploy
    if not command:
        return None
    context = PromotionContext(
        release, environment, project.config, evidence, project.workdir, (), _now(), project.actor
    )
    try:
        env = {**release_environment(context, project.config.environments[environment].pass_env), **(extra_env or {})}
        outcome = run_streaming(command, cwd=project.workdir, env=env, on_line=on_output)
        code, tail = outcome.returncode, outcome.tail
    except OSError as exc:
        code, tail = 127, str(exc.strerror)
    project.ledger.append(
        Draft(
            kind=kind if code == 0 else "deploy-failed",
            environment=environment,
            release=release.id,
            subjects={s.name: s.sha256 for s in release.subjects},
            actor=project.actor,
            time=_now(),
            details={"exit_code": code, **(details or {})},
        )
    )
    if code != 0:
        raise BuildFailed(
            f"deploy to {environment} exited with code {code}; recorded in the ledger",
            hint=f"last lines of its output:\n{tail or '(no output)'}",
        )
    return True


def _ledger_input(seq: int, entry_hash: str) -> dict[str, Any]:
    """The inputAttestations entry committing a signed decision to the ledger head it was made on."""
    return {"name": LEDGER_INPUT, "digest": {"sha256": entry_hash}, "annotations": {"seq": seq}}


def _input_attestations(evidence: EvidenceDir, release: Release) -> list[dict[str, Any]]:
    from pipeline_kit.signing import PROVENANCE_BUNDLE, SBOM_BUNDLE, subject_bundle

    names = [subject_bundle(s.name) for s in release.subjects] + [PROVENANCE_BUNDLE, SBOM_BUNDLE]
    return [
        {"uri": name, "digest": {"sha256": sha256_bytes(evidence.path(name).read_bytes())}}
        for name in names
        if evidence.path(name).is_file()
    ]


def sign_vsa(
    project: Project,
    release: Release,
    decision: Decision,
    token: TokenProvider,
    after_analysis: dict[str, str] | None = None,
    late: bool = False,
) -> bytes:
    """The promotion's signed VSA bundle. Signed `late` (after a deploy: an analysis, a rollout's
    last step), it commits to the ledger head of that moment, not the decision's, and names the
    analysis record when there is one."""
    ledger_head = head(history(project.ledger)) if late else None
    predicate = _vsa_predicate(project.config, decision, ledger_head, after_analysis)
    statement = statement_json(release.subjects, VSA_PREDICATE, predicate)
    raw, source = token()
    name = vsa_bundle(decision.environment)
    return sign_all(project.trust.load(), raw, source, [Signable(name, statement=statement)]).files[name]


def _vsa_predicate(
    config: Config,
    decision: Decision,
    ledger_head: tuple[int, str] | None = None,
    analysis: dict[str, str] | None = None,
) -> dict[str, Any]:
    """The VSA of a promotion. Signed after an analysis, it names the analysis record and the
    ledger head at that moment (the decision's head is then no longer the newest)."""
    levels = [f"PIPELINE_KIT_PROMOTED_{decision.environment.upper().replace('-', '_')}"]
    if decision.break_glass:
        levels.append(WAIVED)
    levels += [f"PIPELINE_KIT_GATE_{g.gate.upper().replace('-', '_')}_{g.verdict.upper()}" for g in decision.gates]
    inputs = list(decision.input_attestations)
    if ledger_head is not None:
        inputs = [i for i in inputs if i.get("name") != LEDGER_INPUT] + [_ledger_input(*ledger_head)]
    if analysis is not None:
        levels.append(ANALYSIS_PASSED)
        inputs.append({"name": analysis["name"], "digest": {"sha256": analysis["sha256"]}})
    return {
        "verifier": {"id": f"{KIT_URI}/promote", "version": {"pipeline-kit": __version__}},
        "timeVerified": decision.time.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "resourceUri": resource_uri(config, decision.environment),
        "policy": {
            "uri": decision.policy["uri"],
            "digest": {"sha256": decision.policy["sha256"]},
            "annotations": {key: decision.policy[key] for key in ("identity", "source", "overrides")},
        },
        "inputAttestations": inputs,
        # A waived promotion did not pass verification: say so; only the ledger makes it count.
        "verificationResult": "FAILED" if decision.break_glass else "PASSED",
        "verifiedLevels": levels,
        "slsaVersion": "1.1",
    }


def current_release(entries: Sequence[Entry], environment: str) -> str | None:
    """The release an environment runs now, by the ledger."""
    current = None
    for entry in entries:
        if entry.environment != environment:
            continue
        if arrived(entry):
            current = entry.release
        elif entry.kind == "rolled-back":  # `to` is null after a failed first rollout: nothing
            to = entry.details.get("to")
            current = to if isinstance(to, str) else None
    return current


def rollback(
    project: Project,
    environment: str,
    *,
    to: str | None,
    reason: str,
    deploy: str | Sequence[str] | None,
    token: TokenProvider,
    on_output: Callable[[str], None] | None = None,
    from_release: Release | None = None,
    named: str | None = None,
) -> tuple[str, str, Entry]:
    """Go back to the previous good release of `environment` (or `to`); returns (from, to, entry).
    `from_release`: the release to take out, when the caller verified it (a failed analysis);
    `named`: the id of one the operator says runs there (`--from`), verified here; else the one
    the signed record shows there.

    The rollback is signed before anything is deployed: a FAILED VSA about the rolled-back
    release for this environment, naming the release it goes back to, so its hold survives edits
    to the ledger and the signed record shows what runs there after it."""
    _check_environment(project.config, environment)
    if not reason:
        raise UsageError("rollback needs --reason")
    if project.trust.policy is None:
        raise UsageError("no identity policy to tell from signatures what runs there")
    for given in (to, named):
        if given is not None:
            check_release_id(given)
    entries = history(project.ledger)
    timeline = signed_timeline(project, environment, entries)
    bad = from_release or _rolling_back(project, environment, entries, timeline, named)
    current = bad.id
    if to == current:
        raise UsageError(f"{to} is already the release in {environment}")
    archive = _rollback_target(project, environment, entries, timeline, current, to)
    release = archive.load_release()
    target = release.id
    _refuse_past_contract(project, entries, current, target, archive)
    held = _sign_hold(project, environment, bad.subjects, target, entries, reason, token)
    details = {"from": current, "to": target}
    _deploy(project, environment, release, archive, deploy, on_output, details={"rollback": details})
    entry = project.ledger.append(
        Draft(
            kind="rolled-back",
            environment=environment,
            release=target,
            subjects={s.name: s.sha256 for s in release.subjects},
            actor=project.actor,
            time=_now(),
            reason=reason,
            details={**details, "hold": sha256_bytes(held)},
        ),
        [held],
    )
    if project.forge is not None:
        project.forge.upload_attestation(held)
    return current, target, entry


def _rolling_back(
    project: Project, environment: str, entries: Sequence[Entry], timeline: Timeline, named: str | None
) -> Release:
    """The release a rollback takes out, verified: `named` (`--from`, when the operator knows which
    runs there), else the one the signed record shows. When the ledger doubts it (the deploy that
    made it current failed, or another release was deployed since without a signed decision), the
    kit asks for `--from` instead of choosing on the ledger's word."""
    failed = _failed_since(entries, environment, timeline)
    if named is None and failed is not None:  # the ledger's word: doubt, never a choice
        raise VerificationError(
            f"cannot tell what {environment} runs: the deploy of {timeline.current} failed there (ledger seq"
            f" {failed.seq})",
            hint=f"if {timeline.before} still runs there, roll back with --from {timeline.before}"
            if timeline.before
            else None,
        )
    candidate = named or timeline.current
    if candidate is None:
        raise UsageError(f"{environment} has no release to roll back from: {timeline.why}")
    by_ledger = current_release(entries, environment)
    if named is None and by_ledger is not None and by_ledger != candidate:
        raise VerificationError(
            f"cannot tell what {environment} runs: the signed record shows {candidate}, the ledger {by_ledger}",
            hint=f"if {by_ledger} was deployed there without a signed decision, roll back with --from {by_ledger}",
        )
    evidence, why = verified_evidence(project, entries, candidate)
    if evidence is None:
        raise VerificationError(f"cannot roll back from {candidate}: {why}")
    return evidence.load_release()


def _rollback_target(
    project: Project,
    environment: str,
    entries: Sequence[Entry],
    timeline: Timeline,
    current: str,
    to: str | None,
) -> EvidenceDir:
    """The evidence of the release to go back to: `to`, or the newest earlier one that qualifies,
    each shown from signed evidence: a signed PASSED VSA shows it arrived in `environment`, no
    signed rollback of it since (a release rolled back before is never brought back), and its
    evidence (archive, or the ledger's attachments) verifies. The ledger can only take a target
    away (its deploy or its analysis failed there)."""
    newest_first = [a.release for a in reversed(timeline.arrivals) if a.passed and a.release != current]
    candidates = [to] if to else list(dict.fromkeys(newest_first))
    if not candidates:
        raise UsageError(f"no earlier release was promoted to {environment} before {current} (signed)")
    refusals: list[PipelineKitError] = []
    for target in candidates:
        try:
            return _shown_good(project, environment, entries, timeline, target)
        except PipelineKitError as exc:  # noqa: PERF203 - one refusal per candidate, said at the end
            refusals.append(exc)
    if len(refusals) == 1:
        raise refusals[0]
    reasons = "; ".join(exc.message for exc in refusals)
    raise VerificationError(f"no earlier release of {environment} is shown good by signed evidence: {reasons}")


def _shown_good(
    project: Project, environment: str, entries: Sequence[Entry], timeline: Timeline, target: str
) -> EvidenceDir:
    arrival = next((a for a in reversed(timeline.arrivals) if a.release == target and a.passed), None)
    if arrival is None:
        raise VerificationError(f"rollback target {target}: no signed VSA shows {target} was promoted to {environment}")
    if timeline.held_since(arrival):
        raise VerificationError(f"rollback target {target}: {target} was rolled back out of {environment} (signed)")
    if target in _failed_there(entries, environment):
        raise VerificationError(f"rollback target {target}: its deploy or its analysis failed in {environment}")
    # The files in the working directory are the current build's, not the target's: the
    # target is re-verified by its signed digests, which the deploy command fetches it by.
    evidence, why = verified_evidence(project, entries, target)
    if evidence is None:
        raise VerificationError(f"rollback target {target}: {why}")
    return evidence


def _refuse_past_contract(
    project: Project, entries: Sequence[Entry], current: str, target: str, archive: EvidenceDir
) -> None:
    """A rollback past a contract migration would run code against a schema that no longer has
    what it expects: refused, pointing to the kill switch or a forward fix. The current release's
    record is re-verified first (an edited record must not open the way back)."""
    if project.config.migrations is None:
        return
    from pipeline_kit.migrations import contract_steps, load_record

    ours, why = verified_evidence(project, entries, current)
    if ours is None:
        raise VerificationError(f"cannot tell which migrations {current} applied: {why}")
    steps = contract_steps(load_record(ours), load_record(archive))
    if steps:
        raise UsageError(
            f"rolling back from {current} to {target} would cross contract migration(s) {', '.join(steps)}: "
            f"{target}'s code expects the schema they removed",
            hint="turn the feature off with its kill switch (pipeline-kit flags kill), or roll forward with a fix",
        )


def _sign_hold(
    project: Project,
    environment: str,
    subjects: tuple[Subject, ...],
    to: str | None,
    entries: Sequence[Entry],
    reason: str,
    token: TokenProvider,
) -> bytes:
    """A signed rollback of the release of `subjects` out of `environment`, naming the release it
    went back to (`to`, None: nothing), kept in its archive; returns the bundle."""
    annotations = {"reason": reason, "to": to}
    return _sign_failed(project, environment, subjects, "rollback", hold_level, annotations, entries, token)


def _sign_failed(
    project: Project,
    environment: str,
    subjects: tuple[Subject, ...],
    what: Literal["rollback", "root-cause"],
    level: Callable[[str], str],
    annotations: dict[str, Any],
    entries: Sequence[Entry],
    token: TokenProvider,
) -> bytes:
    """A FAILED VSA about `subjects` for `environment` carrying `level` (never a pass: a rollback,
    or the root cause lifting one), naming the ledger head; kept in the release's archive."""
    predicate = {
        "verifier": {"id": f"{KIT_URI}/{what}", "version": {"pipeline-kit": __version__}},
        "timeVerified": _now().strftime("%Y-%m-%dT%H:%M:%SZ"),
        "resourceUri": resource_uri(project.config, environment),
        "policy": {"uri": Path(project.config.source_path or "pipeline-kit.yml").name, "annotations": annotations},
        "inputAttestations": [_ledger_input(*head(entries))],
        "verificationResult": "FAILED",
        "verifiedLevels": [level(environment)],
        "slsaVersion": "1.1",
    }
    raw, source = token()
    name = hold_bundle(environment) if what == "rollback" else root_cause_bundle(environment)
    statement = statement_json(subjects, VSA_PREDICATE, predicate)
    bundle = sign_all(project.trust.load(), raw, source, [Signable(name, statement=statement)]).files[name]
    project.evidence.keep(release_id(subjects), name, bundle)
    return bundle


def _failed_there(entries: Sequence[Entry], environment: str) -> set[str]:
    """The releases whose deploy or analysis failed in `environment`, by the ledger (which may take
    a rollback target away, never give one)."""
    return {
        e.release
        for e in entries
        if e.environment == environment
        and e.release is not None
        and (
            (
                e.kind == "deploy-failed" and "rollback" not in e.details
            )  # a rollback's deploy failing is not the release's
            or (e.kind == "analysed" and e.details.get("verdict") != "passed")
        )
    }


def annotate(project: Project, environment: str, root_cause: str, token: TokenProvider) -> Entry:
    """Sign the root cause of the last rollback in `environment`: a statement about the rolled-back
    release's signed subjects, for that environment, which lifts its hold (rollback-hold accepts
    nothing else for a signed rollback). Kept in its archive, attached to the ledger, uploaded."""
    if project.trust.policy is None:
        raise UsageError("no identity policy to find the signed rollback with")
    _check_environment(project.config, environment)
    entries = history(project.ledger)
    rollbacks = [e for e in entries if e.environment == environment and e.kind == "rolled-back"]
    if not rollbacks:
        raise UsageError(f"no rollback in {environment} to annotate")
    last = rollbacks[-1]
    digest = last.details.get("hold")
    data = project.ledger.attachment(digest) if isinstance(digest, str) else None
    signed = _signed_hold(project, environment, data, str(last.details.get("from")), last.seq)
    subjects = tuple(Subject(name=n, digest={"sha256": d}) for n, d in sorted(signed.subjects))
    annotations = {"rootCause": root_cause, "rollbackSeq": last.seq}
    bundle = _sign_failed(project, environment, subjects, "root-cause", root_cause_level, annotations, entries, token)
    entry = project.ledger.append(
        Draft(
            kind="annotated",
            environment=environment,
            release=release_id(subjects),
            actor=project.actor,
            time=_now(),
            reason=root_cause,
            details={"rollback_seq": last.seq, "root_cause": sha256_bytes(bundle)},
        ),
        [bundle],
    )
    if project.forge is not None:
        project.forge.upload_attestation(bundle)
    return entry


def _signed_hold(project: Project, environment: str, data: bytes | None, held: str, seq: int) -> Accepted:
    """The signed rollback of `held` the ledger entry at `seq` attached, verified; else exit 1."""
    from sigstore.verify import Verifier

    from pipeline_kit.vsa import signed_statement

    assert project.trust.policy is not None
    if data is None:
        raise VerificationError(f"the rollback at ledger seq {seq} has no signed hold attached to lift")
    verifier = Verifier(trusted_root=project.trust.load().trusted_root)
    signed = signed_statement(Candidate(f"ledger seq {seq}", data), project.trust.policy, verifier)
    if isinstance(signed, str):
        raise VerificationError(f"the hold of the rollback at ledger seq {seq} {signed}")
    predicate = signed.predicate
    is_hold = predicate.get("verificationResult") == "FAILED" and hold_level(environment) in (
        predicate.get("verifiedLevels") or []
    )
    if not is_hold or predicate.get("resourceUri") != resource_uri(project.config, environment):
        raise VerificationError(f"ledger seq {seq} attaches no signed rollback out of {environment}")
    if release_id_of(signed.subjects) != held:
        raise VerificationError(f"the hold of the rollback at ledger seq {seq} is about another release than {held}")
    return signed


def write_junit(plans: Sequence[Plan], path: Path, analysis: Analysis | None = None) -> None:
    """Gate results as JUnit XML: a test suite per environment, a test case per gate; and the
    analysis after the deploy, a test case per check (failing with its failed measurements)."""
    import xml.etree.ElementTree as ET

    suites = ET.Element("testsuites", name="pipeline-kit gates")
    for item in plans:
        suite = ET.SubElement(
            suites,
            "testsuite",
            name=f"promote {item.release.id} to {item.environment}",
            tests=str(len(item.results)),
            failures=str(sum(r.verdict == "denied" for r in item.results)),
            errors=str(sum(r.verdict == "error" for r in item.results)),
        )
        for result in item.results:
            case = ET.SubElement(
                suite,
                "testcase",
                classname=f"gates.{item.environment}",
                name=result.gate,
                time=f"{result.duration_ms / 1000:.3f}",
            )
            if result.verdict == "denied":
                ET.SubElement(case, "failure", message=result.reason).text = json.dumps(result.evidence, default=str)
            elif result.verdict == "error":
                ET.SubElement(case, "error", message=result.reason)
    if analysis is not None and plans:
        checks = sorted({r.check for r in analysis.results})
        suite = ET.SubElement(
            suites,
            "testsuite",
            name=f"analysis of {plans[-1].release.id} in {plans[-1].environment}",
            tests=str(len(checks)),
        )
        for check in checks:
            case = ET.SubElement(suite, "testcase", classname=f"analysis.{plans[-1].environment}", name=check)
            bad = [r for r in analysis.results if r.check == check and r.verdict != "passed"]
            if bad:
                kind = "failure" if any(r.verdict == "failed" for r in bad) else "error"
                ET.SubElement(case, kind, message=bad[-1].detail).text = "\n".join(
                    f"{r.time:%H:%M:%S} {r.verdict}: {r.detail}" for r in bad
                )
    from pipeline_kit._internal.fs import atomic_write

    atomic_write(path, ET.tostring(suites, encoding="utf-8", xml_declaration=True))


def require_environment(config: Config | None) -> Config:
    if config is None or not config.environments:
        raise UsageError("no environments configured", hint="add an `environments:` section to pipeline-kit.yml")
    return config
