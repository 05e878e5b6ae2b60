"""The GitLab CI templates, run for real by gitlab-ci-local (shell executor), previewed and linted."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import EXAMPLE, LEDGER, ROOT, SIGNER, git, kit_checkout, offline_installs
from tests.sigstore_instance import LocalSigstore

TEMPLATES = ROOT / "gitlab-templates"
BIN = Path(sys.executable).parent


def gitlab_ci_local() -> str:
    local = ROOT / ".ci" / "tools" / "node_modules" / ".bin" / "gitlab-ci-local"
    found = str(local) if local.exists() else shutil.which("gitlab-ci-local")
    assert found, "gitlab-ci-local is not installed (.ci/run installs it into .ci/tools)"
    return found


def project(tmp_path: Path, sigstore: LocalSigstore, extra_inputs: str = "") -> Path:
    repo = tmp_path / "repo"
    shutil.copytree(EXAMPLE, repo, ignore=shutil.ignore_patterns("dist", ".pipeline-kit", "__pycache__"))
    shutil.copytree(TEMPLATES, repo / "gitlab-templates")
    (repo / ".gitlab-ci.yml").write_text(
        "include:\n"
        "  - local: gitlab-templates/full-pipeline.yml\n"
        "    inputs:\n"
        f"      python: {sys.executable}\n"
        f"      trust-config: {sigstore.trust_config_path}\n"
        f"      cert-identity: {SIGNER}\n"
        f"      cert-oidc-issuer: {sigstore.issuer}\n"
        "      repository: https://gitlab.example.com/pipeline-kit/hello-service\n"
        "      staging-when: manual\n"
        '      deploy-dev: echo "deploying $PIPELINE_KIT_RELEASE_ID" > deployed.txt\n' + extra_inputs
    )
    with (repo / ".gitignore").open("a") as handle:
        handle.write(".gitlab-ci-local/\n")
    git(repo, "init", "-q", "-b", "main")
    git(repo, "remote", "add", "origin", "https://gitlab.example.com/pipeline-kit/hello-service.git")
    git(repo, "add", "-A")
    git(repo, "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-q", "-m", "init")
    return repo


def run(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "CI_", "GITLAB_", "PIPELINE_KIT_"))}
    env["PATH"] = f"{BIN}:{env['PATH']}"
    return subprocess.run(
        [gitlab_ci_local(), *args], cwd=repo, env=env, capture_output=True, text=True, timeout=300, check=False
    )


def test_full_pipeline_builds_signs_and_promotes_to_dev(tmp_path: Path, sigstore: LocalSigstore) -> None:
    # before-script: the project's own setup (build tools) runs in the build job, before the kit
    repo = project(tmp_path, sigstore, '      before-script: echo "setup in $CI_JOB_NAME" > before.txt\n')
    # gitlab-ci-local marks its runs GITLAB_CI=false; ask for GitLab's behaviour (dotenv reports)
    result = run(
        repo, "--variable", f"SIGSTORE_IDENTITY_TOKEN={sigstore.mint_token(SIGNER)}", "--variable", "GITLAB_CI=true"
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    for job in ("pipeline-kit-build", "pipeline-kit-sign", "pipeline-kit-promote-dev"):
        assert f"PASS  {job}" in result.stdout
    assert "pipeline-kit-promote-staging" not in result.stdout.split("PASS")[-1]  # manual: not run
    dotenv = dict(line.split("=", 1) for line in (repo / "pipeline-kit.env").read_text().splitlines())
    assert dotenv["PIPELINE_KIT_VERDICT"] == "passed" and dotenv["PIPELINE_KIT_ENVIRONMENT"] == "dev"
    release = json.loads((repo / ".pipeline-kit" / "release.json").read_text())
    assert dotenv["PIPELINE_KIT_RELEASE_ID"] == release["id"]
    assert (repo / "deployed.txt").read_text().strip() == f"deploying {release['id']}"
    ledger = [json.loads(line) for line in (repo / LEDGER).read_text().splitlines()]
    assert [(e["kind"], e["environment"]) for e in ledger] == [("promoted", "dev"), ("deployed", "dev")]
    assert (repo / "pipeline-kit-gates.xml").is_file()
    assert (repo / "before.txt").read_text().strip() == "setup in pipeline-kit-build"


def pinned_build(tmp_path: Path, sigstore: LocalSigstore) -> tuple[Path, Path]:
    """The build template alone, installing the kit for real: its dependencies from the
    hash-pinned lock (offline, from the wheelhouse .ci/test-tools fetches), then the kit."""
    kit = kit_checkout(tmp_path / "kit")
    repo = project(tmp_path, sigstore)
    lock = repo / "ci" / "pipeline-kit.lock"  # the user's vendored copy of the kit's lock
    lock.parent.mkdir()
    shutil.copy(kit / "actions" / "setup" / "requirements.lock", lock)
    (repo / ".gitlab-ci.yml").write_text(
        "include:\n"
        "  - local: gitlab-templates/build.yml\n"
        "    inputs:\n"
        f"      install: {kit}\n"
        "      requirements: ci/pipeline-kit.lock\n"
    )
    git(repo, "add", "-A")
    git(repo, "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-q", "-m", "pinned")
    return repo, lock


def run_offline(repo: Path) -> subprocess.CompletedProcess[str]:
    variables = [f"{key}={value}" for key, value in offline_installs(repo.parent).items()]
    return run(repo, *(arg for variable in variables for arg in ("--variable", variable)))


def test_build_template_installs_the_kit_from_the_pinned_lock(tmp_path: Path, sigstore: LocalSigstore) -> None:
    repo, _ = pinned_build(tmp_path, sigstore)
    result = run_offline(repo)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "PASS  pipeline-kit-build" in result.stdout
    assert (repo / ".pipeline-kit" / "provenance.intoto.json").is_file()


def test_build_template_refuses_a_dependency_whose_hash_is_not_pinned(tmp_path: Path, sigstore: LocalSigstore) -> None:
    repo, lock = pinned_build(tmp_path, sigstore)
    text = lock.read_text()
    start = text.index("click==")
    end = text.index("# via", start)
    lock.write_text(text[:start] + re.sub("sha256:[0-9a-f]{64}", "sha256:" + "0" * 64, text[start:end]) + text[end:])
    result = run_offline(repo)
    assert result.returncode != 0
    assert "FAIL  pipeline-kit-build" in result.stdout, result.stdout[-3000:]
    assert f"Expected sha256 {'0' * 64}" in result.stdout  # pip refused the file the lock does not pin
    assert not (repo / ".pipeline-kit" / "release.json").exists()


def test_preview_wires_tokens_environments_and_reports(tmp_path: Path, sigstore: LocalSigstore) -> None:
    repo = project(tmp_path, sigstore)
    result = run(repo, "--preview")
    assert result.returncode == 0, result.stderr
    jobs = yaml.safe_load(result.stdout)
    assert {
        "pipeline-kit-build",
        "pipeline-kit-sign",
        "pipeline-kit-promote-dev",
        "pipeline-kit-promote-staging",
        "pipeline-kit-promote-prod",
    } <= set(jobs)
    assert jobs["pipeline-kit-build"]["artifacts"]["reports"]["cyclonedx"] == "./.pipeline-kit/sbom.cdx.json"
    for name in ("pipeline-kit-sign", "pipeline-kit-promote-dev", "pipeline-kit-promote-prod"):
        assert jobs[name]["id_tokens"] == {"SIGSTORE_ID_TOKEN": {"aud": "sigstore"}}
    prod = jobs["pipeline-kit-promote-prod"]
    assert prod["when"] == "manual" and prod["environment"]["name"] == "prod" and prod["resource_group"] == "prod"
    assert prod["artifacts"]["reports"]["junit"] == "pipeline-kit-gates.xml"
    assert jobs["pipeline-kit-promote-dev"]["when"] == "on_success"
    assert [n["job"] for n in prod["needs"]] == ["pipeline-kit-promote-staging"]
    for job in jobs.values():
        if isinstance(job, dict) and "script" in job:
            assert "$[[" not in json.dumps(job)  # every input was interpolated
            assert "inputs." not in "\n".join(job["script"])  # scripts read variables, never inputs


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        ("      staging-when: sometimes\n", "staging-when"),
        ("      no-such-input: x\n", "no-such-input"),
    ],
)
def test_bad_inputs_are_rejected(tmp_path: Path, sigstore: LocalSigstore, inputs: str, message: str) -> None:
    repo = project(tmp_path, sigstore)
    text = (repo / ".gitlab-ci.yml").read_text().replace("      staging-when: manual\n", "") + inputs
    (repo / ".gitlab-ci.yml").write_text(text)
    result = run(repo, "--preview")
    if message == "no-such-input":
        # gitlab-ci-local does not reject unknown input names (GitLab does): check it is at least unused
        assert "no-such-input" not in result.stdout
        return
    assert result.returncode != 0
    assert message in result.stdout + result.stderr


def test_promote_template_requires_an_environment(tmp_path: Path, sigstore: LocalSigstore) -> None:
    repo = project(tmp_path, sigstore)
    (repo / ".gitlab-ci.yml").write_text("include:\n  - local: gitlab-templates/promote.yml\n")
    result = run(repo, "--preview")
    assert result.returncode != 0
    assert "environment" in result.stdout + result.stderr


def check_schema(path: Path) -> None:
    result = subprocess.run(
        [str(BIN / "check-jsonschema"), "--builtin-schema", "vendor.gitlab-ci", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, f"{path.name}: {result.stdout}{result.stderr}"


@pytest.mark.parametrize("template", sorted(p.name for p in TEMPLATES.glob("*.yml")))
def test_templates_pass_the_gitlab_ci_schema(tmp_path: Path, sigstore: LocalSigstore, template: str) -> None:
    """The spec header as written, and the jobs as GitLab sees them once inputs are interpolated
    (the schema cannot judge `$[[ inputs.x ]]` placeholders in enumerated fields)."""
    header, _ = list(yaml.safe_load_all((TEMPLATES / template).read_text()))
    assert set(header) == {"spec"}
    for name, spec in header["spec"]["inputs"].items():
        assert spec.get("description") and spec.get("type"), f"{template}: input {name} needs description and type"
    (tmp_path / "header.yml").write_text(yaml.safe_dump(header))
    check_schema(tmp_path / "header.yml")
    repo = project(tmp_path, sigstore)
    needs_environment = template in ("plan.yml", "promote.yml", "rollback.yml")
    include = f"include:\n  - local: gitlab-templates/{template}\n"
    if needs_environment:
        include += "    inputs:\n      environment: dev\n"
    needed = {"build.yml": None, "full-pipeline.yml": None, "sign.yml": "pipeline-kit-build"}
    stub = needed.get(template, "pipeline-kit-sign")
    if stub:  # the job this template's job needs
        include += f"{stub}:\n  stage: build\n  script: [echo]\n"
    (repo / ".gitlab-ci.yml").write_text(include)
    result = run(repo, "--preview")
    assert result.returncode == 0, result.stdout + result.stderr
    (tmp_path / "preview.yml").write_text(result.stdout)
    check_schema(tmp_path / "preview.yml")
