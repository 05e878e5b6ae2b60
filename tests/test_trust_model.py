"""Attacks on the trust model, each by a writer of the build job's artifacts (the evidence dir,
the working tree, the ledger file): every one must be refused, naming what was refused."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from pipeline_kit.errors import UsageError
from pipeline_kit.identity import KIT_REPOSITORY
from tests.conftest import LEDGER, REPOSITORY, SIGNER, WHEEL, Cli, run_kit
from tests.sigstore_instance import LocalSigstore


def release_json(project: Path) -> dict[str, Any]:
    release: dict[str, Any] = json.loads((project / ".pipeline-kit" / "release.json").read_text())
    return release


def write_release(project: Path, release: dict) -> None:  # type: ignore[type-arg]
    (project / ".pipeline-kit" / "release.json").write_text(json.dumps(release))


def test_a_relabelled_release_id_is_refused(cli: Cli, signed: Path, policy: list[str], token: None) -> None:
    # The attack: give this build the id of a release that already passed dev, so that history
    # keyed by id (ledger, forge records) vouches for it.
    release = release_json(signed)
    release["id"] = "f" * 32
    write_release(signed, release)
    for command in (["verify", *policy], ["plan", "--to", "dev", *policy], ["promote", "--to", "dev", *policy]):
        result = cli(command, cwd=signed)
        assert result.code == 1, (command, result.out, result.err)
        assert f"id '{'f' * 32}' is not the one its subjects give" in result.err
    assert not (signed / ".pipeline-kit" / "promotions").exists()


@pytest.mark.parametrize("bad", ["../../escaped", "/tmp/x/escaped", "a" * 16])
def test_an_id_that_is_a_path_is_refused_and_nothing_is_written_outside(
    cli: Cli, signed: Path, policy: list[str], token: None, bad: str
) -> None:
    release = release_json(signed)
    release["id"] = bad
    write_release(signed, release)
    before = sorted(p for p in signed.parent.rglob("*") if "escaped" in p.name)
    result = cli(["promote", "--to", "dev", *policy], cwd=signed)
    assert result.code == 1 and "is not the one its subjects give" in result.err
    assert sorted(p for p in signed.parent.rglob("*") if "escaped" in p.name) == before
    assert not Path("/tmp/x/escaped").exists()


def test_rollback_to_a_path_is_a_usage_error(cli: Cli, signed: Path, policy: list[str], token: None) -> None:
    assert cli(["promote", "--to", "dev", *policy], cwd=signed).code == 0
    result = cli(["rollback", "--env", "dev", "--to", "../../../etc", "--reason", "x", *policy], cwd=signed)
    assert result.code == 2 and "is not a release id" in result.err


def test_evidence_writes_refuse_a_planted_symlink(
    cli: Cli, signed: Path, policy: list[str], token: None, tmp_path: Path
) -> None:
    # The attack: a build step plants promotions/ as a link, so the decision and VSA land
    # wherever it points (over another project's evidence, a deploy script...).
    outside = tmp_path / "outside"
    outside.mkdir()
    (signed / ".pipeline-kit" / "promotions").symlink_to(outside)
    result = cli(["promote", "--to", "dev", *policy], cwd=signed)
    assert result.code == 1 and "refusing a path through a symbolic link" in result.err
    assert list(outside.iterdir()) == []


def test_a_source_commit_that_is_not_the_signed_provenances_is_refused(
    cli: Cli, signed: Path, policy: list[str], token: None
) -> None:
    # The attack: point the approvals and checks gates at a well-reviewed commit the release was
    # not built from; release.json's copy of the source is not signed, the provenance is.
    release = release_json(signed)
    release["source"]["commit"] = "b" * 40
    write_release(signed, release)
    verified = cli(["verify", *policy], cwd=signed)
    assert verified.code == 1 and f"source commit {'b' * 40} is not the signed provenance's" in verified.err
    plan = cli(["plan", "--to", "dev", "--json", *policy], cwd=signed)
    gates = {g["gate"]: g for g in json.loads(plan.out)["gates"]}
    assert plan.code == 1 and gates["provenance"]["verdict"] == "denied"
    assert "is not the signed provenance's" in gates["provenance"]["reason"]


def add_environment(project: Path, text: str) -> None:
    config = project / "pipeline-kit.yml"
    config.write_text(config.read_text().replace("\nledger:", f"{text}\nledger:"))


def forge_a_subject_signature(project: Path) -> None:
    """Evidence that does not verify: one subject's bundle swapped for the SBOM's."""
    bundles = project / ".pipeline-kit" / "bundles"
    (bundles / f"{WHEEL}.sigstore.json").write_bytes((bundles / "sbom.sigstore.json").read_bytes())


def test_an_environment_without_gates_still_verifies_the_evidence(
    cli: Cli, signed: Path, policy: list[str], token: None
) -> None:
    # The attack: an environment whose `gates:` is empty promoted anything and signed PASSED.
    add_environment(signed, "  scratch:\n    gates: []\n")
    forge_a_subject_signature(signed)
    result = cli(["promote", "--to", "scratch", "--json", *policy], cwd=signed)
    assert result.code == 1
    gates = {g["gate"]: g["verdict"] for g in json.loads(result.out)["gates"]}
    assert gates["signature"] == "denied" and list(gates)[:3] == ["signature", "provenance", "sbom"]
    assert not (signed / ".pipeline-kit" / "promotions" / "scratch.vsa.sigstore.json").exists()


def test_break_glass_never_waives_integrity(cli: Cli, signed: Path, policy: list[str], token: None) -> None:
    forge_a_subject_signature(signed)
    result = cli(["promote", "--to", "dev", "--break-glass", "--reason", "incident 7", *policy], cwd=signed)
    assert result.code == 1
    assert "--break-glass waives policy gates, never integrity: bundles/" in result.err
    decision = json.loads((signed / ".pipeline-kit" / "promotions" / "dev.decision.json").read_text())
    assert decision["verdict"] == "denied" and not decision["breakGlass"]
    assert not (signed / ".pipeline-kit" / "promotions" / "dev.vsa.sigstore.json").exists()


def test_break_glass_is_not_taken_from_the_environment(
    cli: Cli, signed: Path, policy: list[str], token: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The attack: an earlier step exports PIPELINE_KIT_PROMOTE_BREAK_GLASS (e.g. via $GITHUB_ENV).
    monkeypatch.setenv("PIPELINE_KIT_PROMOTE_BREAK_GLASS", "1")
    monkeypatch.setenv("PIPELINE_KIT_PROMOTE_REASON", "sneaky")
    assert cli(["promote", "--to", "dev", *policy], cwd=signed).code == 0
    result = cli(["promote", "--to", "prod", *policy], cwd=signed)  # staging never had it
    assert result.code == 1
    decision = json.loads((signed / ".pipeline-kit" / "promotions" / "prod.decision.json").read_text())
    assert decision["verdict"] == "denied" and not decision["breakGlass"]


def test_the_vsa_records_the_policy_actually_applied(
    cli: Cli, signed: Path, sigstore: LocalSigstore, policy: list[str], token: None
) -> None:
    # The config trusts the GitHub release workflow; the flags replaced that with the test signer.
    assert cli(["promote", "--to", "dev", *policy], cwd=signed).code == 0
    bundle = json.loads((signed / ".pipeline-kit" / "promotions" / "dev.vsa.sigstore.json").read_text())
    predicate = json.loads(base64.b64decode(bundle["dsseEnvelope"]["payload"]))["predicate"]
    applied = predicate["policy"]["annotations"]
    assert applied["identity"] == {"issuer": sigstore.issuer, "san": SIGNER, "sanRegex": None}
    assert applied["overrides"] == ["callerRegex", "issuer", "san", "sanRegex"]  # the flags named another signer
    config = (signed / "pipeline-kit.yml").read_bytes()
    assert predicate["policy"]["digest"]["sha256"] == hashlib.sha256(config).hexdigest()
    shown = cli(["verify", "--env", "dev", *policy], cwd=signed)
    assert shown.code == 0 and f"judged under identity {SIGNER}" in shown.out
    assert "overriding the config's callerRegex, issuer, san, sanRegex" in shown.out


# --- signed VSAs decide previous-stage, soak and custody ---------------------------------------


def no_soak(project: Path) -> None:
    config = project / "pipeline-kit.yml"
    config.write_text(config.read_text().replace("    soak: 30m\n", ""))


def vsa_statement(project: Path, environment: str, result: str = "PASSED", subjects: Any = None) -> bytes:
    release = release_json(project)
    statement = {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": subjects or [{"name": s["name"], "digest": s["digest"]} for s in release["subjects"]],
        "predicateType": "https://slsa.dev/verification_summary/v1",
        "predicate": {
            "verifier": {"id": "https://attacker.example/verifier"},
            "timeVerified": "2020-01-01T00:00:00Z",  # a self-reported time: never read
            "resourceUri": f"urn:pipeline-kit:environment:{environment}",
            "policy": {"uri": "pipeline-kit.yml"},
            "verificationResult": result,
            "verifiedLevels": [],
            "slsaVersion": "1.1",
        },
    }
    return json.dumps(statement).encode()


def plant_vsa(project: Path, sigstore: LocalSigstore, environment: str, statement: bytes, signer: str = SIGNER) -> None:
    """A VSA really signed through the local Sigstore instance, as `signer`, planted in the evidence dir."""
    from pipeline_kit.signing import Signable, sign_all
    from pipeline_kit.trust import load_trust_config

    name = f"promotions/{environment}.vsa.sigstore.json"
    trust = load_trust_config(sigstore.trust_config_path)
    signed = sign_all(trust, sigstore.mint_token(signer), "test", [Signable(name, statement=statement)])
    path = project / ".pipeline-kit" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(signed.files[name])


def staging_gate(cli: Cli, project: Path, policy: list[str]) -> dict[str, Any]:
    result = cli(["plan", "--to", "staging", "--json", *policy], cwd=project)
    gate: dict[str, Any] = next(g for g in json.loads(result.out)["gates"] if g["gate"] == "previous-stage")
    return gate


def test_a_planted_well_chained_ledger_is_not_a_pass(cli: Cli, signed: Path, policy: list[str], token: None) -> None:
    # The attack: a build step writes a whole promotion history, hash chain recomputed, claiming
    # the release was deployed to dev hours ago.
    from pipeline_kit.ledger import Draft, FileLedger

    no_soak(signed)
    release = release_json(signed)
    subjects = {s["name"]: s["digest"]["sha256"] for s in release["subjects"]}
    ledger = FileLedger(signed / LEDGER)
    old = datetime.now(timezone.utc) - timedelta(hours=5)
    for kind in ("promoted", "deployed"):
        ledger.append(
            Draft(kind=kind, environment="dev", release=release["id"], subjects=subjects, actor="ci", time=old)
        )
    assert cli(["ledger", "verify", *policy], cwd=signed).code == 0  # the chain itself is perfect
    gate = staging_gate(cli, signed, policy)
    assert gate["verdict"] == "denied" and gate["reason"].startswith("dev never passed this release"), gate


def test_a_vsa_from_an_untrusted_identity_is_refused(
    cli: Cli, signed: Path, sigstore: LocalSigstore, policy: list[str], token: None
) -> None:
    no_soak(signed)
    plant_vsa(signed, sigstore, "dev", vsa_statement(signed, "dev"), signer="mallory@example.com")
    gate = staging_gate(cli, signed, policy)
    assert gate["verdict"] == "denied" and "dev.vsa.sigstore.json: does not verify" in gate["reason"], gate
    assert "mallory@example.com is not the expected dev@example.com" in gate["reason"]
    custody = cli(["verify", "--env", "dev", *policy], cwd=signed)
    assert custody.code == 1 and "mallory@example.com is not the expected dev@example.com" in custody.err


@pytest.mark.parametrize(
    ("case", "refused"),
    [
        ("another environment", "is for urn:pipeline-kit:environment:staging, not urn:pipeline-kit:environment:dev"),
        ("another release", "is about other subjects than this release's"),
        ("failed", "verification result FAILED"),
    ],
)
def test_a_replayed_or_failed_vsa_is_refused(
    cli: Cli, signed: Path, sigstore: LocalSigstore, policy: list[str], token: None, case: str, refused: str
) -> None:
    # Signed by the trusted identity, but not a pass of this release in dev.
    no_soak(signed)
    statement = {
        "another environment": lambda: vsa_statement(signed, "staging"),
        "another release": lambda: vsa_statement(
            signed, "dev", subjects=[{"name": "x", "digest": {"sha256": "c" * 64}}]
        ),
        "failed": lambda: vsa_statement(signed, "dev", result="FAILED"),
    }[case]()
    plant_vsa(signed, sigstore, "dev", statement)
    gate = staging_gate(cli, signed, policy)
    assert gate["verdict"] == "denied" and refused in gate["reason"], gate
    custody = cli(["verify", "--env", "dev", *policy], cwd=signed)
    assert custody.code == 1 and refused in custody.err


def test_a_real_vsa_passes_and_soak_counts_from_its_signed_time(
    cli: Cli, signed: Path, sigstore: LocalSigstore, policy: list[str], token: None
) -> None:
    # The oracle for the refusals above: the same kind of VSA, for this release and dev, passes;
    # its self-reported timeVerified (2020) is ignored in favour of the log's time (now).
    plant_vsa(signed, sigstore, "dev", vsa_statement(signed, "dev"))
    gate = staging_gate(cli, signed, policy)
    assert gate["verdict"] == "denied" and gate["reason"].startswith("soak 0m of 30m in dev"), gate
    no_soak(signed)
    assert staging_gate(cli, signed, policy)["verdict"] == "passed"
    assert cli(["verify", "--env", "dev", *policy], cwd=signed).code == 0


def test_a_vsa_is_timed_only_by_what_its_own_verification_established(
    signed: Path, sigstore: LocalSigstore, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A statement's time is the latest time its verification established (the TSA's, the log's),
    # kept from that verification rather than established a second time. The attack it must not
    # open: a sigstore whose verify_dsse no longer passes through _establish_time would leave no
    # verified time, and a statement without one must count for nothing, never for "now".
    from sigstore.models import Bundle
    from sigstore.verify import Verifier

    from pipeline_kit.identity import IdentityPolicy
    from pipeline_kit.trust import load_trust_config
    from pipeline_kit.verifier import TimedVerifier, verifier_for
    from pipeline_kit.vsa import Accepted, Candidate, signed_statement

    plant_vsa(signed, sigstore, "dev", vsa_statement(signed, "dev"))
    data = (signed / ".pipeline-kit" / "promotions" / "dev.vsa.sigstore.json").read_bytes()
    trust = load_trust_config(sigstore.trust_config_path, offline=True)
    policy = IdentityPolicy(issuer=sigstore.issuer, san=SIGNER)
    accepted = signed_statement(Candidate("dev", data), policy, verifier_for(trust))
    assert isinstance(accepted, Accepted), accepted
    # the oracle: sigstore's own verifier, establishing the bundle's times by itself
    times = Verifier(trusted_root=trust.trusted_root)._establish_time(Bundle.from_json(data))
    assert len(times) >= 1 and accepted.signed_at == max(t.time for t in times)

    monkeypatch.setattr(TimedVerifier, "_establish_time", Verifier._establish_time)
    refused = signed_statement(Candidate("dev", data), policy, verifier_for(trust))
    assert refused == "does not verify: the verification established no signing time"


def test_a_crash_between_decision_and_deploy_never_counts_as_arrived(
    signed: Path, sigstore: LocalSigstore, policy: list[str], token: None, cli: Cli
) -> None:
    # The deploy kills the kit itself (kill -9), as a crashed runner would, after the decision.
    no_soak(signed)
    env = {**os.environ, "SIGSTORE_IDENTITY_TOKEN": sigstore.mint_token(SIGNER)}
    crashed = run_kit(["promote", "--to", "dev", *policy, "--", "sh", "-c", "kill -9 $PPID"], signed, env)
    assert crashed.returncode == -9
    kinds = [json.loads(line)["kind"] for line in (signed / LEDGER).read_text().splitlines()]
    assert kinds == ["promoted"]
    gate = staging_gate(cli, signed, policy)
    # no signed arrival: the VSA is signed once the deploy succeeded
    assert gate["verdict"] == "denied" and "dev never passed this release" in gate["reason"], gate
    assert "no signed VSA" in gate["reason"], gate
    plan = cli(["plan", "--to", "dev", *policy], cwd=signed)
    assert "never finished deploying" in plan.out


# --- a ledger that resists a writer ------------------------------------------------------------


def rechain(path: Path, lines: list[dict[str, Any]]) -> None:
    """Rewrite a ledger file with a perfectly recomputed hash chain, as an attacker would."""
    from pipeline_kit.ledger import Draft, Entry

    prev, out = "0" * 64, []
    for seq, line in enumerate(lines, start=1):
        draft = Draft.model_validate({k: v for k, v in line.items() if k not in ("seq", "prev", "hash")})
        entry = Entry.chain(draft, seq, prev)
        out.append(entry.line())
        prev = entry.hash
    path.write_bytes(b"".join(out))


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("truncated", "decided on ledger seq 1, but the ledger has 0 entries: truncated"),
        ("rewritten", "ledger seq 1 is not the entry it was decided on: rewritten"),
        ("dropped", "the ledger has no entry for this signed decision: dropped"),
    ],
)
def test_ledger_verify_finds_a_ledger_that_disagrees_with_signed_decisions(
    cli: Cli, signed: Path, policy: list[str], token: None, case: str, message: str
) -> None:
    for _ in range(2):  # the second decision commits to the ledger holding the first
        assert cli(["promote", "--to", "dev", *policy], cwd=signed).code == 0
    path = signed / LEDGER
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert cli(["ledger", "verify", *policy], cwd=signed).code == 0
    if case == "truncated":
        rechain(path, [])
    elif case == "rewritten":
        rechain(path, [{**lines[0], "actor": "local:someone-else"}, lines[1]])
    else:
        rechain(path, lines[:1])
    result = cli(["ledger", "verify", *policy], cwd=signed)
    assert result.code == 1 and message in result.err, result.err


def test_deleting_ledger_lines_does_not_lift_a_rollback_hold(
    cli: Cli, signed: Path, sigstore: LocalSigstore, policy: list[str], token: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.test_promote import good_then_bad_in_dev

    _, bad = good_then_bad_in_dev(cli, signed, sigstore, policy, monkeypatch)
    path = signed / LEDGER
    before = path.read_text().splitlines()
    assert cli(["rollback", "--env", "dev", "--reason", "500s", *policy], cwd=signed).code == 0
    assert (signed / ".pipeline-kit" / "releases" / bad / "promotions" / "dev.rollback.sigstore.json").is_file()
    # The attack: drop the tail (the rollback's lines); the chain still verifies.
    path.write_text("\n".join(before) + "\n")
    again = cli(["promote", "--to", "dev", "--json", *policy], cwd=signed)
    gates = {g["gate"]: g for g in json.loads(again.out)["gates"]}
    assert again.code == 1 and gates["rollback-hold"]["verdict"] == "denied"
    assert "truncated; the hold stands" in gates["rollback-hold"]["reason"]


# --- reports bound to the release ---------------------------------------------------------------


PASSING = '<?xml version="1.0"?><testsuite name="t"><testcase classname="t" name="ok"/></testsuite>'
FAILING = (
    '<?xml version="1.0"?><testsuite name="t"><testcase classname="t" name="bad"><failure/></testcase></testsuite>'
)


def checks_gate(cli: Cli, project: Path, policy: list[str]) -> dict[str, Any]:
    result = cli(["plan", "--to", "staging", "--json", *policy], cwd=project)
    gate: dict[str, Any] = next(g for g in json.loads(result.out)["gates"] if g["gate"] == "checks")
    return gate


def test_an_unsigned_test_report_is_refused_and_signed_results_count(
    cli: Cli, signed: Path, policy: list[str], token: None, sigstore: LocalSigstore
) -> None:
    # The attack: drop a JUnit file saying everything passed into the working tree.
    reports = signed / "reports"
    reports.mkdir()
    (reports / "junit.xml").write_text(PASSING)
    gate = checks_gate(cli, signed, policy)
    assert gate["verdict"] == "denied" and gate["reason"].startswith("no signed test results about this release")
    # the real results, signed about the release's subjects, are what counts
    (reports / "junit.xml").write_text(FAILING)
    attested = cli(
        ["attest", "--junit", "reports/*.xml", "--trust-config", str(sigstore.trust_config_path)], cwd=signed
    )
    assert attested.code == 0, attested.err
    assert "attested 0 passed and 1 failed test(s)" in attested.out
    (reports / "junit.xml").write_text(PASSING)  # rewriting the file afterwards changes nothing
    gate = checks_gate(cli, signed, policy)
    assert gate["verdict"] == "denied" and gate["reason"] == "1 of 1 test(s) failed: t.bad", gate
    assert (
        cli(["attest", "--junit", "reports/*.xml", "--trust-config", str(sigstore.trust_config_path)], cwd=signed).code
        == 0
    )
    gate = checks_gate(cli, signed, policy)
    assert gate["verdict"] == "passed" and gate["reason"].endswith("(signed test results)"), gate
    assert cli(["verify", *policy], cwd=signed).code == 0  # the attestation verifies with the rest


def test_a_test_result_attestation_of_another_release_is_refused(
    cli: Cli, signed: Path, policy: list[str], token: None, sigstore: LocalSigstore, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The attack: another release's (genuinely signed) passing results copied into this one.
    from tests.test_promote import good_then_bad_in_dev

    (signed / "reports").mkdir()
    (signed / "reports" / "junit.xml").write_text(PASSING)
    trust = ["--trust-config", str(sigstore.trust_config_path)]
    assert cli(["attest", "--junit", "reports/*.xml", *trust], cwd=signed).code == 0
    other = (signed / ".pipeline-kit" / "bundles" / "test-result.sigstore.json").read_bytes()
    good_then_bad_in_dev(cli, signed, sigstore, policy, monkeypatch)  # a new build: another release
    (signed / ".pipeline-kit" / "bundles" / "test-result.sigstore.json").write_bytes(other)
    gate = checks_gate(cli, signed, policy)
    assert gate["verdict"] == "denied" and "the attested subjects are not release.json's" in gate["reason"], gate


def test_unsigned_reports_are_read_only_on_opt_in_and_say_so(
    cli: Cli, signed: Path, policy: list[str], token: None
) -> None:
    config = signed / "pipeline-kit.yml"
    config.write_text(
        config.read_text().replace(
            '{junit: "reports/*.xml", min: 1}', '{junit: "reports/*.xml", unsigned-reports: true}'
        )
    )
    (signed / "reports").mkdir()
    (signed / "reports" / "junit.xml").write_text(PASSING)
    gate = checks_gate(cli, signed, policy)
    assert gate["verdict"] == "passed" and "UNSIGNED report(s), bound to nothing" in gate["reason"], gate


# --- CI workflow identities ---------------------------------------------------------------------

GITHUB_POLICY = r"^https://github\.com/acme/hello/\.github/workflows/release\.yml@refs/tags/v.*$"
GITLAB_POLICY = r"^https://gitlab\.com/acme/hello//\.gitlab-ci\.yml@refs/heads/main$"


@pytest.mark.parametrize(
    ("platform", "repository", "workflow", "ref", "regex", "accepted"),
    [
        ("github", "acme/hello", ".github/workflows/release.yml", "refs/tags/v1.2.0", GITHUB_POLICY, True),
        ("github", "acme/fork", ".github/workflows/release.yml", "refs/tags/v1.2.0", GITHUB_POLICY, False),
        ("github", "acme/hello", ".github/workflows/release.yml", "refs/heads/feature", GITHUB_POLICY, False),
        ("github", "acme/hello", ".github/workflows/evil.yml", "refs/tags/v1.2.0", GITHUB_POLICY, False),
        # a pattern matching only a prefix of the SAN (no `.*$`) must match the whole SAN: refused
        ("github", "acme/hello", ".github/workflows/release.yml", "refs/tags/v1.2.0", GITHUB_POLICY[1:-3], False),
        ("gitlab", "acme/hello", ".gitlab-ci.yml", "refs/heads/main", GITLAB_POLICY, True),
        ("gitlab", "acme/hello", ".gitlab-ci.yml", "refs/heads/mainline", GITLAB_POLICY, False),
        ("gitlab", "acme/hello-fork", ".gitlab-ci.yml", "refs/heads/main", GITLAB_POLICY, False),
    ],
)
def test_workflow_identities_are_checked_against_the_whole_san(
    cli: Cli,
    described: Path,
    sigstore: LocalSigstore,
    monkeypatch: pytest.MonkeyPatch,
    platform: str,
    repository: str,
    workflow: str,
    ref: str,
    regex: str,
    accepted: bool,
) -> None:
    # Real certificates from the local Fulcio for a workflow token: a URI SAN naming the workflow
    # file at its ref, and the CI extensions (source repository, ref, digest, runner).
    token = sigstore.mint_workflow_token(platform, repository, workflow, ref)
    monkeypatch.setenv("SIGSTORE_IDENTITY_TOKEN", token)
    # the SAN alone is judged here: no source repository in the policy (its own test is below)
    config = described / "pipeline-kit.yml"
    config.write_text(config.read_text().replace("    repository: https://github.com/pipeline-kit/hello-service\n", ""))
    signed = cli(["sign", "--trust-config", str(sigstore.trust_config_path)], cwd=described)
    assert signed.code == 0, signed.err
    server = "https://github.com" if platform == "github" else "https://gitlab.com"
    identity = f"{server}/{repository}/{'' if platform == 'github' else '/'}{workflow}@{ref}"
    assert f"as {identity} ({sigstore.issuer})" in signed.out  # the SAN is the workflow at its ref
    flags = ["--trust-config", str(sigstore.trust_config_path), "--cert-identity-regex", regex]
    result = cli(["verify", *flags, "--cert-oidc-issuer", sigstore.issuer], cwd=described)
    assert (result.code == 0) == accepted, result.out + result.err
    if not accepted:
        assert f"identity {identity} does not match" in result.err


KIT_WORKFLOW = "pipeline-kit/pipeline-kit/.github/workflows/sign-release.yml@refs/tags/v0.3.0"


@pytest.mark.parametrize(("caller", "accepted"), [("pipeline-kit/hello-service", True), ("mallory/app", False)])
def test_a_shared_signing_workflow_counts_only_for_the_repository_it_signed_for(
    cli: Cli, described: Path, sigstore: LocalSigstore, monkeypatch: pytest.MonkeyPatch, caller: str, accepted: bool
) -> None:
    # Attack: the kit's reusable signing workflow signs as itself for every repository that calls
    # it, so another repository's run yields a certificate with the very SAN the policy pins. Only
    # the certificate's Source Repository URI (the caller) tells them apart.
    claims = {
        "job_workflow_ref": KIT_WORKFLOW,
        "repository": caller,
        "source_repository_uri": f"https://github.com/{caller}",
        "workflow_ref": f"{caller}/.github/workflows/release.yml@refs/tags/v1",  # its caller, on a tag
    }
    token = sigstore.mint_token(f"repo:{caller}:ref:refs/tags/v1", email=False, extra=claims)
    monkeypatch.setenv("SIGSTORE_IDENTITY_TOKEN", token)
    assert cli(["sign", "--trust-config", str(sigstore.trust_config_path)], cwd=described).code == 0
    flags = ["--cert-identity", f"https://github.com/{KIT_WORKFLOW}", "--cert-oidc-issuer", sigstore.issuer]
    result = cli(["verify", "--trust-config", str(sigstore.trust_config_path), *flags], cwd=described)
    assert (result.code == 0) == accepted, result.out + result.err
    if not accepted:
        assert f"signed for https://github.com/{caller}, not {REPOSITORY}" in result.err
    # a workflow certificate that names no source at all is refused too (absence is not consent)
    bare = sigstore.mint_token("repo:x", email=False, extra={"job_workflow_ref": KIT_WORKFLOW})
    monkeypatch.setenv("SIGSTORE_IDENTITY_TOKEN", bare)
    assert cli(["sign", "--trust-config", str(sigstore.trust_config_path)], cwd=described).code == 0
    result = cli(["verify", "--trust-config", str(sigstore.trust_config_path), *flags], cwd=described)
    assert result.code == 1 and "names no source repository" in result.err, result.err


@pytest.mark.parametrize(
    "plant",
    ["traversal", "absolute", "link", "fifo", "swapped", "alias", "directory", "long"],
)
def test_a_path_in_release_json_never_reads_outside_the_evidence(
    cli: Cli, signed: Path, policy: list[str], token: None, plant: str
) -> None:
    # The attack: release.json is unsigned, and promote attaches every evidence file it names to
    # the ledger (which the git backend pushes): a name reaching /proc/self/environ would ship the
    # job's environment, GITHUB_TOKEN included. A FIFO would hang the job; a swapped file would
    # travel as this release's evidence.
    evidence = signed / ".pipeline-kit"
    name = {
        "traversal": "../" * 12 + "proc/self/environ",
        "absolute": "/proc/self/environ",
        "link": "notes.json",
        "fifo": "notes.json",
        "swapped": "notes.json",
        "alias": "./sbom.cdx.json",  # one file under many names, each read in full
        "directory": "bundles",
        "long": "x" * 300,
    }[plant]
    if plant == "link":
        (evidence / name).symlink_to("/proc/self/environ")
    if plant == "fifo":
        os.mkfifo(evidence / name)
    if plant == "swapped":
        (evidence / name).write_text("{}")  # not the bytes whose digest release.json records
    release = release_json(signed)
    release["evidence"].setdefault(name, {"sha256": "0" * 64})
    write_release(signed, release)
    result = cli(["promote", "--to", "dev", *policy], cwd=signed)
    assert result.code == 2, result.out + result.err
    (line,) = result.err.strip().splitlines()
    assert line.startswith(f"error: {evidence / 'release.json'}: evidence[") and "Traceback" not in result.err
    # refused before anything was signed or recorded
    assert not (signed / LEDGER).parent.exists()
    assert not (evidence / "promotions" / "dev.vsa.sigstore.json").exists()


def test_a_signed_rollback_upstream_holds_without_its_ledger_line(
    cli: Cli, signed: Path, sigstore: LocalSigstore, policy: list[str], token: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The attack: a release rolled back out of dev has a signed hold there; drop the ledger's
    # `rolled-back` line (the last one: the chain still verifies) and staging's previous-stage
    # saw only dev's PASSED VSA.
    from tests.conftest import another_release

    config = signed / "pipeline-kit.yml"
    text = config.read_text()
    start, end = text.index("  staging:\n"), text.index("  prod:\n")
    config.write_text(text[:start] + "  staging:\n    after: dev\n    gates: [signature]\n" + text[end:])
    assert cli(["promote", "--to", "dev", *policy], cwd=signed).code == 0
    bad = another_release(cli, signed, sigstore, monkeypatch)
    assert cli(["promote", "--to", "dev", *policy], cwd=signed).code == 0
    assert cli(["rollback", "--env", "dev", "--reason", "500s", *policy], cwd=signed).code == 0
    lines = (signed / LEDGER).read_text().splitlines(keepends=True)
    assert json.loads(lines[-1])["kind"] == "rolled-back"
    (signed / LEDGER).write_text("".join(lines[:-1]))
    assert cli(["ledger", "verify", *policy], cwd=signed).code == 0  # nothing shows the cut but the signature
    result = cli(["plan", "--to", "staging", "--json", *policy], cwd=signed)
    assert result.code == 1, result.out + result.err
    gate = next(g for g in json.loads(result.out)["gates"] if g["gate"] == "previous-stage")
    assert gate["verdict"] == "denied" and gate["reason"].startswith("rolled back out of dev at "), gate
    assert json.loads(result.out)["release"] == bad


@pytest.mark.parametrize("where", ["ledger", "attachment"])
def test_a_fifo_in_the_ledger_never_hangs_a_job(
    cli: Cli, signed: Path, policy: list[str], token: None, where: str
) -> None:
    # The attack: a FIFO in place of the ledger or of an attachment; reading it blocked every job.
    assert cli(["promote", "--to", "dev", *policy], cwd=signed).code == 0
    ledger = signed / LEDGER
    if where == "ledger":
        ledger.unlink()
        os.mkfifo(ledger)
    else:
        vsa = json.loads(ledger.read_text().splitlines()[-1])["details"]["vsa"]
        attachment = ledger.with_name(ledger.name + ".d") / vsa
        attachment.unlink()
        os.mkfifo(attachment)
    result = run_kit(["plan", "--to", "staging", *policy], signed, {**os.environ})
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr, result.stderr
    if where == "ledger":
        assert result.returncode == 2 and "ledger.jsonl: not a regular file" in result.stderr
    else:  # an attachment that is not a file is not there: dev's VSA is still in the evidence dir
        assert result.returncode == 1 and "previous-stage" in result.stdout


def test_a_migration_record_that_is_not_one_denies(cli: Cli, signed: Path, policy: list[str], token: None) -> None:
    config = signed / "pipeline-kit.yml"
    config.write_text(config.read_text() + "migrations: {paths: [migrations]}\n")
    (signed / ".pipeline-kit" / "migrations.json").write_text("[]")
    result = cli(["plan", "--to", "dev", *policy], cwd=signed)
    assert result.code == 1 and "internal error" not in result.err, result.err
    assert re.search(r"migrations +(DENY|ERROR) ", result.out), result.out


def _pae(payload_type: str, body: bytes) -> bytes:
    kind = payload_type.encode()
    return b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(body), body)


def test_a_subject_digest_chosen_as_a_statement_hash_never_becomes_a_signed_statement(
    cli: Cli, signed: Path, policy: list[str], sigstore: LocalSigstore, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Attack (found in review): the build job hands over the digests the signing job signs. It
    # lists sha256(PAE(a forged dev VSA)) as a "built file"; on Rekor v2 a signature over that
    # digest is logged exactly as a DSSE signature of the VSA would be, so rewrapped as a DSSE
    # bundle it would pass as a VSA the trusted identity signed. Digests are signed on Rekor v1.
    import base64
    import hashlib
    import shutil

    scratch = tmp_path / "scratch"
    shutil.copytree(signed, scratch, symlinks=True)
    monkeypatch.setenv("SIGSTORE_IDENTITY_TOKEN", sigstore.mint_token(SIGNER))
    assert cli(["promote", "--to", "dev", *policy], cwd=scratch).code == 0
    genuine = json.loads((scratch / ".pipeline-kit/promotions/dev.vsa.sigstore.json").read_text())
    statement = json.loads(base64.b64decode(genuine["dsseEnvelope"]["payload"]))
    statement["predicate"]["verifier"] = {"id": "forged-by-the-build-job"}
    payload = json.dumps(statement).encode()
    digest = hashlib.sha256(_pae("application/vnd.in-toto+json", payload)).hexdigest()
    forger = tmp_path / "signing-job"
    shutil.copytree(signed, forger, symlinks=True, ignore=shutil.ignore_patterns(".pipeline-kit"))
    sums = tmp_path / "built" / "SHA256SUMS"
    sums.parent.mkdir()
    sums.write_text(f"{digest}  dist/app-linux.tar.gz\n")
    for command in (["build", "--subjects", str(sums)], ["sbom"], ["provenance"]):
        assert cli(command, cwd=forger).code == 0
    signing = cli(["sign", "--trust-config", str(sigstore.trust_config_path), "--rekor-version", "2"], cwd=forger)
    assert signing.code == 0, signing.err
    subject = json.loads((forger / ".pipeline-kit/bundles/dist/app-linux.tar.gz.sigstore.json").read_text())
    assert subject["verificationMaterial"]["tlogEntries"][0]["kindVersion"]["version"] == "0.0.1"
    forged = dict(subject)
    signature = forged.pop("messageSignature")["signature"]
    forged["dsseEnvelope"] = {
        "payload": base64.b64encode(payload).decode(),
        "payloadType": "application/vnd.in-toto+json",
        "signatures": [{"sig": signature}],
    }
    target = signed / ".pipeline-kit/promotions/dev.vsa.sigstore.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(forged))
    staging = cli(["plan", "--to", "staging", "--json", *policy], cwd=signed)
    gates = {g["gate"]: g for g in json.loads(staging.out)["gates"]}
    assert gates["previous-stage"]["verdict"] == "denied"
    assert "soak" not in gates["previous-stage"]["reason"], gates["previous-stage"]


def test_a_policy_accepting_the_kit_workflows_must_name_the_repository(
    cli: Cli, described: Path, sigstore: LocalSigstore
) -> None:
    # Attack: anyone on GitHub calls the kit's signing workflows from their own repository; a
    # policy naming those workflows but no repository would accept their releases.
    from pipeline_kit.identity import KIT_WORKFLOWS_SAN_REGEX, IdentityPolicy

    with pytest.raises(UsageError, match="name yours"):
        IdentityPolicy(issuer=sigstore.issuer, san_regex=KIT_WORKFLOWS_SAN_REGEX).bound()
    named = IdentityPolicy(issuer=sigstore.issuer, san_regex=KIT_WORKFLOWS_SAN_REGEX, source=REPOSITORY)
    assert named.bound() is named
    flags = ["--trust-config", str(sigstore.trust_config_path), "--cert-oidc-issuer", sigstore.issuer]
    config = described / "pipeline-kit.yml"
    config.write_text(config.read_text().replace("    repository: https://github.com/pipeline-kit/hello-service\n", ""))
    result = cli(["verify", *flags, "--cert-identity-regex", ".*"], cwd=described)
    assert result.code == 2 and "name yours" in result.err, result.err


@pytest.mark.parametrize(
    ("caller", "accepted"),
    [
        ("pipeline-kit/hello-service/.github/workflows/release.yml@refs/tags/v1.0.0", True),
        ("pipeline-kit/hello-service/.github/workflows/release.yml@refs/heads/evil", False),
        ("pipeline-kit/hello-service/.github/workflows/other.yml@refs/tags/v1.0.0", False),
        (None, False),
    ],
)
def test_the_caller_of_the_kit_workflow_is_pinned_by_workflow_and_ref(
    cli: Cli,
    described: Path,
    sigstore: LocalSigstore,
    monkeypatch: pytest.MonkeyPatch,
    caller: str | None,
    accepted: bool,
) -> None:
    # Attack: whoever can push a branch writes a workflow that calls the kit's signing workflow
    # (with that branch's config: no gates). The certificate's SAN and source are the real ones;
    # only its Build Config URI (the calling workflow at its ref) tells them apart.
    # the example's policy as it is (the kit's workflows at a commit, for its repository, run by
    # its release workflow on version tags), with the local instance as the issuer
    config = described / "pipeline-kit.yml"
    config.write_text(config.read_text().replace("https://token.actions.githubusercontent.com", sigstore.issuer))
    assert "caller-regex: ^https://github" in config.read_text()
    claims = {"job_workflow_ref": f"{KIT_REPOSITORY}/.github/workflows/sign-release.yml@{'a' * 40}"}
    claims |= {"repository": "pipeline-kit/hello-service", "source_repository_uri": REPOSITORY}
    if caller is not None:
        claims["workflow_ref"] = caller  # what Fulcio certifies as the Build Config URI
    monkeypatch.setenv("SIGSTORE_IDENTITY_TOKEN", sigstore.mint_token("repo:x", email=False, extra=claims))
    assert cli(["sign", "--trust-config", str(sigstore.trust_config_path)], cwd=described).code == 0
    result = cli(["verify", "--trust-config", str(sigstore.trust_config_path)], cwd=described)
    assert (result.code == 0) == accepted, result.out + result.err
    if not accepted:
        assert "calling workflow" in result.err or "does not match" in result.err
    # naming the issuer alone (a template input, a variable) keeps the config's caller-regex
    issuer_only = ["--cert-oidc-issuer", sigstore.issuer]
    again = cli(["verify", "--trust-config", str(sigstore.trust_config_path), *issuer_only], cwd=described)
    assert (again.code == 0) == accepted, again.out + again.err


def test_a_reusable_workflow_counts_only_for_a_named_repository_however_it_is_pinned() -> None:
    # Attack (found in review): a policy pinning the kit's workflow at one commit (as init writes
    # it) or exactly, but naming no repository, escapes `bound()`'s sample SANs; the certificate
    # itself says a reusable workflow signed (its SAN is not the workflow that ran).
    from pipeline_kit.identity import IdentityPolicy

    arrive = f"https://github.com/{KIT_REPOSITORY}/.github/workflows/arrive.yml@{'c' * 40}"
    policy = IdentityPolicy(issuer="https://token.actions.githubusercontent.com", san=arrive).bound()
    caller = "https://github.com/evil/app/.github/workflows/x.yml@refs/heads/main"
    accepted, why = policy.accepts(arrive, policy.issuer, "https://github.com/evil/app", caller)
    assert not accepted and "name the repository to sign for" in why
    named = IdentityPolicy(issuer=policy.issuer, san=arrive, source=REPOSITORY)
    assert named.accepts(arrive, policy.issuer, REPOSITORY, f"{REPOSITORY}/.github/workflows/release.yml@refs/tags/v1")[
        0
    ]


def test_the_documented_policy_for_both_layouts_takes_both_and_nothing_beside() -> None:
    """docs/signing-layouts.md's policy accepting the kit's workflows and two of the project's
    own, parsed as the config parses it: each accepted where it should sign, and the same names
    refused at another ref, for another repository, or called by another workflow."""
    import yaml

    from pipeline_kit.config.sections import IdentityConfig
    from pipeline_kit.identity import IdentityPolicy
    from tests.conftest import ROOT

    doc = (ROOT / "docs" / "signing-layouts.md").read_text().split("## One policy for both")[1]
    block = doc.split("```yaml\n", 1)[1].split("```", 1)[0].replace("<40-hex commit>", "a" * 40)
    policy = IdentityPolicy.from_config(IdentityConfig.model_validate(yaml.safe_load(block)["signing"]["identity"]))
    issuer, shop = "https://token.actions.githubusercontent.com", "https://github.com/acme/shop"
    kit = f"https://github.com/{KIT_REPOSITORY}/.github/workflows"
    own = f"{shop}/.github/workflows"
    accepted = [
        (f"{kit}/sign-release.yml@{'a' * 40}", shop, f"{own}/release.yml@refs/tags/v1.2.0"),
        (f"{kit}/arrive.yml@{'a' * 40}", shop, f"{own}/release.yml@refs/tags/v1.2.0"),
        (f"{own}/rollback.yml@refs/heads/main", shop, f"{own}/rollback.yml@refs/heads/main"),
        (f"{own}/release-prod.yml@refs/heads/main", shop, f"{own}/release-prod.yml@refs/heads/main"),
    ]
    for san, source, caller in accepted:
        assert policy.accepts(san, issuer, source, caller) == (True, "the identity policy accepts this signer"), san
    refused = [
        (f"{kit}/sign-release.yml@{'b' * 40}", shop, f"{own}/release.yml@refs/tags/v1.2.0"),  # another kit commit
        (f"{kit}/sign-release.yml@{'a' * 40}", "https://github.com/evil/shop", f"{own}/release.yml@refs/tags/v1"),
        (f"{kit}/arrive.yml@{'a' * 40}", shop, f"{own}/pr.yml@refs/pull/7/merge"),  # called by another workflow
        (f"{own}/rollback.yml@refs/heads/feature", shop, f"{own}/rollback.yml@refs/heads/feature"),
        (f"{own}/deploy.yml@refs/heads/main", shop, f"{own}/deploy.yml@refs/heads/main"),
    ]
    for san, source, caller in refused:
        assert not policy.accepts(san, issuer, source, caller)[0], san
