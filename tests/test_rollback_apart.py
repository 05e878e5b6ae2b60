"""`rollback --deploy-elsewhere`: the rollback by hand in the isolated layout (docs/signing-layouts.md).

The hold is signed and the rollback recorded (`deploy: elsewhere`) in a job that runs no program
of the project; the deploy of the release it goes back to is left to a job of the user's, told
what to deploy by the outputs. The act run of the kit's `rollback.yml` is in
tests/test_signing_isolation.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from pipeline_kit.ledger import Entry, GitLedger
from tests.conftest import Cli, another_release, git
from tests.sigstore_instance import LocalSigstore
from tests.test_rollback_fresh import Promoted, promoted_twice

REF = "refs/pipeline-kit/ledger"


def last_entry(promoted: Promoted) -> Entry:
    return GitLedger(promoted.project, str(promoted.remote), REF).verify()[-1]


def test_a_rollback_apart_signs_the_hold_records_deploy_elsewhere_and_deploys_nothing(
    cli: Cli,
    signed: Path,
    sigstore: LocalSigstore,
    policy: list[str],
    token: None,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    promoted = promoted_twice(cli, signed, sigstore, policy, monkeypatch)
    deployed = promoted.deploys.read_text()
    # the kit's jobs run apart, and on GitHub the outputs go to the step's output file
    outputs = tmp_path / "github-output"
    monkeypatch.setenv("PIPELINE_KIT_APART", "true")
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_OUTPUT", str(outputs))
    monkeypatch.setenv("GITHUB_SERVER_URL", "https://github.com")
    monkeypatch.setenv("GITHUB_REPOSITORY", "pipeline-kit/hello-service")
    monkeypatch.setenv("GITHUB_SHA", git(promoted.fresh, "rev-parse", "HEAD").strip())
    result = cli(
        ["rollback", "--env", "dev", "--reason", "x", "--deploy-elsewhere", "--json", *policy], cwd=promoted.fresh
    )
    assert result.code == 0, result.out + result.err
    answer = json.loads(result.out)
    assert (answer["from"], answer["to"], answer["deploy"]) == (promoted.bad, promoted.good, "elsewhere")
    # the digest is good's, as its own evidence has it (independent of the rollback's code path)
    assert list(answer["subjects"].values()) == [promoted.digest]
    written = dict(line.split("=", 1) for line in outputs.read_text().splitlines())
    assert written["release-id"] == promoted.good and written["digest"] == promoted.digest
    assert written["from"] == promoted.bad and json.loads(written["subjects"]) == answer["subjects"]
    # nothing deployed here: the configured deploy command never ran
    assert promoted.deploys.read_text() == deployed
    entry = last_entry(promoted)
    assert entry.kind == "rolled-back" and entry.release == promoted.good
    assert entry.details["deploy"] == "elsewhere" and entry.details["from"] == promoted.bad
    # the hold is signed: bad is refused in dev by rollback-hold, on the signed record
    for name in ("GITHUB_ACTIONS", "GITHUB_OUTPUT", "GITHUB_SERVER_URL", "GITHUB_REPOSITORY", "GITHUB_SHA"):
        monkeypatch.delenv(name)
    monkeypatch.delenv("PIPELINE_KIT_APART")
    plan = cli(["plan", "--to", "dev", "--json", *policy], cwd=promoted.project)
    assert plan.code == 1, plan.out + plan.err
    hold = next(g for g in json.loads(plan.out)["gates"] if g["gate"] == "rollback-hold")
    assert hold["verdict"] == "denied" and "(signed," in hold["reason"], hold


def test_a_deploy_command_with_deploy_elsewhere_is_refused_before_anything_is_signed(
    cli: Cli, signed: Path, sigstore: LocalSigstore, policy: list[str], token: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    promoted = promoted_twice(cli, signed, sigstore, policy, monkeypatch)
    before = GitLedger(promoted.project, str(promoted.remote), REF).verify()
    marker = promoted.fresh.parent / "ran"
    result = cli(
        ["rollback", "--env", "dev", "--reason", "x", "--deploy-elsewhere", *policy, "--", "touch", str(marker)],
        cwd=promoted.fresh,
    )
    assert result.code == 2, result.out + result.err
    assert "--deploy-elsewhere takes no deploy command" in result.err
    assert not marker.exists()
    assert GitLedger(promoted.project, str(promoted.remote), REF).verify() == before  # nothing recorded or signed


def test_apart_a_rollback_runs_no_program_the_config_names(
    cli: Cli, signed: Path, sigstore: LocalSigstore, policy: list[str], token: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    promoted = promoted_twice(cli, signed, sigstore, policy, monkeypatch)
    deployed = promoted.deploys.read_text()
    # the config (the caller's, at the ref that runs) names a deploy that would read the kit's environment
    marker = promoted.fresh.parent / "ran.txt"
    config_path = promoted.fresh / "pipeline-kit.yml"
    config = yaml.safe_load(config_path.read_text())
    config["environments"]["dev"]["deploy"] = f"env > {marker}"
    config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    git(promoted.fresh, "commit", "-qam", "a deploy that harvests")
    monkeypatch.setenv("PIPELINE_KIT_APART", "true")
    result = cli(["rollback", "--env", "dev", "--reason", "x", "--deploy-elsewhere", *policy], cwd=promoted.fresh)
    assert result.code == 0, result.out + result.err
    assert "next: deploy release " + promoted.good in result.out
    assert not marker.exists() and promoted.deploys.read_text() == deployed


def test_a_second_rollback_apart_never_brings_the_held_release_back(
    cli: Cli, signed: Path, sigstore: LocalSigstore, policy: list[str], token: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    promoted = promoted_twice(cli, signed, sigstore, policy, monkeypatch)
    # good, bad, then third promoted to dev; third is rolled back apart to bad
    third = another_third(cli, promoted, sigstore, policy, monkeypatch)
    args = ["rollback", "--env", "dev", "--reason", "x", "--deploy-elsewhere", "--json", *policy]
    first = cli(args, cwd=promoted.project)
    assert first.code == 0, first.out + first.err
    assert (json.loads(first.out)["from"], json.loads(first.out)["to"]) == (third, promoted.bad)
    # rolling back again (bad is bad too): past bad to good, never back to third, held by the signed hold
    second = cli(args, cwd=promoted.project)
    assert second.code == 0, second.out + second.err
    assert (json.loads(second.out)["from"], json.loads(second.out)["to"]) == (promoted.bad, promoted.good)
    # and a third: nothing left that is not held; third (newest, promoted) is refused as rolled back
    again = cli([*args, "--to", third], cwd=promoted.project)
    assert again.code == 1 and f"{third} was rolled back out of dev (signed)" in again.err, again.out + again.err


def another_third(
    cli: Cli, promoted: Promoted, sigstore: LocalSigstore, policy: list[str], monkeypatch: pytest.MonkeyPatch
) -> str:
    """A third release of the project, promoted to dev after bad; its id."""
    (promoted.project / "src" / "hello_service" / "third.py").write_text("THIRD = True\n")
    third = another_release(cli, promoted.project, sigstore, monkeypatch)
    result = cli(["promote", "--to", "dev", *policy], cwd=promoted.project)
    assert result.code == 0, result.out + result.err
    return third


@pytest.mark.parametrize(
    ("caller", "accepted"),
    [
        ("rollback.yml@refs/heads/main", True),  # the example, run from main
        ("release.yml@refs/tags/v1.2.0", True),
        ("rollback.yml@refs/heads/feature", False),  # whoever can push a branch
        ("pr.yml@refs/heads/main", False),  # another workflow of the repository
        ("rollback.yml@refs/tags/v1.2.0", False),
    ],
)
def test_the_policy_init_writes_accepts_the_kit_rollback_workflow_only_from_the_rollback_workflow_on_main(
    caller: str, accepted: bool
) -> None:
    from pipeline_kit.identity import KIT_REPOSITORY, IdentityPolicy
    from pipeline_kit.scaffold import forge_identity

    identity = forge_identity("https://github.com/acme/app")
    assert identity is not None
    issuer, san_regex, _, caller_regex = identity
    policy = IdentityPolicy(
        issuer, san_regex=san_regex, source="https://github.com/acme/app", caller_regex=caller_regex
    )
    hold = f"https://github.com/{KIT_REPOSITORY}/.github/workflows/rollback.yml@{'a' * 40}"
    verdict = policy.accepts(
        hold, issuer, "https://github.com/acme/app", f"https://github.com/acme/app/.github/workflows/{caller}"
    )
    assert verdict[0] is accepted, verdict
    # another repository's call of the same workflow never counts
    other = policy.accepts(
        hold, issuer, "https://github.com/evil/app", f"https://github.com/evil/app/.github/workflows/{caller}"
    )
    assert other[0] is False
