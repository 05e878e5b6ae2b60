"""Rollback from a fresh job: a clone of the project with only the git ledger, no evidence dir."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from tests.conftest import Cli, another_release, git
from tests.sigstore_instance import LocalSigstore


def git_ledger(project: Path, remote: Path, deploys: Path) -> None:
    """`project`'s ledger shared through a ref of `remote`, a deploy that records the release and
    its digest in `deploys` (outside the checkout), committed."""
    config_path = project / "pipeline-kit.yml"
    config = yaml.safe_load(config_path.read_text())
    config["ledger"] = {"backend": "git", "remote": str(remote), "ref": "refs/pipeline-kit/ledger"}
    config["environments"]["dev"]["deploy"] = 'echo "$PIPELINE_KIT_RELEASE_ID $PIPELINE_KIT_DIGEST" >> ' + str(deploys)
    config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    git(project, "add", "-A")
    git(project, "commit", "-q", "-m", "git ledger")


def test_rollback_from_a_fresh_clone_restores_everything_from_the_git_ledger(
    cli: Cli, signed: Path, sigstore: LocalSigstore, policy: list[str], token: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    import json

    remote = signed.parent / "ledger.git"
    subprocess.run(["git", "init", "-q", "--bare", str(remote)], check=True)
    deploys = signed.parent / "deploys.txt"
    git_ledger(signed, remote, deploys)
    assert cli(["promote", "--to", "dev", *policy], cwd=signed).code == 0
    good = json.loads((signed / ".pipeline-kit" / "release.json").read_text())["id"]
    good_digest = json.loads((signed / ".pipeline-kit" / "release.json").read_text())["subjects"][0]["digest"]
    bad = another_release(cli, signed, sigstore, monkeypatch)
    promoted = cli(["promote", "--to", "dev", *policy], cwd=signed)
    assert promoted.code == 0, promoted.out + promoted.err
    git(signed, "add", "-A")
    git(signed, "commit", "-q", "-m", "bad")

    fresh = signed.parent / "fresh"
    git(signed.parent, "clone", "-q", str(signed), str(fresh))
    assert not (fresh / ".pipeline-kit").exists()
    result = cli(["rollback", "--env", "dev", "--reason", "x", *policy], cwd=fresh)
    assert result.code == 0, result.out + result.err
    assert f"rolled back from {bad} to {good}" in result.out
    assert deploys.read_text().splitlines()[-1].split() == [good, "sha256:" + good_digest["sha256"]]
    # the signed hold is in the ledger: the shared ref holds a rolled-back entry with its attachment
    from pipeline_kit.ledger import GitLedger

    entries = GitLedger(fresh, str(remote), "refs/pipeline-kit/ledger").verify()
    last = entries[-1]
    assert last.kind == "rolled-back" and last.release == good
    assert GitLedger(signed, str(remote), "refs/pipeline-kit/ledger").attachment(str(last.details["hold"]))
    # and the original checkout sees bad held out of dev
    again = cli(["promote", "--to", "dev", *policy], cwd=signed)
    assert again.code == 1 and "ledger annotate --env dev" in again.out, again.out
