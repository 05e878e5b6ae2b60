"""Consumer-driven contracts without a broker: Pact files and their verifications as signed evidence.

A consumer's release carries the Pact files it expects (`contracts.json`, whose digest the signed
provenance records). A provider verifies a consumer's contracts against its own release with the
real Pact verifier (`pact verifier`, PyPI `pact-python-cli`) and signs each one that passes: an
in-toto statement about the provider release's subjects naming the pact by its sha256. The
contracts gate then answers can-i-deploy from signed evidence only: every contract between this
release and the releases its peers run in the environment must be verified by the provider side.
A verification is bound to one provider release (its subjects) and one pact (its digest), so it
can neither be replayed for another release nor stand for another contract.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from pipeline_kit._internal.proc import child_environment, run_bounded
from pipeline_kit.config import ContractsConfig
from pipeline_kit.digest import sha256_bytes
from pipeline_kit.errors import EnvironmentFailure, InputError, UsageError, VerificationError
from pipeline_kit.evidence import CONTRACTS_DIR, CONTRACTS_FILE, EvidenceDir
from pipeline_kit.identity import IdentityPolicy
from pipeline_kit.ledger import Ledger
from pipeline_kit.models import Release

if TYPE_CHECKING:
    from pipeline_kit.ledger import Entry

CONTRACT_PREDICATE = "https://github.com/pipeline-kit/pipeline-kit/contract-verification/v1"
VERIFIER_TIMEOUT = 300  # seconds for one pact
# The verifier's documented opt-out of its anonymous usage tracking: no notice in the output, and
# nothing sent about the run.
VERIFIER_ENV = {"PACT_DO_NOT_TRACK": "true"}
# The ledger entry recording verifications (attached) is about no environment: a name no
# environment can have (they start with a letter or digit).
NO_ENVIRONMENT = "-"


@dataclass(frozen=True)
class Pact:
    path: str  # as the consumer's project names it
    sha256: str  # of the file: what a verification names
    consumer: str
    provider: str
    document: dict[str, Any] = field(repr=False)


def _pact_files(config: ContractsConfig, workdir: Path) -> list[Path]:
    found: list[Path] = []
    for name in config.pacts:
        path = workdir / name
        if path.is_dir():
            found.extend(sorted(p for p in path.rglob("*.json") if p.is_file()))
        elif path.is_file():
            found.append(path)
        else:
            raise UsageError(f"contracts.pacts: {name}: no such file or directory")
    return found


def record_contracts(config: ContractsConfig, evidence: EvidenceDir, release: Release, workdir: Path) -> Release:
    """Write `contracts.json`: this service's name and every Pact file it expects as a consumer
    (path, sha256, consumer, provider, the document itself); provenance then signs its digest."""
    pacts = []
    for path in _pact_files(config, workdir):
        data = path.read_bytes()
        name = path.relative_to(workdir).as_posix()
        try:
            document = json.loads(data)
            consumer, provider = document["consumer"]["name"], document["provider"]["name"]
        except (ValueError, KeyError, TypeError):
            raise InputError(path, None, "not a Pact file (consumer.name and provider.name)") from None
        if consumer != config.name:
            raise InputError(path, "consumer.name", f"is {consumer!r}, but this service is {config.name!r}")
        pacts.append({"path": name, "sha256": sha256_bytes(data), "consumer": consumer, "provider": provider})
        pacts[-1]["pact"] = document
    record = {"name": config.name, "pacts": pacts}
    return evidence.record(release, CONTRACTS_FILE, json.dumps(record, indent=2, sort_keys=True).encode())


def load_pacts(evidence: EvidenceDir) -> tuple[str | None, list[Pact]]:
    """The service name and the pacts a release's record lists (none without a record); a record
    that cannot be read as one is exit 1."""
    data, why = evidence.read_checked(CONTRACTS_FILE)
    if data is None:
        if why == "file missing":
            return None, []
        raise VerificationError(f"{evidence.path(CONTRACTS_FILE)}: {why}")
    try:
        record = json.loads(data)
        pacts = [Pact(p["path"], p["sha256"], p["consumer"], p["provider"], p["pact"]) for p in record.get("pacts", [])]
        name = record.get("name")
    except (ValueError, KeyError, TypeError, AttributeError):
        raise VerificationError(f"{evidence.path(CONTRACTS_FILE)}: not a contracts record") from None
    return name if isinstance(name, str) else None, pacts


def verification_bundle(pact: Pact) -> str:
    """Where a provider keeps its signed verification of `pact`, in its evidence dir."""
    return f"{CONTRACTS_DIR}/{pact.consumer}.{pact.sha256[:16]}.sigstore.json"


def pact_verifier() -> str:
    """The `pact` command: beside this interpreter (pact-python-cli, the kit's `contracts` extra), else on PATH."""
    beside = Path(sys.executable).parent / "pact"
    found = str(beside) if beside.is_file() else shutil.which("pact")
    if not found:
        # never a name for an index to resolve: the kit's distribution is not on PyPI
        raise EnvironmentFailure(
            "the Pact verifier is not installed",
            # the setup action's and the GitLab templates' venvs have no pip of their own
            hint=f"python3 -m pip --python {sys.executable} install 'pact-python-cli>=0.10' (the `contracts` extra)",
        )
    return found


@dataclass(frozen=True)
class Result:
    pact: Pact
    passed: bool
    output: str  # the verifier's own words, for the log


def run_verifier(
    pact: Pact, provider: str, url: str, state_change_url: str | None = None, secrets: frozenset[str] = frozenset()
) -> Result:
    """Verify one pact against the provider at `url` with the real Pact verifier (its environment
    scrubbed: it talks to the provider, it needs no secret)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageError(f"--provider-url {url!r}: an http(s) URL")
    with tempfile.TemporaryDirectory() as tmp:
        file = Path(tmp) / "pact.json"
        file.write_text(json.dumps(pact.document))
        command = [
            pact_verifier(),
            "verifier",
            *("--file", str(file), "--provider-name", provider, "--hostname", parts.hostname),
            *("--port", str(parts.port or (443 if parts.scheme == "https" else 80)), "--transport", parts.scheme),
            "--no-colour",
        ]
        if parts.path not in ("", "/"):
            command += ["--base-path", parts.path]
        if state_change_url:
            command += ["--state-change-url", state_change_url]
        try:
            done = run_bounded(
                command,
                timeout=VERIFIER_TIMEOUT,
                env={**child_environment(os.environ, (), secrets), **VERIFIER_ENV},
                text=True,
            )
        except subprocess.TimeoutExpired:
            return Result(pact, False, f"the verifier took more than {VERIFIER_TIMEOUT} s")
    return Result(pact, done.returncode == 0, (done.stdout + done.stderr).strip())


def statement_for(release: Release, result: Result, consumer_release: str) -> dict[str, Any]:
    return {
        "provider": result.pact.provider,
        "consumer": result.pact.consumer,
        "consumerRelease": consumer_release,
        "pact": {"path": result.pact.path, "digest": {"sha256": result.pact.sha256}},
        "result": "passed" if result.passed else "failed",
        "verifier": "pact verifier (pact-python-cli)",
    }


@dataclass(frozen=True)
class Verified:
    """The pacts a provider release has signed verifications for (by sha256), and what was
    refused while looking (for messages)."""

    pacts: frozenset[str]
    refused: tuple[str, ...] = ()


def verified_pacts(
    evidence: EvidenceDir,
    release: Release,
    policy: IdentityPolicy,
    trust_config: Any,
    ledger: Ledger | None = None,
    entries: Sequence[Entry] = (),
) -> Verified:
    """Every signed, passing verification about `release` kept in `evidence` (and its archive of
    `release`) or attached to the ledger (`contract-verified` entries): signed by the policy's
    identity, a statement about exactly the release's subjects."""
    from pipeline_kit.signing import release_subjects
    from pipeline_kit.verifier import verifier_for
    from pipeline_kit.vsa import Candidate, read_bundles, signed_statement

    roots = [evidence.root / CONTRACTS_DIR, Path(evidence.archive(release.id)) / CONTRACTS_DIR]
    files = sorted({p for root in roots if root.is_dir() for p in root.glob("*.sigstore.json")})
    # regular and bounded: a FIFO or /dev/zero planted here must not hang the promotion
    candidates = [Candidate(Path(c.where).name, c.data) for c in read_bundles(files)]
    for entry in entries if ledger is not None else ():
        if entry.kind == "contract-verified" and entry.release == release.id:
            for name, digest in (entry.details.get("verifications") or {}).items():
                data = ledger.attachment(str(digest)) if ledger is not None else None
                if data is not None:
                    candidates.append(Candidate(f"ledger seq {entry.seq}: {name}", data))
    verifier = verifier_for(trust_config)
    found: set[str] = set()
    refused: list[str] = []
    for candidate in candidates:
        accepted = signed_statement(candidate, policy, verifier, CONTRACT_PREDICATE)
        if isinstance(accepted, str):
            refused.append(f"{candidate.where}: {accepted}")
        elif accepted.subjects != frozenset(release_subjects(release)):
            refused.append(f"{candidate.where}: about another release")
        elif accepted.predicate.get("result") == "passed":
            pact = accepted.predicate.get("pact")
            digest = pact.get("digest") if isinstance(pact, dict) else None
            if isinstance(digest, dict) and isinstance(digest.get("sha256"), str):
                found.add(digest["sha256"])
    return Verified(frozenset(found), tuple(refused))


@dataclass(frozen=True)
class Peer:
    """A peer service in one environment: the release it runs (shown from signed evidence), the
    pacts that release expects, and the pacts it has verified as a provider; or (release None)
    why that cannot be shown. Nothing signed shows that a peer runs nothing: that is unknown too."""

    name: str
    release: str | None
    pacts: tuple[Pact, ...] = ()
    verified: Verified = Verified(frozenset())
    why: str = ""


@dataclass(frozen=True)
class ContractState:
    """What the contracts gate judges: this release's pacts and verifications, and every peer."""

    name: str
    pacts: tuple[Pact, ...]
    verified: Verified
    peers: tuple[Peer, ...]


def unmet(state: ContractState, environment: str) -> tuple[list[str], int]:
    """Every contract between this release and what its peers run in `environment` that the
    provider side has not verified (or cannot be judged), and how many contracts were checked."""
    peers = {peer.name for peer in state.peers}
    problems = [
        f"{pact.path}: its provider {pact.provider} is not among contracts.peers"
        for pact in state.pacts
        if pact.provider not in peers
    ]
    checked = 0
    for peer in state.peers:
        if peer.release is None:
            problems.append(f"{peer.name}: cannot show what it runs in {environment}: {peer.why}")
            continue
        for pact in state.pacts:
            if pact.provider == peer.name:
                checked += 1
                if pact.sha256 not in peer.verified.pacts:
                    problems.append(
                        f"{state.name} -> {peer.name} {peer.release} (in {environment}): {pact.path} "
                        f"({pact.sha256[:12]}) is not verified by that release{_refused(peer.verified)}"
                    )
        for pact in peer.pacts:
            if pact.provider == state.name:
                checked += 1
                if pact.sha256 not in state.verified.pacts:
                    problems.append(
                        f"{peer.name} {peer.release} (in {environment}) -> {state.name}: its {pact.path} "
                        f"({pact.sha256[:12]}) is not verified by this release{_refused(state.verified)}"
                    )
    return problems, checked


def _refused(verified: Verified) -> str:
    return f" (refused: {'; '.join(verified.refused)})" if verified.refused else ""


def consumer_evidence(directory: Path) -> EvidenceDir:
    """A consumer named by its project directory (its evidence dir inside) or its evidence dir."""
    from pipeline_kit.evidence import DEFAULT_DIR_NAME

    return EvidenceDir(directory / DEFAULT_DIR_NAME if (directory / "pipeline-kit.yml").is_file() else directory)


def verify_consumer(
    evidence: EvidenceDir,
    name: str,
    consumer: EvidenceDir,
    policy: IdentityPolicy,
    trust_config: Any,
    url: str,
    state_change_url: str | None,
    token: Callable[[], tuple[str, str]],
    ledger: Ledger,
    actor: str,
    secrets: frozenset[str] = frozenset(),
) -> tuple[Release, list[Result]]:
    """Verify the consumer's contracts with this service (as its signed evidence has them)
    against the provider at `url`, and sign each that passes about this release (`evidence`);
    the signed verifications are also attached to the ledger, so a job that has only the ledger
    finds them."""
    from pipeline_kit.signing import Signable, sign_all, statement_json
    from pipeline_kit.verify import verify_release

    checked = verify_release(consumer, None, policy, trust_config)
    failure = checked.first_failure()
    if failure:
        raise VerificationError(f"{consumer.root}: the consumer's evidence does not verify: {failure}")
    if not any(c.target == CONTRACTS_FILE for c in checked.checks):
        raise UsageError(f"{consumer.root}: the consumer's release records no contracts ({CONTRACTS_FILE})")
    consumer_release = checked.release
    _, pacts = load_pacts(consumer)
    mine = [pact for pact in pacts if pact.provider == name]
    if not mine:
        raise UsageError(f"{consumer.root}: release {consumer_release.id} has no contract with {name}")
    release = evidence.load_release()
    results = [run_verifier(pact, name, url, state_change_url, secrets) for pact in mine]
    signables = [
        Signable(
            verification_bundle(result.pact),
            statement=statement_json(
                release.subjects, CONTRACT_PREDICATE, statement_for(release, result, consumer_release.id)
            ),
        )
        for result in results
        if result.passed
    ]
    if signables:
        from datetime import datetime, timezone

        from pipeline_kit.ledger import Draft

        raw, source = token()
        signed = sign_all(trust_config, raw, source, signables)
        release = evidence.record_many(release, signed.files)
        ledger.append(
            Draft(
                kind="contract-verified",
                environment=NO_ENVIRONMENT,
                release=release.id,
                subjects={s.name: s.sha256 for s in release.subjects},
                actor=actor,
                time=datetime.now(timezone.utc).replace(microsecond=0),
                reason=f"{consumer_release.id}'s contracts verified",
                details={
                    "consumer": consumer_release.id,
                    "verifications": {n: sha256_bytes(d) for n, d in signed.files.items()},
                },
            ),
            list(signed.files.values()),
        )
    return release, results
