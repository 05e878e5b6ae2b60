"""Hostile input, secrets and scale: each case an adversarial run found, shown fixed."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import Cli

SECRETS = {
    "SIGSTORE_IDENTITY_TOKEN": "eyJ.signing.token",
    "ACTIONS_ID_TOKEN_REQUEST_TOKEN": "mint-me-a-token",
    "ACTIONS_ID_TOKEN_REQUEST_URL": "https://token.example/mint",
    "GITHUB_TOKEN": "ghs_forge_token",
    "CI_JOB_TOKEN": "glcbt-job-token",
    "CI_REPOSITORY_URL": "https://gitlab-ci-token:glcbt-job-token@gitlab.example/acme/app.git",
    "PIPELINE_KIT_GITLAB_TOKEN": "glpat-forge",
    "MY_APP_SECRET": "user-secret",
}


def dump(name: str) -> str:
    return f"env > {name}.env"


def seen(path: Path) -> dict[str, str]:
    return dict(line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)


def test_children_get_a_scrubbed_environment(
    cli: Cli, signed: Path, policy: list[str], token: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The attack: a build script, a command gate or a deploy script reads (or mints, with the
    # ACTIONS_ID_TOKEN_REQUEST_* pair) the signing identity and the forge tokens.
    for name, value in SECRETS.items():
        if name != "SIGSTORE_IDENTITY_TOKEN":  # the token fixture set the real one
            monkeypatch.setenv(name, value)
    monkeypatch.setenv("MY_BUILD_TOKEN", "npm-registry")  # named by pass-env: the build may see it
    config = signed / "pipeline-kit.yml"
    text = config.read_text().replace(
        'build: "python build.py"', f'build: "{dump("build")} && python build.py"\n  pass-env: [MY_BUILD_TOKEN]'
    )
    text = text.replace(
        "  dev:\n    gates: [signature, provenance, sbom]",
        f"  dev:\n    gates: [{{command: {{run: '{dump('gate')}'}}}}]\n    deploy: '{dump('deploy')}'",
    )
    config.write_text(text)
    assert cli(["build"], cwd=signed).code == 0
    for step in ("sbom", "provenance"):
        assert cli([step], cwd=signed).code == 0
    from tests.conftest import sign

    sigstore_token = __import__("os").environ["SIGSTORE_IDENTITY_TOKEN"]
    result = cli(["sign", *policy[:2]], cwd=signed)
    assert result.code == 0, result.err
    result = cli(["promote", "--to", "dev", *policy], cwd=signed)
    assert result.code == 0, result.err
    for step in ("build", "gate", "deploy"):
        env = seen(signed / f"{step}.env")
        assert "PATH" in env and "HOME" in env, step
        leaked = {name for name in SECRETS if name in env} | (
            {"token"} if sigstore_token in (signed / f"{step}.env").read_text() else set()
        )
        assert not leaked, (step, leaked)
        assert ("MY_BUILD_TOKEN" in env) == (step == "build"), step
    assert seen(signed / "deploy.env")["PIPELINE_KIT_ENVIRONMENT"] == "dev"
    del sign
