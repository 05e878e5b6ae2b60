"""What signed evidence shows of an environment: the signed timeline of its arrivals and
rollbacks, the release it runs, and that release's verified evidence. The ledger says where to
look and can cast doubt; it never shows a release by itself."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from pipeline_kit.digest import sha256_bytes
from pipeline_kit.errors import PipelineKitError
from pipeline_kit.evidence import ARCHIVE_DIR, EvidenceDir
from pipeline_kit.ledger import Entry, Ledger, arrived, in_flight
from pipeline_kit.models import release_id_of
from pipeline_kit.promotion.model import Project, resource_uri
from pipeline_kit.vsa import (
    WAIVED,
    Candidate,
    compensated_level,
    hold_bundle,
    hold_level,
    read_bundles,
    verified,
    vsa_bundle,
)


@dataclass(frozen=True)
class Arrival:
    release: str
    signed_at: datetime
    seq: int  # the ledger head the decision names (signed): orders decisions within one second
    subjects: frozenset[tuple[str, str]]  # (name, sha256), as signed
    passed: bool  # PASSED; else waived (--break-glass): deployed, but never a rollback target
    slot: str | None = None  # the slot a rollout made it live in, as signed


@dataclass(frozen=True)
class Timeline:
    """What the signed record shows of one environment, oldest first: each release's arrivals (a
    signed VSA for it there, PASSED or waived) and each signed rollback (a FAILED VSA holding
    it out, naming the release it went back to). The ledger only says where to look."""

    arrivals: tuple[Arrival, ...]
    # (from, to, signed_at, seq, for cause): each signed move out; a compensation is not for cause
    holds: tuple[tuple[str, str | None, datetime, int, bool], ...]
    current: str | None  # the release the last signed event left there
    why: str  # when `current` is None
    since: int = 0  # the ledger seq that event signed: a failed deploy after it casts doubt
    before: str | None = None  # what ran before that event (what runs if its deploy failed)

    def held_since(self, arrival: Arrival) -> bool:
        """A signed rollback of the arrival's release after it, for cause (a tie: the rollback wins)."""
        return any(cause for cause in self._moves(arrival))

    def moved_since(self, arrival: Arrival) -> bool:
        """A signed move of the arrival's release out after it: a rollback or a compensation."""
        return any(True for _ in self._moves(arrival))

    def _moves(self, arrival: Arrival) -> Iterator[bool]:
        for bad, _, at, seq, cause in self.holds:
            if bad == arrival.release and (at, seq) >= (arrival.signed_at, arrival.seq):
                yield cause

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
    holds: list[tuple[str, str | None, datetime, int, bool]] = []
    # a dry run judges as CI will, with only the signatures taken on trust
    for signed in verified(candidates, trust.policy, None if trust.projected else trust.load()):
        if signed.predicate.get("resourceUri") != uri or not signed.subjects:
            continue
        release = release_id_of(signed.subjects)
        seq = signed.order[1]
        result, levels = signed.predicate.get("verificationResult"), signed.predicate.get("verifiedLevels") or []
        if result == "PASSED" or (result == "FAILED" and WAIVED in levels):
            slot = (signed.predicate.get("policy") or {}).get("annotations", {}).get("slot")
            slot = slot if isinstance(slot, str) else None
            arrivals.append(Arrival(release, signed.signed_at, seq, signed.subjects, result == "PASSED", slot))
        elif result == "FAILED" and (hold_level(environment) in levels or compensated_level(environment) in levels):
            to = (signed.predicate.get("policy") or {}).get("annotations", {}).get("to")
            to = to if isinstance(to, str) and RELEASE_ID.fullmatch(to) else None
            holds.append((release, to, signed.signed_at, seq, hold_level(environment) in levels))
    arrivals.sort(key=lambda a: (a.signed_at, a.seq))
    holds.sort(key=lambda h: (h[2], h[3]))
    events = sorted(  # by (time, seq), an arrival before a rollback of the same moment
        [(a.signed_at, a.seq, 0, a.release, None) for a in arrivals]
        + [(at, seq, 1, bad, to) for bad, to, at, seq, _ in holds],
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


def failed_since(
    entries: Sequence[Entry], environment: str, timeline: Timeline, beside: str | None = None
) -> Entry | None:
    """A deploy to `environment` after the signed event that made its release current, of any
    release, that failed or never finished (a `promoted` line still pending): what it left there
    is unknown. A line added later cannot take this doubt away (a `deployed` line after it changes
    nothing); a rollback's own failed deploy is the rollback's to retry. `beside`: a release whose
    promotion is under way here (a rollout's canary, measured beside the stable release)."""
    pending = {e.seq for e in in_flight(entries, environment) if e.release != beside}
    return next(
        (
            e
            for e in entries
            if e.environment == environment
            and e.seq > timeline.since
            and ((e.kind == "deploy-failed" and "rollback" not in e.details) or e.seq in pending)
        ),
        None,
    )


def doubt(entry: Entry, environment: str) -> str:
    """What a `failed_since` entry says, in words."""
    how = "failed" if entry.kind == "deploy-failed" else "did not finish"
    return f"the deploy of {entry.release} to {environment} {how} (ledger seq {entry.seq})"


def failed_there(entries: Sequence[Entry], environment: str) -> set[str]:
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
    beside: str | None = None,
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
    failed = failed_since(entries, environment, timeline, beside)
    if failed is not None:
        return Running(candidate, None, doubt(failed, environment))
    unfinished = [e for e in in_flight(entries, environment) if e.release == candidate]
    if unfinished:
        return Running(candidate, None, doubt(unfinished[-1], environment))
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


def verified_evidence(project: Project, entries: Sequence[Entry], release: str) -> tuple[EvidenceDir | None, str]:
    """`release`'s evidence (this evidence dir, its archive, or the ledger's attachments),
    verified against the identity policy, or None and why not."""
    from pipeline_kit.verify import SourceExpectation, projected_release, verify_release

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
    expected = SourceExpectation(trust.repository, trust.ref)
    if trust.projected:  # a dry run: the signatures on trust, the rest as CI checks it
        checked = projected_release(evidence, None, trust.policy, expected)
    else:
        checked = verify_release(evidence, None, trust.policy, trust.load(), expected)
    failure = checked.first_failure()
    if failure:
        return None, f"{release}'s evidence does not verify: {failure}"
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
