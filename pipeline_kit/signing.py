"""Keyless signing of a release with Sigstore: every subject, plus the provenance and the SBOM
as DSSE in-toto attestations, all in one signer session (one Fulcio certificate).

Nothing is written until every bundle has been produced and verified: the client checks very
little at sign time (not the chain, not the log's signatures), so each bundle is verified
against the trust root before it counts. sigstore-python is imported only here and in verify.
"""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from time import monotonic
from typing import Any

from pipeline_kit.digest import hash_files, sha256_bytes
from pipeline_kit.errors import EnvironmentFailure, UsageError, VerificationError, first_line
from pipeline_kit.evidence import BUNDLES_DIR, PROVENANCE_FILE, SBOM_FILE, TEST_RESULT_BUNDLE, EvidenceDir
from pipeline_kit.identity import IdentityPolicy, certificate_identity
from pipeline_kit.models import Release, Subject

SBOM_PREDICATE = "https://cyclonedx.org/bom"
PROVENANCE_PREDICATE = "https://slsa.dev/provenance/v1"
PROVENANCE_BUNDLE = f"{BUNDLES_DIR}/provenance.sigstore.json"
SBOM_BUNDLE = f"{BUNDLES_DIR}/sbom.sigstore.json"


def subject_bundle(name: str) -> str:
    """Where a subject's bundle lives: the subject's path under bundles/."""
    return f"{BUNDLES_DIR}/{name}.sigstore.json"


@dataclass(frozen=True)
class Signed:
    release: Release
    bundles: tuple[str, ...]
    identity: str
    issuer: str | None
    token_source: str
    log_entries: tuple[int, ...]


def read_checked(evidence: EvidenceDir, name: str, release: Release) -> bytes:
    """An evidence file's bytes, which must still have the digest release.json recorded."""
    path = evidence.path(name)
    if not path.is_file():
        step = "sbom" if name == SBOM_FILE else "provenance"
        raise UsageError(f"{path}: missing", hint=f"run `pipeline-kit {step}` before signing")
    data = path.read_bytes()
    recorded = release.evidence.get(name, {}).get("sha256")
    if recorded != sha256_bytes(data):
        raise VerificationError(f"{path}: changed since release.json recorded its digest; refusing to sign it")
    return data


def statement_subjects(statement: dict[str, Any]) -> set[tuple[str, str]]:
    """(name, sha256) of an in-toto statement's subjects; malformed entries never match."""
    subjects = statement.get("subject")
    found = set()
    for s in subjects if isinstance(subjects, list) else []:
        if isinstance(s, dict):
            digest = s.get("digest")
            found.add((str(s.get("name")), str(digest.get("sha256") if isinstance(digest, dict) else None)))
    return found


def release_subjects(release: Release) -> set[tuple[str, str]]:
    return {(s.name, s.sha256) for s in release.subjects}


def check_local_files(release: Release, workdir: Path) -> None:
    """Subjects present here must still hash to their recorded digest."""
    present = [s for s in release.subjects if (workdir / s.name).is_file()]
    for subject, digest in zip(present, hash_files([workdir / s.name for s in present]), strict=True):
        if digest.sha256 != subject.sha256:
            raise VerificationError(
                f"{subject.name}: sha256 {digest.sha256} differs from release.json ({subject.sha256})"
            )


@dataclass(frozen=True)
class Signable:
    """One thing to sign: a subject by its sha256, or an in-toto statement (DSSE)."""

    bundle: str  # the bundle's path in the evidence dir
    sha256: str | None = None
    statement: bytes | None = None


@dataclass(frozen=True)
class SignedBundles:
    files: dict[str, bytes]
    identity: str
    issuer: str | None
    log_entries: tuple[int, ...]


def statement_json(subjects: tuple[Subject, ...], predicate_type: str, predicate: Any) -> bytes:
    """An in-toto Statement v1 about `subjects`."""
    return json.dumps(
        {
            "_type": "https://in-toto.io/Statement/v1",
            "subject": [{"name": s.name, "digest": {"sha256": s.sha256}} for s in subjects],
            "predicateType": predicate_type,
            "predicate": predicate,
        },
        sort_keys=True,
    ).encode()


# Items signed at once: enough to hide a distant log's latency, few enough not to hammer it.
SIGNING_WORKERS = 16


@dataclass
class _Kept:
    """A signer this process keeps, with what it was made for and how long it may sign."""

    trust_config: Any  # held, so that no other takes the id the key is made of
    signer: Any
    made: float  # monotonic(), when its certificate was asked for
    lifetime: float | None = None  # its certificate's validity in seconds, known once it has signed

    def usable(self, now: float) -> bool:
        """Whether it may sign at `now` (monotonic): its certificate has REUSE_MARGIN left,
        counted from when it was asked for on this process's own clock (the runner's wall clock
        may be off Sigstore's). One that never signed (its signing failed) is not taken again."""
        return self.lifetime is not None and self.lifetime - (now - self.made) > REUSE_MARGIN

    def spent(self, now: float) -> bool:
        """Whether it is of no more use: its certificate's time is up, or it is older than
        REUSE_MARGIN and never signed (a signer made a moment ago may be signing now)."""
        return not self.usable(now) and (self.lifetime is not None or now - self.made > REUSE_MARGIN)


# The signers of this process, by (trust config, token, digests to Rekor v1): a process that signs
# again with one token on one trust config (`run`: the release, then the promotion's VSA; a release
# plan: each step's VSA; a rollout with GitLab's job token: each step) asks Fulcio once. One is
# taken again only while its certificate has REUSE_MARGIN left: sigstore refuses an expired
# certificate, and a signature logged after the certificate's end would not verify.
_KEPT: dict[tuple[int, str, bool], _Kept] = {}
_KEPT_LOCK = threading.Lock()
REUSE_MARGIN = 120.0  # seconds
MOST_KEPT = 8


def _kept_signer(trust_config: Any, token: str, identity_token: Any, bare: bool) -> _Kept:
    """A signer for `token` on `trust_config` (`bare`: for digests, on Rekor v1), kept or new."""
    from sigstore.sign import Signer, SigningContext

    key, now = (id(trust_config), token, bare), monotonic()
    with _KEPT_LOCK:
        kept = _KEPT.get(key)
        if kept is not None and kept.trust_config is trust_config and kept.usable(now):
            return kept
    context = _bare_signing_context(trust_config) if bare else SigningContext.from_trust_config(trust_config)
    kept = _Kept(trust_config, Signer(identity_token, context, cache=True), now)  # asks Fulcio now
    with _KEPT_LOCK:
        for old in [k for k, v in _KEPT.items() if v.spent(now)]:
            del _KEPT[old]
        while len(_KEPT) >= MOST_KEPT:
            del _KEPT[next(iter(_KEPT))]
        _KEPT[key] = kept
    return kept


def _signers(trust_config: Any, token: str, identity_token: Any, items: list[Signable]) -> tuple[_Kept, _Kept]:
    """The signer of statements and the signer of digests: one certificate for all, two when
    statements go to Rekor v2 (digests never do: see _bare_signing_context)."""
    wanted = [False]
    if any(i.statement is None for i in items) and _logs_on_v2(trust_config):
        wanted.append(True)
    # each new signer asks Fulcio for its certificate: both at once, a round trip apart otherwise
    with ThreadPoolExecutor(max_workers=len(wanted)) as pool:
        opening = [pool.submit(_kept_signer, trust_config, token, identity_token, bare) for bare in wanted]
    signers = [future.result() for future in opening]
    return signers[0], signers[-1]


def _logs_on_v2(trust_config: Any) -> bool:
    """Whether this trust config's signing goes to a Rekor v2 log."""
    return type(trust_config.signing_config.get_tlogs()[0]).__name__ == "RekorV2Client"


def _bare_signing_context(trust_config: Any) -> Any:
    """Where a signature over a bare digest is logged: Rekor v1 always. Rekor v2 logs a DSSE
    signature as a signature over sha256(PAE(statement)), the very entry a signature over that
    digest makes; so whoever chose a subject's digest (a build job: it hands the digests over)
    could turn the subject's signature into a signed statement of its choosing. On v1 the two are
    different kinds, and a verifier refuses a DSSE bundle logged as a bare signature."""
    import copy

    from sigstore.sign import SigningContext

    pinned = copy.copy(trust_config)
    pinned.force_tlog_version = 1
    try:
        return SigningContext.from_trust_config(pinned)
    except (IndexError, ValueError) as exc:
        raise EnvironmentFailure(
            "signing a digest needs a Rekor v1 log, and the trust config offers none: on Rekor v2 a "
            f"signature over a digest cannot be told from a signed statement ({first_line(exc)})"
        ) from exc


def sign_all(trust_config: Any, token: str, token_source: str, items: list[Signable]) -> SignedBundles:
    """Sign every item in one signer session (one certificate; two when statements go to Rekor v2,
    see _signers), verify each bundle against the identity it was issued for, and return the
    bundles' JSON; nothing is written here."""
    from requests import RequestException
    from sigstore import dsse

    # The service clients' errors are not sigstore.errors.Error subclasses: name them here.
    from sigstore._internal.fulcio.client import ExpiredCertificate, FulcioClientError
    from sigstore._internal.rekor import RekorClientError
    from sigstore.errors import Error as SigstoreError
    from sigstore.oidc import ExpiredIdentity, IdentityError, IdentityToken

    try:
        identity_token = IdentityToken(token)
    except IdentityError as exc:
        raise EnvironmentFailure(f"identity token ({token_source}) rejected: {token_problem(token) or exc}") from exc

    bundles: dict[str, Any] = {}
    failures = (SigstoreError, RekorClientError, ExpiredCertificate, ExpiredIdentity, RequestException)
    try:
        statements, digests = _signers(trust_config, token, identity_token, items)

        def sign(item: Signable) -> Any:
            if item.statement is not None:
                return statements.signer.sign_dsse(dsse.Statement(item.statement))
            return digests.signer.sign_artifact(_hashed(item.sha256 or ""))

        # Concurrently: each item waits on the transparency log (and the TSA), which for a real
        # instance is most of the time; the signer is shared, as the sigstore CLI shares it.
        with ThreadPoolExecutor(max_workers=max(1, min(SIGNING_WORKERS, len(items)))) as pool:
            futures = [pool.submit(sign, item) for item in items]
            for item, future in zip(items, futures, strict=True):
                try:
                    bundles[item.bundle] = future.result()
                except failures as exc:  # noqa: PERF203 - the first failure, named, in item order
                    raise EnvironmentFailure(f"signing failed: {item.bundle}: {first_line(exc)}") from exc
        for item in items:
            kept = statements if item.statement is not None else digests
            certificate = bundles[item.bundle].signing_certificate
            kept.lifetime = (certificate.not_valid_after_utc - certificate.not_valid_before_utc).total_seconds()
    except FulcioClientError as exc:
        # sigstore-python drops Fulcio's error text for 4xx responses.
        raise EnvironmentFailure(
            f"signing failed: the certificate authority refused the identity token ({token_source})",
            hint="is the token for this Sigstore instance (issuer, audience `sigstore`) and unexpired?",
        ) from exc
    except (SigstoreError, RekorClientError, ExpiredCertificate, ExpiredIdentity, RequestException) as exc:
        raise EnvironmentFailure(f"signing failed: {first_line(exc)}") from exc

    identity, issuer = certificate_identity(next(iter(bundles.values())).signing_certificate)
    return SignedBundles(
        files=_verified(trust_config, items, bundles),
        identity=identity,
        issuer=issuer,
        log_entries=tuple(int(b.log_entry._inner.log_index) for b in bundles.values()),
    )


def _verified(trust_config: Any, items: list[Signable], bundles: dict[str, Any]) -> dict[str, bytes]:
    """Each bundle's JSON, verified as it will be read back against the identity it was issued
    for: the client checks little at sign time (not the chain, not the log's signatures)."""
    from sigstore.errors import Error as SigstoreError
    from sigstore.models import Bundle

    from pipeline_kit.verifier import verifier_for

    own_identity = IdentityPolicy.of_certificate(next(iter(bundles.values())).signing_certificate).sigstore_policy()
    verifier = verifier_for(trust_config)
    files: dict[str, bytes] = {}
    for item in items:
        data = bundles[item.bundle].to_json().encode()
        try:
            parsed = Bundle.from_json(data)
            if item.statement is not None:
                verifier.verify_dsse(parsed, own_identity)
            else:
                verifier.verify_artifact(_hashed(item.sha256 or ""), parsed, own_identity)
        except (SigstoreError, ValueError) as exc:
            raise VerificationError(
                f"{item.bundle}: the bundle just produced does not verify: {first_line(exc)}"
            ) from exc
        files[item.bundle] = data
    return files


def _hashed(sha256: str) -> Any:
    """A sigstore `Hashed` of a SHA-256 digest given in hex."""
    from sigstore.hashes import Hashed
    from sigstore_models.common.v1 import HashAlgorithm

    return Hashed(algorithm=HashAlgorithm.SHA2_256, digest=bytes.fromhex(sha256))


def sign_release(evidence: EvidenceDir, workdir: Path, trust_config: Any, token: str, token_source: str) -> Signed:
    release = evidence.load_release()
    provenance = read_checked(evidence, PROVENANCE_FILE, release)
    sbom = read_checked(evidence, SBOM_FILE, release)
    if statement_subjects(json.loads(provenance)) != release_subjects(release):
        raise VerificationError(f"{evidence.path(PROVENANCE_FILE)}: its subjects are not release.json's")
    check_local_files(release, workdir)
    items = [Signable(subject_bundle(s.name), sha256=s.sha256) for s in release.subjects]
    items.append(Signable(PROVENANCE_BUNDLE, statement=provenance))
    items.append(Signable(SBOM_BUNDLE, statement=statement_json(release.subjects, SBOM_PREDICATE, json.loads(sbom))))
    signed = sign_all(trust_config, token, token_source, items)
    updated = evidence.record_many(release, signed.files)
    return Signed(
        release=updated,
        bundles=tuple(signed.files),
        identity=signed.identity,
        issuer=signed.issuer,
        token_source=token_source,
        log_entries=signed.log_entries,
    )


def attest_test_results(
    evidence: EvidenceDir,
    workdir: Path,
    trust_config: Any,
    token: str,
    token_source: str,
    patterns: list[str],
    url: str | None = None,
) -> tuple[Signed, int, int]:
    """Sign the JUnit reports' results as an in-toto test-result attestation about the release's
    subjects (bundles/test-result.sigstore.json); returns it with the passed and failed counts."""
    from pipeline_kit.testresults import TEST_RESULT_PREDICATE, find_reports, predicate, read_junit

    release = evidence.load_release()
    paths = find_reports(workdir, patterns)
    if not paths:
        raise UsageError(f"no JUnit report matches {', '.join(patterns)}")
    summary = read_junit(workdir, paths)
    statement = statement_json(release.subjects, TEST_RESULT_PREDICATE, predicate(summary, url))
    signed = sign_all(trust_config, token, token_source, [Signable(TEST_RESULT_BUNDLE, statement=statement)])
    updated = evidence.record_many(release, signed.files)
    result = Signed(updated, tuple(signed.files), signed.identity, signed.issuer, token_source, signed.log_entries)
    return result, len(summary.passed), len(summary.failed)


def token_problem(token: str) -> str | None:
    """What is wrong with a token sigstore refused, read from its (unverified) claims: expired
    and garbage are different problems with different fixes."""
    import base64
    import time

    parts = token.split(".")
    if len(parts) != 3:
        return "not a JWT (expected three dot-separated parts)"
    try:
        claims = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (ValueError, TypeError):
        return "not a JWT (its claims do not decode)"
    expires = claims.get("exp") if isinstance(claims, dict) else None
    if isinstance(expires, (int, float)) and expires < time.time():
        return f"expired {int(time.time() - expires)} s ago: get a fresh one"
    return None
