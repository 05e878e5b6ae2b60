"""Verify an evidence dir: every check that makes a release trustworthy, each reported.

For each subject: the file's digest (when the file is here) and its bundle against the identity
policy. For the provenance and SBOM attestations: the bundle, that the signed statement is the
file in the evidence dir, and that its subjects are exactly release.json's; for provenance also
the source repository and ref. A failure never stops the others from being reported.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline_kit._internal.text import counted
from pipeline_kit.digest import cpu_workers, hash_file, sha256_bytes
from pipeline_kit.errors import UsageError, first_line
from pipeline_kit.evidence import (
    BUNDLES_DIR,
    PROVENANCE_FILE,
    RELEASE_FILE,
    SBOM_FILE,
    SIGNED_RECORDS,
    SUMS_FILE,
    TEST_RESULT_BUNDLE,
    EvidenceDir,
)
from pipeline_kit.identity import IdentityPolicy, certificate_identity
from pipeline_kit.models import Release, Source, Subject
from pipeline_kit.signing import (
    PROVENANCE_BUNDLE,
    PROVENANCE_PREDICATE,
    SBOM_BUNDLE,
    SBOM_PREDICATE,
    release_subjects,
    statement_subjects,
    subject_bundle,
)

if TYPE_CHECKING:
    from pipeline_kit.vsa import Candidate


@dataclass(frozen=True)
class Check:
    target: str  # the file the check is about
    check: str  # what was checked
    ok: bool
    detail: str


def first_failure(checks: Iterable[Check]) -> str | None:
    """The first failed check as `target: detail` (what a denial or an error names), or None
    when every check passed."""
    failed = next((check for check in checks if not check.ok), None)
    return f"{failed.target}: {failed.detail}" if failed is not None else None


@dataclass(frozen=True)
class SourceExpectation:
    repository: str | None = None
    ref: str | None = None


@dataclass(frozen=True)
class Verification:
    release: Release
    policy: IdentityPolicy
    checks: tuple[Check, ...]
    source: Source | None = None  # from the signed provenance, when it verified
    test_results: dict[str, Any] | None = None  # the signed test-result predicate, when there is one

    @property
    def commit(self) -> str | None:
        """The source commit the signed provenance names (never release.json's own copy)."""
        return self.source.commit if self.source is not None else None

    @property
    def ok(self) -> bool:
        return all(check.ok for check in self.checks)

    @property
    def failures(self) -> list[Check]:
        return [check for check in self.checks if not check.ok]

    def first_failure(self) -> str | None:
        """Why the evidence does not verify (`target: detail` of the first failed check), or None."""
        return first_failure(self.checks)

    def as_dict(self) -> dict[str, Any]:
        return {
            "release": self.release.id,
            "policy": asdict(self.policy),
            "ok": self.ok,
            "checks": [asdict(check) for check in self.checks],
        }


def verify_release(
    evidence: EvidenceDir,
    workdir: Path | None,
    policy: IdentityPolicy,
    trust_config: Any,
    source: SourceExpectation = SourceExpectation(),
    custody: Custody | None = None,
) -> Verification:
    from pipeline_kit.verifier import verifier_for

    release = evidence.load_release()
    verifier = verifier_for(trust_config)
    sigstore_policy = policy.sigstore_policy()
    checks: list[Check] = []

    def subject_checks(subject: Subject) -> tuple[Check, Check]:
        return _subject_digest(subject, workdir), _subject_signature(subject, evidence, verifier, sigstore_policy)

    # Each subject's file hash and signature check are independent of the others': hashing
    # releases the GIL, so a release of many (or large) files verifies on every core.
    with ThreadPoolExecutor(max_workers=cpu_workers(len(release.subjects))) as pool:
        for pair in pool.map(subject_checks, release.subjects):
            checks += pair
    provenance_checks, provenance = _attestation(
        release, evidence, verifier, sigstore_policy, PROVENANCE_BUNDLE, PROVENANCE_FILE, PROVENANCE_PREDICATE
    )
    checks += provenance_checks
    checks += _attestation(release, evidence, verifier, sigstore_policy, SBOM_BUNDLE, SBOM_FILE, SBOM_PREDICATE)[0]
    # a verified provenance without a resolved source (built outside a checkout) has an empty one
    signed = (signed_source(provenance) or Source()) if provenance is not None else None
    checks.append(_provenance_source(signed, source))
    checks.append(_release_source(release, signed))
    checks.append(_checksums(evidence, provenance))
    checks += [
        _checksums(evidence, provenance, name)
        for name in SIGNED_RECORDS
        if evidence.path(name).is_file() or _signed_byproduct(provenance, name)
    ]
    test_results = None
    if evidence.path(TEST_RESULT_BUNDLE).is_file():  # optional evidence: checked when present
        from pipeline_kit.testresults import TEST_RESULT_PREDICATE

        result_checks, statement = _attestation(
            release, evidence, verifier, sigstore_policy, TEST_RESULT_BUNDLE, None, TEST_RESULT_PREDICATE
        )
        checks += result_checks
        test_results = statement.get("predicate") if statement is not None else None
    if custody is not None:
        checks += custody_checks(evidence, release, policy, trust_config, custody)
    return Verification(release, policy, tuple(checks), signed, test_results)


def projected_release(
    evidence: EvidenceDir, workdir: Path | None, policy: IdentityPolicy, source: SourceExpectation
) -> Verification:
    """A dry run's view of the unsigned evidence here, judged as CI will judge it once signed by
    the policy's identity. Only the signatures are taken on trust (they are what CI adds); the
    rest is checked as `verify_release` checks it: each file's digest, the provenance's subjects,
    its source repository against the policy's (it comes from this clone's remote, as CI's does),
    release.json's copy of the source, SHA256SUMS. The ref is not judged: CI builds its own."""
    release = evidence.load_release()
    promise = f"to be signed in CI by {policy.describe()}"
    checks: list[Check] = []
    for subject in release.subjects:
        checks.append(_subject_digest(subject, workdir))
        checks.append(Check(subject_bundle(subject.name), "signature", True, promise))
    data, _ = evidence.read_checked(PROVENANCE_FILE)
    try:
        provenance = json.loads(data) if data is not None else {}
    except ValueError:
        provenance = {}
    ours = isinstance(provenance, dict) and statement_subjects(provenance) == release_subjects(release)
    detail = f"{counted(len(release.subjects), 'subject')}, as release.json" if ours else "not release.json's subjects"
    checks += [
        Check(PROVENANCE_BUNDLE, "signature", True, promise),
        Check(PROVENANCE_BUNDLE, "subjects", ours, detail),
        Check(SBOM_BUNDLE, "signature", True, promise),
        Check(SBOM_FILE, "present", evidence.path(SBOM_FILE).is_file(), "what CI will attest"),
    ]
    signed = signed_source(provenance) if ours else None
    checks.append(_provenance_source(signed, SourceExpectation(source.repository, None)))
    checks.append(_release_source(release, signed))
    checks.append(_checksums(evidence, provenance))
    checks += [_checksums(evidence, provenance, name) for name in SIGNED_RECORDS if evidence.path(name).is_file()]
    return Verification(release, policy, tuple(checks), signed)


def _subject_digest(subject: Subject, workdir: Path | None) -> Check:
    if workdir is None:
        return Check(subject.name, "digest", True, "files not checked here: the signed digest is what is deployed")
    path = workdir / subject.name
    if not path.is_file():
        return Check(subject.name, "digest", True, "file not present here: its recorded digest is verified")
    actual = hash_file(path).sha256
    if actual != subject.sha256:
        return Check(subject.name, "digest", False, f"sha256 is {actual}, release.json says {subject.sha256}")
    return Check(subject.name, "digest", True, f"sha256 {subject.sha256[:16]}... matches")


BUNDLE_MISSING = "bundle missing"
SIGN_FIRST = (
    "sign first with `pipeline-kit sign` (or `pipeline-kit run`), or download CI's evidence artifact "
    "into the evidence dir"
)


def require_signed(evidence: EvidenceDir) -> None:
    """Refuse (exit 2) to judge a release nothing signed yet: every check would say a bundle is
    missing, and loading a trust root for that (which offline may not be cached) helps no one."""
    if evidence.has_release() and not evidence.has_signatures():
        raise UsageError(f"nothing signed yet: {evidence.path(BUNDLES_DIR)} holds no signature", hint=SIGN_FIRST)


def _load_bundle(evidence: EvidenceDir, name: str) -> tuple[Any, str | None]:
    from sigstore.errors import Error as SigstoreError
    from sigstore.models import Bundle

    data, why = evidence.read_checked(name)
    if data is None:
        return None, BUNDLE_MISSING if why == "file missing" else why
    try:
        return Bundle.from_json(data), None
    except (SigstoreError, ValueError) as exc:
        return None, f"not a valid Sigstore bundle: {first_line(exc)}"


def _signer(bundle: Any) -> str:
    identity, issuer = certificate_identity(bundle.signing_certificate)
    return f"signed by {identity} ({issuer})"


def _subject_signature(subject: Subject, evidence: EvidenceDir, verifier: Any, policy: Any) -> Check:
    from sigstore.errors import Error as SigstoreError
    from sigstore.hashes import Hashed
    from sigstore_models.common.v1 import HashAlgorithm

    name = subject_bundle(subject.name)
    bundle, problem = _load_bundle(evidence, name)
    if bundle is None:
        return Check(name, "signature", False, problem or "")
    try:
        verifier.verify_artifact(
            Hashed(algorithm=HashAlgorithm.SHA2_256, digest=bytes.fromhex(subject.sha256)), bundle, policy
        )
    except (SigstoreError, ValueError, LookupError) as exc:
        return Check(name, "signature", False, f"does not verify for {subject.name}: {first_line(exc)}")
    return Check(name, "signature", True, _signer(bundle))


def _attestation(
    release: Release,
    evidence: EvidenceDir,
    verifier: Any,
    policy: Any,
    bundle_name: str,
    file_name: str | None,  # the evidence file the statement must equal, if any
    predicate_type: str,
) -> tuple[list[Check], dict[str, Any] | None]:
    """The attestation's checks, and its signed statement when it verified and is about this release."""
    from sigstore.errors import Error as SigstoreError

    bundle, problem = _load_bundle(evidence, bundle_name)
    if bundle is None:
        return [Check(bundle_name, "signature", False, problem or "")], None
    try:
        payload_type, payload = verifier.verify_dsse(bundle, policy)
    except (SigstoreError, ValueError, LookupError) as exc:
        return [Check(bundle_name, "signature", False, f"does not verify: {first_line(exc)}")], None
    checks = [Check(bundle_name, "signature", True, _signer(bundle))]
    statement = json.loads(payload) if payload_type == "application/vnd.in-toto+json" else {}
    if statement.get("predicateType") != predicate_type:
        checks.append(Check(bundle_name, "predicate", False, f"expected predicate type {predicate_type}"))
        return checks, None
    ours = statement_subjects(statement) == release_subjects(release)
    if not ours:
        checks.append(Check(bundle_name, "subjects", False, "the attested subjects are not release.json's"))
    else:
        detail = f"{counted(len(release.subjects), 'subject')}, as release.json"
        checks.append(Check(bundle_name, "subjects", True, detail))
    if file_name is None:
        return checks, statement if ours else None
    data, why = evidence.read_checked(file_name)
    try:
        on_disk = json.loads(data) if data is not None else None
    except ValueError:
        data, why = None, "not JSON"
    if data is None:
        checks.append(Check(file_name, "matches attestation", False, why))
    else:
        signed = statement if file_name == PROVENANCE_FILE else statement.get("predicate")
        if on_disk != signed:
            checks.append(Check(file_name, "matches attestation", False, "differs from what was signed"))
        else:
            checks.append(Check(file_name, "matches attestation", True, "is what was signed"))
    return checks, statement if ours else None


@dataclass(frozen=True)
class Custody:
    """Which environments a release must have passed, the resourceUri each VSA must name, and
    where to look for VSAs (environment -> candidates and the places looked)."""

    environments: tuple[str, ...]  # the target first, then upstream, nearest first
    resource_uris: dict[str, str]
    find: Callable[[str], tuple[list[Candidate], list[str]]]


def custody_checks(
    evidence: EvidenceDir, release: Release, policy: IdentityPolicy, trust_config: Any, custody: Custody
) -> list[Check]:
    """A signed, PASSED VSA for each environment, about this release, from an accepted signer:
    the same rule as the previous-stage gate (`pipeline_kit.vsa`)."""
    from pipeline_kit.vsa import search, vsa_bundle

    checks = []
    for environment in custody.environments:
        candidates, looked = custody.find(environment)
        found = search(
            environment, candidates, looked, release, custody.resource_uris[environment], policy, trust_config
        )
        name = vsa_bundle(environment)
        if found.latest is None:
            checks.append(Check(name, "custody", False, found.why_none()))
            continue
        proof = found.latest
        detail = f"{environment}: PASSED at {proof.signed_at:%Y-%m-%dT%H:%M:%SZ} ({proof.where}), {proof.signer}"
        checks.append(Check(name, "custody", True, detail + _applied_policy(proof.predicate)))
    return checks


def signed_source(statement: dict[str, Any]) -> Source | None:
    """Repository, ref and commit of a verified provenance statement's first resolved dependency."""
    try:
        dependency = statement["predicate"]["buildDefinition"]["resolvedDependencies"][0]
        uri = str(dependency["uri"])
        commit = (dependency.get("digest") or {}).get("gitCommit")
    except (KeyError, IndexError, TypeError, AttributeError):
        return None
    repository, _, ref = uri.removeprefix("git+").partition("@")
    return Source(repository=repository or None, ref=ref or None, commit=str(commit) if commit else None)


def _applied_policy(predicate: dict[str, Any]) -> str:
    """The identity policy a VSA says its promotion applied, and what overrode the config's."""
    annotations = (predicate.get("policy") or {}).get("annotations") or {}
    identity = annotations.get("identity") or {}
    if not isinstance(identity, dict) or not identity:
        return ""
    who = identity.get("san") or f"~ {identity.get('sanRegex')}"
    overrides = annotations.get("overrides") or []
    changed = f", overriding the config's {', '.join(map(str, overrides))}" if overrides else ""
    return f"; judged under identity {who} ({identity.get('issuer')}){changed}"


def _provenance_source(signed: Source | None, source: SourceExpectation) -> Check:
    if source.repository is None and source.ref is None:
        return Check(PROVENANCE_FILE, "source", True, "no source repository required")
    if signed is None or signed.repository is None:
        return Check(PROVENANCE_FILE, "source", False, "no verified provenance names a source repository")
    repository, ref = signed.repository, signed.ref or ""
    if source.repository is not None and repository.rstrip("/") != source.repository.rstrip("/"):
        return Check(PROVENANCE_FILE, "source", False, f"built from {repository}, not {source.repository}")
    if source.ref is not None and ref != source.ref:
        return Check(PROVENANCE_FILE, "source", False, f"built from ref {ref or '(none)'}, not {source.ref}")
    return Check(PROVENANCE_FILE, "source", True, f"built from {repository}@{ref}")


def _signed_byproduct(provenance: dict[str, Any] | None, name: str) -> str | None:
    byproducts = ((provenance or {}).get("predicate") or {}).get("runDetails") or {}
    return next(
        (
            b.get("digest", {}).get("sha256")
            for b in byproducts.get("byproducts") or []
            if isinstance(b, dict) and b.get("name") == name
        ),
        None,
    )


def _checksums(evidence: EvidenceDir, provenance: dict[str, Any] | None, name: str = SUMS_FILE) -> Check:
    """SHA256SUMS is what `sha256sum -c` users trust, each signed record (migrations.json,
    contracts.json) what a gate judges: each must be the file the provenance signed."""
    if provenance is None:
        return Check(name, "matches provenance", False, "no verified provenance records its digest")
    signed = _signed_byproduct(provenance, name)
    if signed is None:
        return Check(name, "matches provenance", False, "the signed provenance records no digest for it")
    data, why = evidence.read_checked(name)
    if data is None:
        return Check(name, "matches provenance", False, why)
    if sha256_bytes(data) != signed:
        return Check(name, "matches provenance", False, "differs from the file the provenance signed")
    return Check(name, "matches provenance", True, "is the file the provenance signed")


def _release_source(release: Release, signed: Source | None) -> Check:
    """release.json's source is a copy: the forge gates ask about a commit, which must be the signed one."""
    if signed is None:
        return Check(RELEASE_FILE, "source", False, "no verified provenance to compare the source with")
    for field in ("repository", "ref", "commit"):
        mine, theirs = getattr(release.source, field), getattr(signed, field)
        if (mine or None) != (theirs or None):
            return Check(
                RELEASE_FILE, "source", False, f"source {field} {mine} is not the signed provenance's {theirs}"
            )
    return Check(RELEASE_FILE, "source", True, "source repository, ref and commit are the signed provenance's")
