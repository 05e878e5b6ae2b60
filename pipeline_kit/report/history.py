"""The verified view of a project's history: every ledger entry with each signed record it names
(a promotion's VSA, a rollback's hold, a root cause, a rollout step's signed pass) verified
against the identity policy, and each release's own evidence (subjects, SBOM, provenance)
verified as a promotion verifies it.

What draws or counts anything (the report, the delivery numbers, the summaries) reads this and
nothing else: a record that did not verify is marked `refused` with the reason, a ledger line with
no signed record is `unsigned`, and neither is ever shown or counted as passed. The ledger's own
chain must verify first (a broken chain stops everything, as it stops a promotion).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from pipeline_kit.digest import sha256_bytes
from pipeline_kit.errors import UsageError
from pipeline_kit.evidence import PROVENANCE_FILE, SBOM_FILE
from pipeline_kit.ledger import Entry, head
from pipeline_kit.models import RELEASE_ID, release_id_of
from pipeline_kit.promotion.model import Project, decision_file, history, resource_uri
from pipeline_kit.promotion.rollout_steps import STEP_PREDICATE
from pipeline_kit.promotion.shown import verified_evidence
from pipeline_kit.vsa import (
    VSA_PREDICATE,
    WAIVED,
    Accepted,
    Candidate,
    analysis_file,
    compensated_level,
    hold_level,
    root_cause_level,
    signed_statement,
)

RecordKind = Literal["vsa", "hold", "root-cause", "step"]
# entry.details key naming the attachment -> what kind of signed record it is
RECORD_KEYS: Mapping[str, RecordKind] = {"vsa": "vsa", "hold": "hold", "root_cause": "root-cause", "signed": "step"}
Status = Literal["verified", "refused", "unsigned"]


@dataclass(frozen=True)
class Record:
    """One signed record a ledger entry names, and what verifying it showed."""

    kind: RecordKind
    digest: str
    verified: bool
    why: str  # the signer when verified, else why it was refused
    signed_at: datetime | None = None  # verified: transparency-log or TSA time
    release: str | None = None  # the release its signed subjects make
    predicate: Mapping[str, Any] = field(default_factory=dict)
    ledger_head: tuple[int, str] | None = None  # (seq, hash) of the ledger entry it was signed after

    @property
    def levels(self) -> tuple[str, ...]:
        levels = self.predicate.get("verifiedLevels")
        return tuple(str(level) for level in levels) if isinstance(levels, list) else ()

    @property
    def annotations(self) -> Mapping[str, Any]:
        policy = self.predicate.get("policy")
        found = policy.get("annotations") if isinstance(policy, dict) else None
        return found if isinstance(found, dict) else {}


@dataclass(frozen=True)
class Event:
    """A ledger entry (an index a job could edit) and the signed records it names, verified."""

    entry: Entry
    records: tuple[Record, ...]
    # a verified record commits to a ledger head at or after this entry (the chain then carries
    # its fields, time included, under that signature); else the entry is the ledger's word only
    sealed: bool = False

    @property
    def status(self) -> Status:
        if not self.records:
            return "unsigned"
        return "verified" if all(r.verified for r in self.records) else "refused"

    @property
    def signed_at(self) -> datetime | None:
        """When, as signed: the verified time of its first verified record (None: nothing signed)."""
        return next((r.signed_at for r in self.records if r.verified), None)

    def refusal(self) -> str:
        return "; ".join(f"{r.kind} {r.digest[:12]}: {r.why}" for r in self.records if not r.verified)


@dataclass(frozen=True)
class SbomSummary:
    components: int
    licenses: tuple[tuple[str, int], ...]  # (licence, components), most used first
    spec_version: str


@dataclass(frozen=True)
class ReleaseFacts:
    """A release as its verified evidence shows it (`verified` False: only `why` is known)."""

    id: str
    verified: bool
    why: str
    name: str | None = None
    version: str | None = None
    subjects: tuple[tuple[str, str, int | None], ...] = ()  # (name, sha256, size)
    repository: str | None = None
    commit: str | None = None
    ref: str | None = None
    committed_at: datetime | None = None  # the commit time the signed provenance names
    builder: str | None = None
    invocation: str | None = None
    sbom: SbomSummary | None = None


@dataclass(frozen=True)
class History:
    """The verified view: every entry, oldest first, with its records verified; the releases."""

    source: str
    head: tuple[int, str]
    environments: tuple[str, ...]  # in promotion order
    events: tuple[Event, ...]
    releases: Mapping[str, ReleaseFacts]
    # documents entries name by digest (an analysis, a decision) that a signature commits to,
    # found and matching that digest: digest -> the JSON document
    documents: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    def document(self, event: Event, key: str) -> Mapping[str, Any] | None:
        """The document `event` names under details[`key`], when the digest is committed to."""
        digest = event.entry.details.get(key)
        return self.documents.get(digest) if isinstance(digest, str) else None

    def of(self, environment: str) -> list[Event]:
        return [e for e in self.events if e.entry.environment == environment]

    def refused(self) -> list[Event]:
        return [e for e in self.events if e.status == "refused"]


def load_history(project: Project, *, releases: bool = True) -> History:
    """The ledger's entries (chain verified) with every signed record they name verified, and
    (`releases`) the verified evidence of every release a verified record is about."""
    from pipeline_kit.verifier import verifier_for

    trust = project.trust
    entries = history(project.ledger)
    if not entries:  # nothing to verify: no trust root is needed (one offline may not be cached)
        environments = tuple(project.config.environment_order())
        return History(project.ledger.describe(), head(entries), environments, (), {})
    if trust.policy is None:
        raise UsageError("no identity policy to verify the history's signed records with")
    verifier = verifier_for(trust.load())
    seen: dict[tuple[str, str], Accepted | str] = {}

    def statement(digest: str, predicate_type: str) -> Accepted | str:
        if (digest, predicate_type) not in seen:
            data = project.ledger.attachment(digest)
            if data is None or sha256_bytes(data) != digest:
                seen[digest, predicate_type] = "not among the ledger's attachments"
            else:
                assert trust.policy is not None
                candidate = Candidate(f"attachment {digest[:12]}", data)
                seen[digest, predicate_type] = signed_statement(candidate, trust.policy, verifier, predicate_type)
        return seen[digest, predicate_type]

    events = _sealed([Event(entry, tuple(_records(project, entry, statement))) for entry in entries])
    facts: dict[str, ReleaseFacts] = {}
    if releases:
        for event in events:
            for record in event.records:
                if record.verified and record.release and record.release not in facts:
                    facts[record.release] = release_facts(project, entries, record.release)
    return History(
        project.ledger.describe(),
        head(entries),
        tuple(project.config.environment_order()),
        events,
        facts,
        _documents(project, events),
    )


# details key -> the evidence file it names by digest (kept in the release's archive)
DOCUMENTS: Mapping[str, Callable[[str], str]] = {"analysis": analysis_file, "decision": decision_file}


def _documents(project: Project, events: Sequence[Event]) -> dict[str, Mapping[str, Any]]:
    """The documents entries name by digest, when a signature commits to that digest (a verified
    record names it among its inputs, or a sealed entry names it), read where the kit keeps them
    and kept only when their bytes have that digest (a file edited after the fact is not shown)."""
    committed = {
        str((item.get("digest") or {}).get("sha256"))
        for event in events
        for record in event.records
        if record.verified
        for item in record.predicate.get("inputAttestations") or []
        if isinstance(item, dict) and isinstance(item.get("digest"), dict)
    }
    committed |= {
        digest for e in events if e.sealed for key in DOCUMENTS if isinstance(digest := e.entry.details.get(key), str)
    }
    found: dict[str, Mapping[str, Any]] = {}
    for event in events:
        entry = event.entry
        for key, name_of in DOCUMENTS.items():
            digest = entry.details.get(key)
            if digest not in committed or not isinstance(digest, str) or digest in found or entry.release is None:
                continue
            name = name_of(entry.environment)
            places = [project.evidence.path(name)]
            if RELEASE_ID.fullmatch(entry.release):
                places.append(project.evidence.archive(entry.release) / name)
            for data in [*(_read(path) for path in places), project.ledger.attachment(digest)]:
                if data is not None and sha256_bytes(data) == digest:
                    found[digest] = _json(data)
                    break
    return found


def _read(path: Path) -> bytes | None:
    from pipeline_kit._internal.files import MAX_EVIDENCE_BYTES, read_regular
    from pipeline_kit.errors import PipelineKitError

    try:
        return read_regular(path, MAX_EVIDENCE_BYTES)
    except (OSError, PipelineKitError):
        return None


def _records(project: Project, entry: Entry, statement: Any) -> list[Record]:
    records = []
    for key, kind in RECORD_KEYS.items():
        digest = entry.details.get(key)
        if not isinstance(digest, str):
            continue
        signed = statement(digest, STEP_PREDICATE if kind == "step" else VSA_PREDICATE)
        if isinstance(signed, str):
            records.append(Record(kind, digest, False, signed))
            continue
        problem = _disagrees(project, entry, kind, signed)
        release = release_id_of(signed.subjects) if signed.subjects else None
        head_ = signed.ledger_head
        if problem is None and head_ is not None and head_[0] >= entry.seq:
            problem = f"names ledger seq {head_[0]}, not one before its own entry (seq {entry.seq})"
        records.append(
            Record(
                kind,
                digest,
                problem is None,
                problem or signed.signer,
                signed.signed_at,
                release,
                signed.predicate,
                head_,
            )
        )
    return records


def _sealed(events: list[Event]) -> tuple[Event, ...]:
    """The events with `sealed` set, and every record whose ledger head is not the chain's entry
    at that seq refused (the ledger was rewritten or truncated under it)."""
    from dataclasses import replace

    from pipeline_kit.ledger import GENESIS

    hashes = [GENESIS, *(e.entry.hash for e in events)]
    through = 0
    checked = []
    for event in events:
        records = []
        for record in event.records:
            if record.verified and record.ledger_head is not None:
                seq, digest = record.ledger_head
                if seq >= len(hashes) or hashes[seq] != digest:
                    record = replace(
                        record, verified=False, why=f"decided on ledger seq {seq}, which this ledger rewrote"
                    )
                else:
                    through = max(through, seq)
            records.append(record)
        checked.append(replace(event, records=tuple(records)))
    return tuple(replace(event, sealed=event.entry.seq <= through) for event in checked)


def _disagrees(project: Project, entry: Entry, kind: RecordKind, signed: Accepted) -> str | None:
    """Why a verified statement does not prove what the entry says, or None."""
    environment = entry.environment
    if environment not in project.config.environments:
        return f"{environment} is not an environment of this config"
    uri = resource_uri(project.config, environment)
    if signed.predicate.get("resourceUri") != uri:
        return f"is for {signed.predicate.get('resourceUri')}, not {uri}"
    about = entry.details.get("from") if kind == "hold" else entry.release
    if not signed.subjects or release_id_of(signed.subjects) != about:
        return f"is about other subjects than release {about}'s"
    if kind == "step":
        return None
    result = signed.predicate.get("verificationResult")
    levels = signed.predicate.get("verifiedLevels") or []
    if kind == "vsa":
        if result == "PASSED" or (result == "FAILED" and WAIVED in levels):
            return None
        return f"verification result {result}"
    wanted = (
        (hold_level(environment), compensated_level(environment))
        if kind == "hold"
        else (root_cause_level(environment),)
    )
    if result != "FAILED" or not any(level in levels for level in wanted):
        return f"is not a signed {kind}"
    return None


def release_facts(project: Project, entries: Sequence[Entry], release: str) -> ReleaseFacts:
    """`release` as its evidence shows it, verified (the files read are those that verified as
    what was signed: the provenance statement and the SBOM predicate)."""
    if not RELEASE_ID.fullmatch(release):
        return ReleaseFacts(release, False, "not a release id")
    evidence, why = verified_evidence(project, entries, release)
    if evidence is None:
        return ReleaseFacts(release, False, why)
    loaded = evidence.load_release()
    provenance = _json(evidence.path(PROVENANCE_FILE).read_bytes())
    source = _first_dependency(provenance)
    uri = str(source.get("uri") or "").removeprefix("git+")
    repository, _, ref = uri.partition("@")
    commit = (source.get("digest") or {}).get("gitCommit")
    committed = (source.get("annotations") or {}).get("committedAt")
    details = (provenance.get("predicate") or {}).get("runDetails") or {}
    return ReleaseFacts(
        release,
        True,
        "signed",
        loaded.name,
        loaded.version,
        tuple((s.name, s.sha256, s.size) for s in loaded.subjects),
        repository or None,
        str(commit) if commit else None,
        ref or None,
        _time(committed),
        str((details.get("builder") or {}).get("id") or "") or None,
        str((details.get("metadata") or {}).get("invocationId") or "") or None,
        _sbom(_json(evidence.path(SBOM_FILE).read_bytes())),
    )


def _json(data: bytes) -> dict[str, Any]:
    try:
        value = json.loads(data)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _first_dependency(provenance: dict[str, Any]) -> dict[str, Any]:
    try:
        first = provenance["predicate"]["buildDefinition"]["resolvedDependencies"][0]
    except (KeyError, IndexError, TypeError):
        return {}
    return first if isinstance(first, dict) else {}


def _time(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


def _sbom(document: dict[str, Any]) -> SbomSummary:
    components = document.get("components")
    components = components if isinstance(components, list) else []
    counts: dict[str, int] = {}
    for component in components:
        names = set()
        for item in component.get("licenses") or [] if isinstance(component, dict) else []:
            license_ = item.get("license") if isinstance(item, dict) else None
            name = (license_ or {}).get("id") or (license_ or {}).get("name") or item.get("expression")
            if isinstance(name, str):
                names.add(name)
        for name in names or {"unknown"}:
            counts[name] = counts.get(name, 0) + 1
    ranked = tuple(sorted(counts.items(), key=lambda item: (-item[1], item[0])))
    return SbomSummary(len(components), ranked, str(document.get("specVersion") or "?"))
