"""Attacks on the trust model, each by a writer of the build job's artifacts (the evidence dir,
the working tree, the ledger file): every one must be refused, naming what was refused."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import SIGNER, Cli, policy_flags
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
