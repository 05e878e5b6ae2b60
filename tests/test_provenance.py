"""Provenance statements from each CI context: valid in-toto v1 / SLSA v1, subjects = release."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from google.protobuf import json_format
from in_toto_attestation.predicates.provenance.v1 import provenance_pb2
from in_toto_attestation.v1 import statement_pb2
from in_toto_attestation.v1.statement import Statement as InTotoStatement

from pipeline_kit.ci import detect
from pipeline_kit.ci.github import split_workflow_ref
from pipeline_kit.ci.gitlab import config_ref_uri
from tests.conftest import Cli, git, init_repo

GITHUB_ENV = {
    "GITHUB_ACTIONS": "true",
    "GITHUB_SERVER_URL": "https://github.com",
    "GITHUB_REPOSITORY": "acme/hello",
    "GITHUB_REPOSITORY_ID": "42",
    "GITHUB_REPOSITORY_OWNER_ID": "7",
    "GITHUB_SHA": "a" * 40,
    "GITHUB_REF": "refs/tags/v1.0.0",
    "GITHUB_WORKFLOW_REF": "acme/hello/.github/workflows/release.yml@refs/tags/v1.0.0",
    "GITHUB_RUN_ID": "123",
    "GITHUB_RUN_ATTEMPT": "2",
    "GITHUB_EVENT_NAME": "push",
    "GITHUB_ACTOR": "octocat",
    "RUNNER_ENVIRONMENT": "github-hosted",
    "ACTIONS_ID_TOKEN_REQUEST_URL": "https://token.example",
}
GITLAB_ENV = {
    "GITLAB_CI": "true",
    "CI_SERVER_URL": "https://gitlab.com",
    "CI_SERVER_HOST": "gitlab.com",
    "CI_PROJECT_URL": "https://gitlab.com/acme/hello",
    "CI_PROJECT_PATH": "acme/hello",
    "CI_COMMIT_SHA": "b" * 40,
    "CI_COMMIT_BRANCH": "main",
    "CI_JOB_URL": "https://gitlab.com/acme/hello/-/jobs/99",
    "CI_JOB_NAME": "release",
    "CI_JOB_ID": "99",
    "CI_JOB_STARTED_AT": "2026-11-22T10:00:00Z",
    "CI_RUNNER_VERSION": "17.0.0",
    "CI_PIPELINE_SOURCE": "push",
}


def validate(path: Path) -> dict[str, Any]:
    document = json.loads(path.read_text())
    # The official in-toto protos, parsed strictly: an unknown or mistyped field fails here.
    statement = json_format.ParseDict(document, statement_pb2.Statement(), ignore_unknown_fields=False)
    InTotoStatement.copy_from_pb(statement).validate()
    json_format.ParseDict(document["predicate"], provenance_pb2.Provenance(), ignore_unknown_fields=False)
    assert document["_type"] == "https://in-toto.io/Statement/v1"
    assert document["predicateType"] == "https://slsa.dev/provenance/v1"
    predicate = document["predicate"]
    assert predicate["buildDefinition"]["buildType"]
    assert isinstance(predicate["buildDefinition"]["externalParameters"], dict)
    assert predicate["runDetails"]["builder"]["id"]
    assert isinstance(document, dict)
    return document


def subjects_of(root: Path) -> list[tuple[str, str]]:
    release = json.loads((root / ".pipeline-kit" / "release.json").read_text())
    return [(s["name"], s["digest"]["sha256"]) for s in release["subjects"]]


def run_all(cli: Cli, root: Path) -> dict[str, Any]:
    for command in (["build"], ["sbom"], ["provenance"]):
        result = cli(command, cwd=root)
        assert result.code == 0, result.err
    document = validate(root / ".pipeline-kit" / "provenance.intoto.json")
    assert [(s["name"], s["digest"]["sha256"]) for s in document["subject"]] == subjects_of(root)
    return document


def test_local_provenance_is_marked_local(cli: Cli, hello: Path) -> None:
    commit = init_repo(hello, remote="git@github.com:acme/hello.git")
    document = run_all(cli, hello)
    predicate = document["predicate"]
    assert predicate["runDetails"]["builder"]["id"].endswith("#local")
    assert predicate["buildDefinition"]["internalParameters"]["local"]["unsigned"] is True
    source = predicate["buildDefinition"]["resolvedDependencies"][0]
    assert source == {
        "uri": "git+https://github.com/acme/hello@refs/heads/main",
        "digest": {"gitCommit": commit},
        # the commit's time, as git tells it: where a change's lead time starts
        "annotations": {"committedAt": git(hello, "show", "-s", "--format=%cI", commit)},
    }
    lock = predicate["buildDefinition"]["resolvedDependencies"][1]
    assert lock["name"] == "uv.lock" and len(lock["digest"]["sha256"]) == 64
    byproducts = {b["name"] for b in predicate["runDetails"]["byproducts"]}
    assert byproducts == {"SHA256SUMS", "sbom.cdx.json"}


def test_github_provenance(cli: Cli, hello: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in GITHUB_ENV.items():
        monkeypatch.setenv(key, value)
    predicate = run_all(cli, hello)["predicate"]
    definition, run = predicate["buildDefinition"], predicate["runDetails"]
    assert definition["externalParameters"]["workflow"] == {
        "ref": "refs/tags/v1.0.0",
        "repository": "https://github.com/acme/hello",
        "path": ".github/workflows/release.yml",
    }
    assert definition["internalParameters"]["github"]["runner_environment"] == "github-hosted"
    assert definition["resolvedDependencies"][0] == {
        "uri": "git+https://github.com/acme/hello@refs/tags/v1.0.0",
        "digest": {"gitCommit": "a" * 40},
    }
    assert run["builder"]["id"] == "https://github.com/acme/hello/.github/workflows/release.yml@refs/tags/v1.0.0"
    assert run["metadata"]["invocationId"] == "https://github.com/acme/hello/actions/runs/123/attempts/2"


def test_gitlab_provenance(cli: Cli, hello: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in GITLAB_ENV.items():
        monkeypatch.setenv(key, value)
    predicate = run_all(cli, hello)["predicate"]
    run = predicate["runDetails"]
    assert run["builder"]["id"] == "https://gitlab.com/acme/hello//.gitlab-ci.yml@refs/heads/main"
    assert run["builder"]["version"]["gitlab-runner"] == "17.0.0"
    assert run["metadata"]["invocationId"] == "https://gitlab.com/acme/hello/-/jobs/99"
    assert run["metadata"]["startedOn"] == "2026-11-22T10:00:00Z"
    assert predicate["buildDefinition"]["externalParameters"]["entryPoint"] == "release"


def test_workflow_ref_with_at_sign_in_ref() -> None:
    assert split_workflow_ref("o/r/.github/workflows/x.yml@refs/heads/feat@2", "o/r") == (
        ".github/workflows/x.yml",
        "refs/heads/feat@2",
    )


def test_gitlab_signer_identity_for_tags() -> None:
    env = {**GITLAB_ENV, "CI_COMMIT_TAG": "v1.2.0", "CI_CONFIG_PATH": "ci/release.yml"}
    assert config_ref_uri(env) == "gitlab.com/acme/hello//ci/release.yml@refs/tags/v1.2.0"
    ctx = detect(env, Path("."))
    assert ctx.signer is not None
    assert ctx.signer.san == "https://gitlab.com/acme/hello//ci/release.yml@refs/tags/v1.2.0"
    assert ctx.signer.issuer == "https://gitlab.com"


def test_incomplete_ci_environment_is_a_clear_error(cli: Cli, hello: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    result = cli(["build"], cwd=hello)
    assert result.code == 2
    assert "GitHub Actions detected but GITHUB_SERVER_URL, GITHUB_REPOSITORY, GITHUB_SHA is not set" in result.err


def test_provenance_needs_a_release(cli: Cli, tmp_path: Path) -> None:
    result = cli(["provenance"], cwd=tmp_path)
    assert result.code == 2
    assert "no release here" in result.err and "pipeline-kit build" in result.err


def test_corrupt_release_json_is_verification_failure(cli: Cli, hello: Path) -> None:
    assert cli(["build"], cwd=hello).code == 0
    path = hello / ".pipeline-kit" / "release.json"
    document = json.loads(path.read_text())
    document["subjects"][0]["digest"]["sha256"] = "nothex"
    path.write_text(json.dumps(document))
    result = cli(["provenance"], cwd=hello)
    assert result.code == 1
    assert "release.json: subjects[0].digest" in result.err
    assert not (hello / ".pipeline-kit" / "provenance.intoto.json").exists()
