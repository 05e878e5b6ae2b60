"""Rollback from a fresh job: a clone of the project with only the git ledger, no evidence dir."""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from tests.conftest import SIGNER, Cli, another_release, git, offline_installs
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


@dataclass
class Promoted:
    project: Path  # the checkout that promoted (its evidence dir in place)
    fresh: Path  # a fresh clone of it: no evidence dir, only the git ledger
    remote: Path
    deploys: Path
    good: str
    bad: str
    digest: str  # good's


def promoted_twice(
    cli: Cli,
    project: Path,
    sigstore: LocalSigstore,
    policy: list[str],
    monkeypatch: pytest.MonkeyPatch,
    files: dict[str, str] | None = None,
) -> Promoted:
    """`project` promoted to dev twice (good, then bad) with a git ledger on a local bare remote,
    `files` added to it, committed, and cloned afresh (the clone has no `.pipeline-kit/`)."""
    remote = project.parent / "ledger.git"
    subprocess.run(["git", "init", "-q", "--bare", str(remote)], check=True)
    deploys = project.parent / "deploys.txt"
    for name, text in (files or {}).items():
        (project / name).parent.mkdir(parents=True, exist_ok=True)
        (project / name).write_text(text)
    git_ledger(project, remote, deploys)
    assert cli(["promote", "--to", "dev", *policy], cwd=project).code == 0
    release = json.loads((project / ".pipeline-kit" / "release.json").read_text())
    good, digest = release["id"], "sha256:" + release["subjects"][0]["digest"]["sha256"]
    bad = another_release(cli, project, sigstore, monkeypatch)
    promoted = cli(["promote", "--to", "dev", *policy], cwd=project)
    assert promoted.code == 0, promoted.out + promoted.err
    git(project, "add", "-A")
    git(project, "commit", "-q", "-m", "bad")
    fresh = project.parent / "fresh"
    git(project.parent, "clone", "-q", str(project), str(fresh))
    assert not (fresh / ".pipeline-kit").exists() and not (fresh / "dist").exists()
    return Promoted(project, fresh, remote, deploys, good, bad, digest)


def rolled_back_in_the_ledger(cli: Cli, promoted: Promoted, policy: list[str]) -> None:
    """good deployed again by its digest, the signed hold in the shared ledger, bad held out of dev."""
    from pipeline_kit.ledger import GitLedger

    assert promoted.deploys.read_text().splitlines()[-1].split() == [promoted.good, promoted.digest]
    entries = GitLedger(promoted.project, str(promoted.remote), "refs/pipeline-kit/ledger").verify()
    last = entries[-1]
    assert last.kind == "rolled-back" and last.release == promoted.good
    assert last.details["from"] == promoted.bad
    ledger = GitLedger(promoted.project, str(promoted.remote), "refs/pipeline-kit/ledger")
    assert ledger.attachment(str(last.details["hold"]))
    again = cli(["promote", "--to", "dev", *policy], cwd=promoted.project)
    assert again.code == 1 and "ledger annotate --env dev" in again.out, again.out


def test_rollback_from_a_fresh_clone_restores_everything_from_the_git_ledger(
    cli: Cli, signed: Path, sigstore: LocalSigstore, policy: list[str], token: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    promoted = promoted_twice(cli, signed, sigstore, policy, monkeypatch)
    result = cli(["rollback", "--env", "dev", "--reason", "x", *policy], cwd=promoted.fresh)
    assert result.code == 0, result.out + result.err
    assert f"rolled back from {promoted.bad} to {promoted.good}" in result.out
    rolled_back_in_the_ledger(cli, promoted, policy)


ROLLBACK_WORKFLOW = """\
name: rollback
on: push
permissions: {}
jobs:
  rollback:
    runs-on: ubuntu-latest
    permissions:
      contents: read
      id-token: write
    steps:
      - uses: actions/checkout@v4
        with:
          persist-credentials: false
      - id: rollback
        uses: pipeline-kit/pipeline-kit/actions/rollback@v0
        with:
          environment: dev
          reason: ${{ env.TEST_REASON }}
          trust-config: ${{ env.TEST_TRUST_CONFIG }}
          cert-identity: %(signer)s
          cert-oidc-issuer: ${{ env.TEST_ISSUER }}
      - env:
          FROM: ${{ steps.rollback.outputs.from }}
          TO: ${{ steps.rollback.outputs.to }}
        run: printf '%%s %%s\\n' "$FROM" "$TO" > "$TEST_OUT/rollback.txt"
"""


def test_the_rollback_action_in_a_fresh_checkout_under_act(
    cli: Cli, signed: Path, sigstore: LocalSigstore, policy: list[str], token: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.test_actions import run_act

    workflow = ROLLBACK_WORKFLOW % {"signer": SIGNER}
    promoted = promoted_twice(cli, signed, sigstore, policy, monkeypatch, {".github/workflows/rollback.yml": workflow})
    work = signed.parent / "runner"
    work.mkdir()
    result, out = run_act(promoted.fresh, work, sigstore, "500s", workflow=".github/workflows/rollback.yml")
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-2000:]
    assert (out / "rollback.txt").read_text().split() == [promoted.bad, promoted.good]
    rolled_back_in_the_ledger(cli, promoted, policy)


def test_the_rollback_template_in_a_fresh_pipeline_under_gitlab_ci_local(
    cli: Cli, signed: Path, sigstore: LocalSigstore, policy: list[str], token: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a pipeline of its own (no build or sign job, no artifacts): the git ledger is all it has

    from tests.test_gitlab_templates import one_template, run

    files = one_template(signed, sigstore, "rollback.yml", "      environment: dev\n      needs: []\n")
    promoted = promoted_twice(cli, signed, sigstore, policy, monkeypatch, files)
    variables = {**offline_installs(promoted.fresh.parent), "SIGSTORE_IDENTITY_TOKEN": sigstore.mint_token(SIGNER)}
    result = run(
        promoted.fresh,
        "pipeline-kit-rollback-dev",
        *(arg for key, value in variables.items() for arg in ("--variable", f"{key}={value}")),
    )
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-2000:]
    assert "PASS  pipeline-kit-rollback-dev" in result.stdout
    rolled_back_in_the_ledger(cli, promoted, policy)


def test_a_fresh_clone_with_a_file_ledger_is_told_what_the_rollback_needs(
    cli: Cli, signed: Path, policy: list[str], token: None
) -> None:
    # the file ledger stayed with the job that promoted: exit 2, saying what to bring
    assert cli(["promote", "--to", "dev", *policy], cwd=signed).code == 0
    git(signed, "add", "-A")
    git(signed, "commit", "-q", "--allow-empty", "-m", "promoted")
    fresh = signed.parent / "fresh"
    git(signed.parent, "clone", "-q", str(signed), str(fresh))
    result = cli(["rollback", "--env", "dev", "--reason", "x", *policy], cwd=fresh)
    assert result.code == 2, result.out + result.err
    assert "dev has no release to roll back from" in result.err
    assert "backend: git" in result.err and ".pipeline-kit-ledger/" in result.err, result.err
