"""Signed promotion decisions (SLSA VSAs), and the one rule by which anything accepts one.

"This release passed ENV" means: a VSA about exactly the release's subjects, naming ENV's
resourceUri, with verificationResult PASSED, signed by an identity the policy trusts, verifies.
Its time is the signing time the transparency log or the timestamp authority vouches for, never
a field of the statement. `previous-stage`, `verify --env` and `ledger verify` all use `judge`,
so the rule is written once. Where VSAs are looked for is the caller's business (the evidence
dir, the ledger's attachments, the forge); since every one is verified, any store will do.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from pipeline_kit.digest import sha256_bytes
from pipeline_kit.errors import first_line
from pipeline_kit.evidence import PROMOTIONS_DIR
from pipeline_kit.identity import IdentityPolicy, certificate_identity
from pipeline_kit.models import Release
from pipeline_kit.signing import release_subjects, statement_subjects

VSA_PREDICATE = "https://slsa.dev/verification_summary/v1"
LEDGER_INPUT = "ledger"  # the inputAttestations entry naming the ledger head a decision was made on


def vsa_bundle(environment: str) -> str:
    """Where a promotion's VSA lives in the evidence dir."""
    return f"{PROMOTIONS_DIR}/{environment}.vsa.sigstore.json"


def hold_bundle(environment: str) -> str:
    """Where a signed rollback out of `environment` lives in the rolled-back release's archive."""
    return f"{PROMOTIONS_DIR}/{environment}.rollback.sigstore.json"


def root_cause_bundle(environment: str) -> str:
    """Where the signed root cause of a rollback out of `environment` lives in that release's archive."""
    return f"{PROMOTIONS_DIR}/{environment}.root-cause.sigstore.json"


@dataclass(frozen=True)
class Candidate:
    where: str  # for messages: the file, ledger attachment or forge record it came from
    data: bytes


def read_bundles(paths: Iterable[Path]) -> list[Candidate]:
    """The bundles kept at `paths`: regular files, read bounded (anything else is not a bundle
    the kit wrote, and is passed over)."""
    from pipeline_kit._internal.files import MAX_EVIDENCE_BYTES, read_regular
    from pipeline_kit.errors import PipelineKitError

    found = []
    for path in sorted(set(paths)):
        try:
            found.append(Candidate(str(path), read_regular(path, MAX_EVIDENCE_BYTES)))
        except (OSError, PipelineKitError):  # noqa: PERF203 - each path on its own
            continue
    return found


def distinct(candidate: Candidate) -> str:
    """What tells bundles apart: what is signed and its signature, together (a copy with other
    whitespace or key order is the same bundle, verified once; a copy with its payload changed is
    another, so a planted forgery never hides the genuine one); the bytes' digest when neither
    can be read."""
    try:
        envelope = json.loads(candidate.data)["dsseEnvelope"]
        signed = f"{envelope['payloadType']}\0{envelope['payload']}\0{envelope['signatures'][0]['sig']}"
        return f"dsse:{sha256_bytes(signed.encode())}"
    except (ValueError, KeyError, IndexError, TypeError, RecursionError, AttributeError):
        return f"sha256:{sha256_bytes(candidate.data)}"


@dataclass(frozen=True)
class Accepted:
    where: str
    signed_at: datetime  # verified: transparency-log integrated time or TSA timestamp
    signer: str
    predicate: dict[str, Any]
    subjects: frozenset[tuple[str, str]] = frozenset()  # (name, sha256) of the statement's subjects

    @property
    def order(self) -> tuple[datetime, int]:
        """When, as signed: the verified time, then the ledger seq it names (within one second)."""
        head = self.ledger_head
        return self.signed_at, head[0] if head else 0

    @property
    def ledger_head(self) -> tuple[int, str] | None:
        """(seq, hash) of the ledger entry the decision was made after, if it names one."""
        for item in self.predicate.get("inputAttestations") or []:
            if isinstance(item, dict) and item.get("name") == LEDGER_INPUT:
                seq = (item.get("annotations") or {}).get("seq")
                digest = (item.get("digest") or {}).get("sha256")
                if isinstance(seq, int) and isinstance(digest, str):
                    return seq, digest
        return None


@dataclass(frozen=True)
class Search:
    """What was found for one environment: accepted VSAs (oldest first), and why others were not."""

    environment: str
    accepted: tuple[Accepted, ...]
    rejected: tuple[str, ...]
    looked: tuple[str, ...]

    @property
    def latest(self) -> Accepted | None:
        return self.accepted[-1] if self.accepted else None

    def searched(self) -> str:
        """Where the search looked, and what it refused and why."""
        rejected = f"; refused: {'; '.join(self.rejected)}" if self.rejected else ""
        return f"looked in {'; '.join(self.looked) or 'nowhere'}{rejected}"

    def why_none(self) -> str:
        return f"no signed VSA shows {self.environment} passed this release ({self.searched()})"


def signed_statement(
    candidate: Candidate, policy: IdentityPolicy, verifier: Any, predicate_type: str = VSA_PREDICATE
) -> Accepted | str:
    """The bundle's verified statement of `predicate_type` (a VSA unless told), as an Accepted
    whose predicate is the statement's, or why not."""
    from sigstore.errors import Error as SigstoreError
    from sigstore.models import Bundle

    try:
        bundle = Bundle.from_json(candidate.data)
        payload, times = verifier.verify_dsse_at(bundle, policy.sigstore_policy())
    except (SigstoreError, ValueError, LookupError) as exc:
        return f"does not verify: {first_line(exc)}"
    try:
        statement = json.loads(payload)
    except ValueError:
        return "its payload is not JSON"
    predicate = statement.get("predicate") if isinstance(statement, dict) else None
    if not isinstance(predicate, dict) or statement.get("predicateType") != predicate_type:
        return "not a SLSA verification summary" if predicate_type == VSA_PREDICATE else f"not a {predicate_type}"
    if not times:
        return "carries no verified signing time"
    identity, issuer = certificate_identity(bundle.signing_certificate)
    # The latest verified time: a signer cannot make a decision look older than it is.
    signed_at = max(t.time for t in times)
    subjects = frozenset(statement_subjects(statement))
    return Accepted(candidate.where, signed_at, f"signed by {identity} ({issuer})", predicate, subjects)


def claimed_statement(
    candidate: Candidate, policy: IdentityPolicy, predicate_type: str = VSA_PREDICATE
) -> Accepted | str:
    """A dry run's reading of a bundle: its statement as `signed_statement` reads it, the
    certificate's identity checked against `policy`, and only the signature and the log's proof
    taken on trust (what CI verifies); the signing time is the certificate's start."""
    from sigstore.errors import Error as SigstoreError
    from sigstore.models import Bundle

    try:
        bundle = Bundle.from_json(candidate.data)
        envelope = json.loads(candidate.data)["dsseEnvelope"]
        statement = json.loads(base64.b64decode(envelope["payload"], validate=True))
        # the certificate's start: minutes before the signature; its verified time is CI's to check
        signed_at = bundle.signing_certificate.not_valid_before_utc
    except (SigstoreError, ValueError, LookupError, TypeError) as exc:
        return f"not a readable Sigstore bundle: {first_line(exc)}"
    predicate = statement.get("predicate") if isinstance(statement, dict) else None
    if not isinstance(predicate, dict) or statement.get("predicateType") != predicate_type:
        return f"not a {predicate_type}"
    identity, issuer = certificate_identity(bundle.signing_certificate)
    accepted, why = policy.accepts_certificate(bundle.signing_certificate)
    if not accepted:
        return why
    subjects = frozenset(statement_subjects(statement))
    return Accepted(candidate.where, signed_at, f"to be verified in CI: {identity} ({issuer})", predicate, subjects)


def verified(
    candidates: Iterable[Candidate],
    policy: IdentityPolicy,
    trust_config: Any | None,
    predicate_type: str = VSA_PREDICATE,
) -> list[Accepted]:
    """The statements of `predicate_type` among `candidates` that verify for `policy`, each
    distinct bundle once (see `distinct`); the others are passed over. `trust_config` None: a
    dry run, which takes the signatures on trust (`claimed_statement`)."""
    from pipeline_kit.verifier import verifier_for

    verifier = verifier_for(trust_config) if trust_config is not None else None

    def check(candidate: Candidate) -> Accepted | str:
        if verifier is None:
            return claimed_statement(candidate, policy, predicate_type)
        return signed_statement(candidate, policy, verifier, predicate_type)

    return [signed for _, signed in each_distinct(candidates, check) if not isinstance(signed, str)]


def each_distinct(
    candidates: Iterable[Candidate], check: Callable[[Candidate], Accepted | str]
) -> Iterator[tuple[Candidate, Accepted | str]]:
    """Each candidate with what `check` says of it, but a copy of a bundle already accepted (see
    `distinct`) is passed over unchecked. Only accepted bundles count as seen: a copy that fails
    (a planted one with its payload or proof changed) never hides one that verifies."""
    seen: set[str] = set()
    for candidate in candidates:
        key = distinct(candidate)
        if key in seen:
            continue
        verdict = check(candidate)
        if not isinstance(verdict, str):
            seen.add(key)
        yield candidate, verdict


# The verifiedLevels value of a VSA whose promotion's analysis after the deploy passed: the
# previous-stage gate asks for it when the environment before has an `analysis:`.
ANALYSIS_PASSED = "PIPELINE_KIT_ANALYSIS_PASSED"
# The verifiedLevels value saying where a VSA was signed: apart from any user command (the
# isolated layout: `arrive` in a job that runs only the kit), or in the process that ran the
# deploy command (the shared layout). A record for audits, as a signer can claim either: what
# makes the isolated layout a requirement is an identity policy that pins the kit's workflows.
SIGNED_APART = "PIPELINE_KIT_SIGNED_APART"
SIGNED_BESIDE_USER_CODE = "PIPELINE_KIT_SIGNED_BESIDE_USER_CODE"
# The verifiedLevels value of a waived promotion (`--break-glass`): FAILED, as it did not pass,
# yet a signed record that the release was deployed there.
WAIVED = "PIPELINE_KIT_BREAK_GLASS"
# The verifiedLevels value of a promotion that put the signed release back after a drift
# (`drift --reconcile`): a promotion like any other, signed for that reason.
RECONCILED = "PIPELINE_KIT_RECONCILED"


def analysis_file(environment: str) -> str:
    """Where the measurements of a promotion's analysis live in the evidence dir."""
    return f"{PROMOTIONS_DIR}/{environment}.analysis.json"


def hold_level(environment: str) -> str:
    """The verifiedLevels value of a signed rollback: the release was taken out of `environment`."""
    return f"PIPELINE_KIT_ROLLED_BACK_{environment.upper().replace('-', '_')}"


def compensated_level(environment: str) -> str:
    """The verifiedLevels value of a signed compensation: the release was taken out of
    `environment` because a sibling in its release plan failed, not for a fault of its own (no
    hold: it may be promoted again)."""
    return f"PIPELINE_KIT_COMPENSATED_{environment.upper().replace('-', '_')}"


def root_cause_level(environment: str) -> str:
    """The verifiedLevels value of a signed root cause: it lifts the release's hold in `environment`."""
    return f"PIPELINE_KIT_ROOT_CAUSE_{environment.upper().replace('-', '_')}"


def judge(
    candidate: Candidate,
    release: Release,
    resource_uri: str,
    policy: IdentityPolicy,
    verifier: Any,
    hold: str | None = None,
    deployed: bool = False,
) -> Accepted | str:
    """The accepted VSA, or why `candidate` does not prove `release` passed `resource_uri` (or,
    with `hold`, was rolled back out of it: FAILED, carrying that level; with `deployed`, was
    deployed there: PASSED, or waived)."""
    signed = signed_statement(candidate, policy, verifier)
    if isinstance(signed, str):
        return signed
    if signed.subjects != release_subjects(release):
        return "is about other subjects than this release's"
    if signed.predicate.get("resourceUri") != resource_uri:
        return f"is for {signed.predicate.get('resourceUri')}, not {resource_uri}"
    expected = "FAILED" if hold else "PASSED"
    levels = signed.predicate.get("verifiedLevels") or []
    waived = deployed and signed.predicate.get("verificationResult") == "FAILED" and WAIVED in levels
    if signed.predicate.get("verificationResult") != expected and not waived:
        return f"verification result {signed.predicate.get('verificationResult')}"
    if hold and hold not in levels:
        return "is not a rollback"
    return signed


def search(
    environment: str,
    candidates: Iterable[Candidate],
    looked: Iterable[str],
    release: Release,
    resource_uri: str,
    policy: IdentityPolicy,
    trust_config: Any,
    hold: str | None = None,
    deployed: bool = False,
) -> Search:
    """Judge every candidate (each distinct VSA once), newest accepted last (see `judge`)."""
    from pipeline_kit.verifier import verifier_for

    verifier = verifier_for(trust_config)
    accepted: list[Accepted] = []
    rejected: list[str] = []

    def check(candidate: Candidate) -> Accepted | str:
        return judge(candidate, release, resource_uri, policy, verifier, hold, deployed)

    for candidate, verdict in each_distinct(candidates, check):
        if isinstance(verdict, str):
            rejected.append(f"{candidate.where}: {verdict}")
        else:
            accepted.append(verdict)
    accepted.sort(key=lambda item: item.signed_at)
    return Search(environment, tuple(accepted), tuple(rejected), tuple(looked))
