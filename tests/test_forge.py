"""The forges (GitHub via PyGithub, GitLab via python-gitlab) against local fakes whose every
request and response is validated against the official API descriptions."""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pipeline_kit.forge.github import GitHubForge
from pipeline_kit.forge.interface import ForgeError
from tests.conftest import SIGNER, Cli, policy_flags
from tests.forge_fakes import GitHubFake, GitLabFake
from tests.sigstore_instance import LocalSigstore
from tests.test_provenance import GITHUB_ENV, GITLAB_ENV

COMMIT = "a" * 40


@pytest.fixture(autouse=True)
def local_trust(sigstore: LocalSigstore, monkeypatch: pytest.MonkeyPatch) -> None:
    """Plans here verify against the local Sigstore instance, never the public-good one."""
    monkeypatch.setenv("PIPELINE_KIT_TRUST_CONFIG", str(sigstore.trust_config_path))


@pytest.fixture
def github() -> Iterator[GitHubFake]:
    fake = GitHubFake().start()
    yield fake
    fake.stop()
    assert fake.violations == [], fake.violations  # every call matched GitHub's API description


@pytest.fixture
def gitlab() -> Iterator[GitLabFake]:
    fake = GitLabFake().start()
    yield fake
    fake.stop()
    assert fake.violations == [], fake.violations


def in_github(monkeypatch: pytest.MonkeyPatch, fake: GitHubFake) -> None:
    for key, value in GITHUB_ENV.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("GITHUB_REPOSITORY", "acme/hello")
    monkeypatch.setenv("GITHUB_API_URL", fake.url)
    monkeypatch.setenv("GITHUB_TOKEN", "ghs_test_token")
    monkeypatch.delenv("ACTIONS_ID_TOKEN_REQUEST_URL")


def signed_in(cli: Cli, project: Path, sigstore: LocalSigstore, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    for command in (["build"], ["sbom"], ["provenance"]):
        assert cli(command, cwd=project).code == 0
    monkeypatch.setenv("SIGSTORE_IDENTITY_TOKEN", sigstore.mint_token(SIGNER))
    assert cli(["sign", "--trust-config", str(sigstore.trust_config_path)], cwd=project).code == 0
    repository = json.loads((project / ".pipeline-kit" / "release.json").read_text())["source"]["repository"]
    return [*policy_flags(sigstore), "--repository", repository]


def test_github_promotion_records_deployment_status_and_attestations(
    cli: Cli, hello: Path, sigstore: LocalSigstore, github: GitHubFake, monkeypatch: pytest.MonkeyPatch
) -> None:
    in_github(monkeypatch, github)
    policy = signed_in(cli, hello, sigstore, monkeypatch)
    result = cli(["promote", "--to", "dev", *policy, "--", "true"], cwd=hello)
    assert result.code == 0, result.err + result.out
    (deployment,) = github.deployments.values()
    assert deployment["environment"] == "dev" and deployment["sha"] == COMMIT
    release = json.loads((hello / ".pipeline-kit" / "release.json").read_text())
    assert deployment["payload"]["release"] == release["id"]
    decision = (hello / ".pipeline-kit" / "promotions" / "dev.decision.json").read_bytes()
    assert deployment["payload"]["decision"] == hashlib.sha256(decision).hexdigest()
    assert deployment["payload"]["vsa"] is None  # signed once the deploy succeeded: uploaded below
    assert [s["state"] for s in github.deployment_statuses] == ["in_progress", "success"]
    assert github.commit_statuses == [
        {
            "sha": COMMIT,
            "state": "success",
            "context": "pipeline-kit/dev",
            "description": f"passed: release {release['id']}",
        }
    ]
    kinds = [json.loads(base64.b64decode(b["dsseEnvelope"]["payload"]))["predicateType"] for b in github.attestations]
    assert sorted(kinds) == [  # sent at once, so in any order
        "https://cyclonedx.org/bom",
        "https://slsa.dev/provenance/v1",
        "https://slsa.dev/verification_summary/v1",
    ]


def test_the_status_and_attestations_are_sent_at_once(
    cli: Cli, hello: Path, sigstore: LocalSigstore, github: GitHubFake, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Four independent requests after a deploy (a commit status, three attestations): with each
    taking a while at the forge, they overlap rather than queue."""
    in_github(monkeypatch, github)
    policy = signed_in(cli, hello, sigstore, monkeypatch)
    github.delay = 0.3
    result = cli(["promote", "--to", "dev", *policy, "--", "true"], cwd=hello)
    github.delay = 0.0
    assert result.code == 0, result.err
    assert len(github.attestations) == 3 and len(github.commit_statuses) == 1
    assert github.most_in_flight >= 2


def test_a_failed_attestation_upload_is_named_and_the_others_still_finish(
    cli: Cli, hello: Path, sigstore: LocalSigstore, github: GitHubFake, monkeypatch: pytest.MonkeyPatch
) -> None:
    in_github(monkeypatch, github)
    policy = signed_in(cli, hello, sigstore, monkeypatch)
    github.fail_once("/attestations$", 502, {"message": "Bad gateway"})
    result = cli(["promote", "--to", "dev", *policy, "--", "true"], cwd=hello)
    assert result.code == 3, result.err
    assert "502" in result.err and "Traceback" not in result.err
    assert len(github.attestations) == 2 and len(github.commit_statuses) == 1  # the others were sent


def test_github_denied_promotion_sets_a_failure_status(
    cli: Cli, hello: Path, sigstore: LocalSigstore, github: GitHubFake, monkeypatch: pytest.MonkeyPatch
) -> None:
    in_github(monkeypatch, github)
    policy = signed_in(cli, hello, sigstore, monkeypatch)
    assert cli(["promote", "--to", "prod", *policy], cwd=hello).code == 1
    assert github.deployments == {}
    assert [s["state"] for s in github.commit_statuses] == ["failure"]


def test_failed_deploy_marks_the_forge_deployment_failed(
    cli: Cli, hello: Path, sigstore: LocalSigstore, github: GitHubFake, monkeypatch: pytest.MonkeyPatch
) -> None:
    in_github(monkeypatch, github)
    policy = signed_in(cli, hello, sigstore, monkeypatch)
    assert cli(["promote", "--to", "dev", *policy, "--", "false"], cwd=hello).code == 3
    assert [s["state"] for s in github.deployment_statuses] == ["in_progress", "failure"]


# --- approvals ----------------------------------------------------------------------------


def approvals_config(project: Path, minimum: int = 2) -> None:
    config = project / "pipeline-kit.yml"
    text = config.read_text().replace(
        "  dev:\n    gates: [signature, provenance, sbom]",
        f"  dev:\n    gates: [signature, {{approvals: {{min: {minimum}, timeout: 5}}}}]",
    )
    config.write_text(text)


@pytest.mark.parametrize(
    ("reviews", "verdict", "fragment"),
    [
        ([("bob", "APPROVED"), ("carol", "APPROVED")], "passed", "2 approvals (bob, carol)"),
        (
            [("bob", "APPROVED"), ("alice", "APPROVED")],
            "denied",
            "approvals: 1 of 2 from pull request #7 reviews: bob (not counted: alice)",
        ),
        (
            [("bob", "APPROVED"), ("dave", "APPROVED"), ("carol", "CHANGES_REQUESTED")],
            "denied",
            "approvals: rejected by carol in pull request #7 reviews",
        ),
        ([("bob", "APPROVED"), ("bob", "APPROVED"), ("carol", "COMMENTED")], "denied", "approvals: 1 of 2"),
        ([("carol", "CHANGES_REQUESTED"), ("bob", "APPROVED"), ("carol", "APPROVED")], "passed", "2 approvals"),
        ([("bob", "APPROVED"), ("carol", "APPROVED"), ("carol", "DISMISSED")], "denied", "approvals: 1 of 2"),
        ([("bob", "APPROVED"), ("carol", "APPROVED"), ("octocat", "APPROVED")], "passed", "2 approvals (bob, carol)"),
        # a stale approval: carol approved an earlier head, then more was pushed and merged
        (
            [("bob", "APPROVED"), ("carol", "APPROVED", "e" * 40)],
            "denied",
            "1 of 2 from pull request #7 reviews: bob (approved an earlier head than the merged one: carol)",
        ),
    ],
)
def test_approvals_gate(
    cli: Cli,
    hello: Path,
    sigstore: LocalSigstore,
    github: GitHubFake,
    monkeypatch: pytest.MonkeyPatch,
    reviews: list[tuple[str, ...]],
    verdict: str,
    fragment: str,
) -> None:
    in_github(monkeypatch, github)
    approvals_config(hello)
    policy = signed_in(cli, hello, sigstore, monkeypatch)
    github.page_size = 2  # reviews come over several pages
    github.add_pull(COMMIT, 7, "alice", reviews)
    result = cli(["plan", "--to", "dev", "--json", *policy], cwd=hello)
    gate = next(g for g in json.loads(result.out)["gates"] if g["gate"] == "approvals")
    assert gate["verdict"] == verdict and fragment in gate["reason"], gate
    # the promoter (octocat, GITHUB_ACTOR) never counts, even when they approved


def test_no_author_of_a_commit_in_the_pull_request_approves_it(
    cli: Cli, hello: Path, sigstore: LocalSigstore, github: GitHubFake, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The attack: carol pushed a commit to alice's pull request, then approved it; only the
    # opener was excluded, so carol reviewed her own code.
    in_github(monkeypatch, github)
    approvals_config(hello)
    policy = signed_in(cli, hello, sigstore, monkeypatch)
    github.add_pull(COMMIT, 7, "alice", [("bob", "APPROVED"), ("carol", "APPROVED")], committers=("carol",))
    result = cli(["plan", "--to", "dev", "--json", *policy], cwd=hello)
    gate = next(g for g in json.loads(result.out)["gates"] if g["gate"] == "approvals")
    assert gate["verdict"] == "denied" and "1 of 2" in gate["reason"] and "not counted: carol" in gate["reason"], gate


@pytest.mark.parametrize(
    ("status", "headers", "fragment"),
    [
        (403, {"Retry-After": "60", "X-RateLimit-Remaining": "0"}, "HTTP 403"),
        (429, {"Retry-After": "30"}, "HTTP 429"),
        (500, {}, "HTTP 500"),
        (404, {}, "HTTP 404"),
    ],
)
def test_forge_errors_deny_the_approvals_gate(
    cli: Cli,
    hello: Path,
    sigstore: LocalSigstore,
    github: GitHubFake,
    monkeypatch: pytest.MonkeyPatch,
    status: int,
    headers: dict[str, str],
    fragment: str,
) -> None:
    in_github(monkeypatch, github)
    approvals_config(hello)
    policy = signed_in(cli, hello, sigstore, monkeypatch)
    github.add_pull(COMMIT, 7, "alice", [("bob", "APPROVED"), ("carol", "APPROVED")])
    github.fail_once(
        "/reviews$", status, {"message": "API rate limit exceeded" if status in (403, 429) else "boom"}, headers
    )
    result = cli(["plan", "--to", "dev", "--json", *policy], cwd=hello)
    assert result.code == 1
    gate = next(g for g in json.loads(result.out)["gates"] if g["gate"] == "approvals")
    assert gate["verdict"] == "error" and fragment in gate["reason"], gate


def test_a_forge_that_hangs_denies(
    cli: Cli, hello: Path, sigstore: LocalSigstore, github: GitHubFake, monkeypatch: pytest.MonkeyPatch
) -> None:
    in_github(monkeypatch, github)
    hello_config = hello / "pipeline-kit.yml"
    approvals_config(hello)
    hello_config.write_text(hello_config.read_text().replace("timeout: 5", "timeout: 0.5"))
    policy = signed_in(cli, hello, sigstore, monkeypatch)
    github.add_pull(COMMIT, 7, "alice", [("bob", "APPROVED"), ("carol", "APPROVED")])
    github.delay = 2.0
    result = cli(["plan", "--to", "dev", "--json", *policy], cwd=hello)
    github.delay = 0.0
    gate = next(g for g in json.loads(result.out)["gates"] if g["gate"] == "approvals")
    assert gate["verdict"] == "error" and "timed out" in gate["reason"]


def test_approvals_without_a_merged_pull_request(github: GitHubFake) -> None:
    forge = GitHubForge(github.url, "acme/hello", "token")
    with pytest.raises(ForgeError, match="no merged pull request contains"):
        forge.approvals(COMMIT, "dev")


def test_approvals_gate_locally_has_no_forge(cli: Cli, hello: Path) -> None:
    approvals_config(hello)
    assert cli(["build"], cwd=hello).code == 0
    # a bundle (not a valid one): `plan` refuses evidence with none at all before any gate runs
    (hello / ".pipeline-kit" / "bundles").mkdir()
    (hello / ".pipeline-kit" / "bundles" / "sbom.sigstore.json").write_text("{}")
    result = cli(["plan", "--to", "dev", "--json"], cwd=hello)
    gate = next(g for g in json.loads(result.out)["gates"] if g["gate"] == "approvals")
    assert gate["verdict"] == "error" and "no forge" in gate["reason"]


# --- GitLab -------------------------------------------------------------------------------


def in_gitlab(monkeypatch: pytest.MonkeyPatch, fake: GitLabFake) -> None:
    for key, value in GITLAB_ENV.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("CI_SERVER_URL", fake.url)
    monkeypatch.setenv("CI_PROJECT_ID", "42")
    monkeypatch.setenv("CI_JOB_TOKEN", "job-token")
    monkeypatch.setenv("CI_PROJECT_URL", "https://github.com/acme/hello")  # what the provenance names


def test_gitlab_promotion_records_a_deployment(
    cli: Cli, hello: Path, sigstore: LocalSigstore, gitlab: GitLabFake, monkeypatch: pytest.MonkeyPatch
) -> None:
    in_gitlab(monkeypatch, gitlab)
    policy = signed_in(cli, hello, sigstore, monkeypatch)
    result = cli(["promote", "--to", "dev", *policy, "--", "true"], cwd=hello)
    assert result.code == 0, result.err + result.out
    (deployment,) = gitlab.deployments.values()
    assert deployment["environment_name"] == "dev" and deployment["sha"] == "b" * 40
    assert deployment["status"] == "running" and gitlab.updates == [(1, "success")]
    assert [(s["state"], s["name"]) for s in gitlab.commit_statuses] == [("success", "pipeline-kit/dev")]


def test_gitlab_freeze_periods_are_read_at_promotion_time(
    cli: Cli, hello: Path, sigstore: LocalSigstore, gitlab: GitLabFake, monkeypatch: pytest.MonkeyPatch
) -> None:
    in_gitlab(monkeypatch, gitlab)
    config = hello / "pipeline-kit.yml"
    config.write_text(
        config.read_text().replace(
            "  dev:\n    gates: [signature, provenance, sbom]", "  dev:\n    gates: [{freeze: {forge: true}}]"
        )
    )
    policy = signed_in(cli, hello, sigstore, monkeypatch)
    assert cli(["plan", "--to", "dev", *policy], cwd=hello).code == 0  # no freeze period yet
    gitlab.add_freeze("* * * * *", "0 0 1 1 *", "UTC")  # started a minute ago, ends on new year
    result = cli(["plan", "--to", "dev", "--json", *policy], cwd=hello)
    assert result.code == 1
    gate = next(g for g in json.loads(result.out)["gates"] if g["gate"] == "freeze")
    assert gate["verdict"] == "denied" and "forge freeze" in gate["reason"] and "until" in gate["reason"]


def test_open_forge_choice() -> None:
    from pipeline_kit.config import ForgeConfig
    from pipeline_kit.forge import open_forge
    from pipeline_kit.forge.gitlab import GitLabForge

    assert open_forge(ForgeConfig(), {}) is None  # local
    assert open_forge(ForgeConfig(), {"GITHUB_ACTIONS": "true", "GITHUB_REPOSITORY": "a/b"}) is None  # no token: skip
    assert isinstance(
        open_forge(ForgeConfig(), {"GITHUB_ACTIONS": "true", "GITHUB_REPOSITORY": "a/b", "GITHUB_TOKEN": "t"}),
        GitHubForge,
    )
    gitlab = open_forge(ForgeConfig(), {"GITLAB_CI": "true", "CI_PROJECT_ID": "7", "CI_JOB_TOKEN": "j"})
    assert isinstance(gitlab, GitLabForge)
    assert open_forge(ForgeConfig(type="none"), {"GITHUB_ACTIONS": "true", "GITHUB_TOKEN": "t"}) is None
    with pytest.raises(ForgeError, match=r"no token in \$GITHUB_TOKEN"):
        open_forge(ForgeConfig(type="github"), {"GITHUB_REPOSITORY": "a/b"})


# --- checks from the forge ----------------------------------------------------------------


def forge_checks_config(project: Path) -> None:
    config = project / "pipeline-kit.yml"
    config.write_text(
        config.read_text().replace(
            "  dev:\n    gates: [signature, provenance, sbom]",
            "  dev:\n    gates: [{checks: {forge: [lint, test, ci/external]}}]",
        )
    )


@pytest.mark.parametrize(
    ("runs", "statuses", "verdict", "fragment"),
    [
        (
            [("lint", "completed", "success"), ("test", "completed", "skipped")],
            [("ci/external", "success")],
            "passed",
            "3 required forge check(s) passed",
        ),
        (
            [("lint", "completed", "failure"), ("test", "completed", "success")],
            [("ci/external", "success")],
            "denied",
            "required check(s) failed: lint (check run failure)",
        ),
        (
            [("lint", "in_progress", None), ("test", "completed", "success")],
            [("ci/external", "success")],
            "denied",
            "required check(s) still running: lint",
        ),
        ([("lint", "completed", "success")], [("ci/external", "pending")], "denied", "never ran on aaaaaaaaaaaa: test"),
        (
            [("lint", "completed", "success"), ("test", "completed", "success")],
            [("ci/external", "error")],
            "denied",
            "ci/external (status error)",
        ),
        # the attack: a commit status named like the failed check run (statuses were read last,
        # and the last of a name won)
        (
            [("lint", "completed", "failure"), ("test", "completed", "success")],
            [("ci/external", "success"), ("lint", "success")],
            "denied",
            "required check(s) failed: lint (check run failure)",
        ),
    ],
)
def test_checks_gate_reads_forge_checks(
    cli: Cli,
    hello: Path,
    sigstore: LocalSigstore,
    github: GitHubFake,
    monkeypatch: pytest.MonkeyPatch,
    runs: list[tuple[str, str, str | None]],
    statuses: list[tuple[str, str]],
    verdict: str,
    fragment: str,
) -> None:
    in_github(monkeypatch, github)
    forge_checks_config(hello)
    policy = signed_in(cli, hello, sigstore, monkeypatch)
    github.page_size = 1
    for name, status, conclusion in runs:
        github.add_check(COMMIT, name, status, conclusion)
    for context, state in statuses:
        github.add_status(COMMIT, context, state)
    result = cli(["plan", "--to", "dev", "--json", *policy], cwd=hello)
    gate = next(g for g in json.loads(result.out)["gates"] if g["gate"] == "checks")
    assert gate["verdict"] == verdict and fragment in gate["reason"], gate


@pytest.mark.parametrize(
    ("statuses", "verdict", "fragment"),
    [
        ([("lint", "success"), ("test", "success"), ("ci/external", "success")], "passed", "3 required forge"),
        ([("lint", "success"), ("test", "failed"), ("ci/external", "success")], "denied", "test (job failed)"),
        ([("lint", "success"), ("test", "canceled"), ("ci/external", "success")], "denied", "test (job canceled)"),
        ([("lint", "success"), ("test", "skipped"), ("ci/external", "success")], "denied", "test (job skipped)"),
        ([("lint", "manual"), ("test", "success"), ("ci/external", "success")], "denied", "still running: lint"),
        ([("lint", "running"), ("test", "success")], "denied", "never ran on aaaaaaaaaaaa: ci/external"),
    ],
)
def test_checks_gate_reads_gitlab_job_statuses(
    cli: Cli,
    hello: Path,
    sigstore: LocalSigstore,
    gitlab: GitLabFake,
    monkeypatch: pytest.MonkeyPatch,
    statuses: list[tuple[str, str]],
    verdict: str,
    fragment: str,
) -> None:
    in_gitlab(monkeypatch, gitlab)
    forge_checks_config(hello)
    monkeypatch.setenv("CI_COMMIT_SHA", COMMIT)
    policy = signed_in(cli, hello, sigstore, monkeypatch)
    gitlab.page_size = 2  # the statuses come over several pages
    for name, status in statuses:
        gitlab.add_job_status(COMMIT, name, status)
    result = cli(["plan", "--to", "dev", "--json", *policy], cwd=hello)
    gate = next(g for g in json.loads(result.out)["gates"] if g["gate"] == "checks")
    assert gate["verdict"] == verdict and fragment in gate["reason"], gate
    asked = [path for method, path, _ in gitlab.calls if path.endswith("/statuses") and method == "GET"]
    assert len(asked) == (len(statuses) + 1) // 2  # every page was read


def gitlab_approvals(
    cli: Cli, hello: Path, sigstore: LocalSigstore, gitlab: GitLabFake, monkeypatch: pytest.MonkeyPatch
) -> dict[str, Any]:
    in_gitlab(monkeypatch, gitlab)
    monkeypatch.setenv("CI_COMMIT_SHA", COMMIT)
    monkeypatch.setenv("GITLAB_USER_LOGIN", "olivia")  # the promoter
    approvals_config(hello)
    policy = signed_in(cli, hello, sigstore, monkeypatch)
    result = cli(["plan", "--to", "dev", "--json", *policy], cwd=hello)
    return next(g for g in json.loads(result.out)["gates"] if g["gate"] == "approvals")


@pytest.mark.parametrize(
    ("request_approvals", "deployment_approvals", "verdict", "fragment"),
    [
        (["bob", "carol"], None, "passed", "2 approvals (bob, carol) from merge request !5 approvals"),
        (
            ["bob", "alice", "olivia"],
            None,
            "denied",
            "1 of 2 from merge request !5 approvals: bob (not counted: alice, olivia)",
        ),
        (
            ["bob"],
            [("dave", "approved")],
            "passed",
            "2 approvals (bob, dave) from merge request !5 approvals and deployment 1 approvals",
        ),
        (["bob", "carol"], [("dave", "rejected")], "denied", "rejected by dave"),
        (None, [("dave", "approved"), ("erin", "approved")], "passed", "2 approvals (dave, erin) from deployment"),
        (None, [("dave", "approved")], "denied", "1 of 2 from deployment 1 approvals: dave"),
        (None, None, "error", "no merged merge request contains aaaaaaaaaaaa and this job opened no deployment"),
    ],
)
def test_approvals_gate_on_gitlab(
    cli: Cli,
    hello: Path,
    sigstore: LocalSigstore,
    gitlab: GitLabFake,
    monkeypatch: pytest.MonkeyPatch,
    request_approvals: list[str] | None,
    deployment_approvals: list[tuple[str, str]] | None,
    verdict: str,
    fragment: str,
) -> None:
    gitlab.page_size = 1
    gitlab.add_merge_request(COMMIT, 4, "alice", ["zed", "yann"], state="closed")  # not merged: not counted
    if request_approvals is not None:
        gitlab.add_merge_request(COMMIT, 5, "alice", request_approvals)
    if deployment_approvals is not None:
        gitlab.add_job_deployment("dev", COMMIT, 99, deployment_approvals)  # this job's (CI_JOB_ID 99)
    gitlab.add_job_deployment("dev", COMMIT, 98, [("mallory", "approved")])  # another job's: never counted
    gate = gitlab_approvals(cli, hello, sigstore, gitlab, monkeypatch)
    assert gate["verdict"] == verdict and fragment in gate["reason"], gate


def test_gitlab_promotion_adopts_the_jobs_own_deployment(
    cli: Cli, hello: Path, sigstore: LocalSigstore, gitlab: GitLabFake, monkeypatch: pytest.MonkeyPatch
) -> None:
    in_gitlab(monkeypatch, gitlab)
    policy = signed_in(cli, hello, sigstore, monkeypatch)
    number = gitlab.add_job_deployment("dev", "b" * 40, 99, [])
    result = cli(["promote", "--to", "dev", *policy, "--", "true"], cwd=hello)
    assert result.code == 0, result.err + result.out
    assert list(gitlab.deployments) == [number] and gitlab.updates == []  # no second deployment; GitLab ends it
    assert [(s["state"], s["name"]) for s in gitlab.commit_statuses] == [("success", "pipeline-kit/dev")]


# --- history across pipelines: previous-stage reads the forge's deployments ----------------


def previous_stage(cli: Cli, project: Path, *policy: str) -> dict[str, Any]:
    result = cli(["plan", "--to", "staging", "--json", *policy], cwd=project)
    return next(g for g in json.loads(result.out)["gates"] if g["gate"] == "previous-stage")


def hours_ago(hours: float) -> str:
    from datetime import datetime, timedelta, timezone

    return (datetime.now(timezone.utc) - timedelta(hours=hours)).strftime("%Y-%m-%dT%H:%M:%SZ")


def passed_dev_in_an_earlier_job(
    cli: Cli, hello: Path, sigstore: LocalSigstore, monkeypatch: pytest.MonkeyPatch
) -> tuple[str, list[str]]:
    """Promoted to dev (its VSA uploaded to the forge), then everything local gone, as in a fresh
    job of a later pipeline: only the forge's attestations still hold the proof."""
    config = hello / "pipeline-kit.yml"
    config.write_text(config.read_text().replace("    soak: 30m\n", ""))
    policy = signed_in(cli, hello, sigstore, monkeypatch)
    assert cli(["promote", "--to", "dev", *policy], cwd=hello).code == 0
    evidence = hello / ".pipeline-kit"
    release = json.loads((evidence / "release.json").read_text())["id"]
    for path in [evidence / "promotions", evidence / "releases" / release / "promotions"]:
        shutil.rmtree(path)
    shutil.rmtree(hello / ".pipeline-kit-ledger")
    return release, policy


def test_previous_stage_finds_the_signed_vsa_on_the_forge(
    cli: Cli, hello: Path, sigstore: LocalSigstore, github: GitHubFake, monkeypatch: pytest.MonkeyPatch
) -> None:
    in_github(monkeypatch, github)
    _, policy = passed_dev_in_an_earlier_job(cli, hello, sigstore, monkeypatch)
    before = len(github.calls)
    gate = previous_stage(cli, hello, *policy)
    assert gate["verdict"] == "passed" and gate["evidence"]["vsa"] == "github acme/hello attestations", gate
    listings = [path for method, path, _ in github.calls[before:] if method == "GET" and "/attestations/" in path]
    assert len(listings) == 1  # one listing serves the previous-stage and rollback-hold searches
    config = hello / "pipeline-kit.yml"
    config.write_text(config.read_text().replace("    after: dev\n", "    after: dev\n    soak: 30m\n"))
    github.add_deployment("dev", "another-release", "c" * 40, "success", hours_ago(-0.01))
    gate = previous_stage(cli, hello, *policy)
    assert gate["verdict"] == "denied" and gate["reason"].startswith("left dev after 0m"), gate


def test_previous_stage_sees_a_failed_deployment(
    cli: Cli, hello: Path, sigstore: LocalSigstore, github: GitHubFake, monkeypatch: pytest.MonkeyPatch
) -> None:
    in_github(monkeypatch, github)
    release, policy = passed_dev_in_an_earlier_job(cli, hello, sigstore, monkeypatch)
    github.add_deployment("dev", release, COMMIT, "failure", hours_ago(-0.01))
    assert previous_stage(cli, hello, *policy)["reason"] == f"the deploy of {release[:12]} to dev failed"


def test_unreadable_deployment_history_is_an_error(
    cli: Cli, hello: Path, sigstore: LocalSigstore, github: GitHubFake, monkeypatch: pytest.MonkeyPatch
) -> None:
    in_github(monkeypatch, github)
    _, policy = passed_dev_in_an_earlier_job(cli, hello, sigstore, monkeypatch)
    github.fail_once("/deployments$", 502, {"message": "Bad gateway"})
    gate = previous_stage(cli, hello, *policy)
    assert gate["verdict"] == "error" and "HTTP 502" in gate["reason"]


def test_forge_deployments_never_prove_a_pass(
    cli: Cli, hello: Path, sigstore: LocalSigstore, gitlab: GitLabFake, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The attack: any deployment of the same commit (a rebuild, another artifact) used to count as
    # this release's arrival; and a deployment record is something a job's token can create.
    in_gitlab(monkeypatch, gitlab)
    monkeypatch.setenv("CI_COMMIT_SHA", COMMIT)
    policy = signed_in(cli, hello, sigstore, monkeypatch)
    gitlab.add_deployment("dev", COMMIT, "success", hours_ago(2))
    gate = previous_stage(cli, hello, *policy)
    assert gate["verdict"] == "denied" and gate["reason"].startswith("dev never passed this release"), gate
