"""Attacks on the trust model, each by a writer of the build job's artifacts (the evidence dir,
the working tree, the ledger file): every one must be refused, naming what was refused."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import SIGNER, WHEEL, Cli, policy_flags
from tests.sigstore_instance import LocalSigstore


@pytest.fixture
def policy(sigstore: LocalSigstore) -> list[str]:
    return policy_flags(sigstore)


@pytest.fixture
def token(sigstore: LocalSigstore, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SIGSTORE_IDENTITY_TOKEN", sigstore.mint_token(SIGNER))


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
    assert result.code == 1 and "refusing to write through a symbolic link" in result.err
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
    assert applied["overrides"] == ["issuer", "san", "sanRegex"]
    config = (signed / "pipeline-kit.yml").read_bytes()
    assert predicate["policy"]["digest"]["sha256"] == hashlib.sha256(config).hexdigest()
    shown = cli(["verify", "--env", "dev", *policy], cwd=signed)
    assert shown.code == 0 and f"judged under identity {SIGNER}" in shown.out
    assert "overriding the config's issuer, san, sanRegex" in shown.out
