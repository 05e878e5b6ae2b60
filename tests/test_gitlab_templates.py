"""The GitLab CI templates, run for real by gitlab-ci-local (shell executor), previewed and linted."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from pipeline_kit import __version__
from tests.conftest import EXAMPLE, LEDGER, ROOT, SIGNER, git, kit_checkout, offline_installs
from tests.sigstore_instance import LocalSigstore

TEMPLATES = ROOT / "gitlab-templates"
BIN = Path(sys.executable).parent


def gitlab_ci_local() -> str:
    local = ROOT / ".ci" / "tools" / "node_modules" / ".bin" / "gitlab-ci-local"
    found = str(local) if local.exists() else shutil.which("gitlab-ci-local")
    assert found, "gitlab-ci-local is not installed (.ci/run installs it into .ci/tools)"
    return found


def project(tmp_path: Path, sigstore: LocalSigstore, extra_inputs: str = "", kit: str = "") -> Path:
    """The example project including the full pipeline; the kit from `kit` (template inputs), else
    from this test run's interpreter."""
    repo = tmp_path / "repo"
    shutil.copytree(EXAMPLE, repo, ignore=shutil.ignore_patterns("dist", ".pipeline-kit", "__pycache__"))
    shutil.copytree(TEMPLATES, repo / "gitlab-templates")
    (repo / ".gitlab-ci.yml").write_text(
        "include:\n"
        "  - local: gitlab-templates/full-pipeline.yml\n"
        "    inputs:\n"
        + (kit or f"      python: {sys.executable}\n")
        + f"      trust-config: {sigstore.trust_config_path}\n"
        f"      cert-identity: {SIGNER}\n"
        f"      cert-oidc-issuer: {sigstore.issuer}\n"
        "      repository: https://gitlab.example.com/pipeline-kit/hello-service\n"
        "      staging-when: manual\n"
        '      deploy-dev: echo "deploying $PIPELINE_KIT_RELEASE_ID" > deployed.txt\n' + extra_inputs
    )
    (repo / "ci").mkdir()  # the user's copy of the kit's lock
    shutil.copy(ROOT / "actions" / "setup" / "requirements.lock", repo / "ci" / "pipeline-kit.lock")
    with (repo / ".gitignore").open("a") as handle:
        handle.write(".gitlab-ci-local/\n")
    git(repo, "init", "-q", "-b", "main")
    git(repo, "remote", "add", "origin", "https://gitlab.example.com/pipeline-kit/hello-service.git")
    git(repo, "add", "-A")
    git(repo, "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-q", "-m", "init")
    return repo


KIT_RELEASE = ("pipeline-kit/pipeline-kit", ".github/workflows/release.yml", f"refs/tags/v{__version__}")


def released_kit(tmp_path: Path, sigstore: LocalSigstore, signer: tuple[str, str, str] = KIT_RELEASE) -> Path:
    """The kit's wheel and its Sigstore bundle as the kit's release workflow publishes them, built
    offline and signed on the local instance by `signer` (repository, workflow, ref)."""
    dist = tmp_path / "kit-release"
    build = subprocess.run(
        [str(BIN / "uv"), "build", "--wheel", "--out-dir", str(dist), str(kit_checkout(tmp_path / "kit"))],
        env={**os.environ, **offline_installs(tmp_path)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert build.returncode == 0, build.stderr
    (wheel,) = dist.glob("*.whl")
    token = sigstore.mint_workflow_token("github", *signer)
    signed = subprocess.run(
        [
            *(str(BIN / "python"), "-m", "sigstore", "--trust-config", str(sigstore.trust_config_path), "sign"),
            *("--identity-token", token, "--bundle", f"{wheel}.sigstore.json", str(wheel)),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert signed.returncode == 0, signed.stderr
    return wheel


def user_install(wheel: Path, digest: str = "") -> str:
    """Template inputs installing the kit as the README says: the released wheel pinned by hash,
    its dependencies from the user's copy of the kit's lock."""
    digest = digest or hashlib.sha256(wheel.read_bytes()).hexdigest()
    return f"      install: {wheel}#sha256={digest}\n      requirements: ci/pipeline-kit.lock\n"


def run(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "CI_", "GITLAB_", "PIPELINE_KIT_"))}
    env["PATH"] = f"{BIN}:{env['PATH']}"
    return subprocess.run(
        [gitlab_ci_local(), *args], cwd=repo, env=env, capture_output=True, text=True, timeout=300, check=False
    )


def test_full_pipeline_installs_the_released_kit_then_builds_signs_and_promotes_to_dev(
    tmp_path: Path, sigstore: LocalSigstore
) -> None:
    # every job installs the kit as a user's would: the release's wheel pinned by hash, its
    # signature verified against the kit's release workflow at the templates' version, the lock
    wheel = released_kit(tmp_path, sigstore)
    # before-script: the project's own setup (build tools) runs in the build job, before the kit
    setup = '      before-script: echo "setup in $CI_JOB_NAME" > before.txt\n'
    repo = project(tmp_path, sigstore, setup, kit=user_install(wheel))
    # gitlab-ci-local marks its runs GITLAB_CI=false; ask for GitLab's behaviour (dotenv reports)
    result = run_offline(
        repo,
        SIGSTORE_IDENTITY_TOKEN=sigstore.mint_token(SIGNER),
        GITLAB_CI="true",
        PIPELINE_KIT_INSTALL_OIDC_ISSUER=sigstore.issuer,
        PIPELINE_KIT_INSTALL_TRUST_CONFIG=str(sigstore.trust_config_path),
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
    installed = (repo / ".pipeline-kit-venv" / "bin" / "pipeline-kit").read_text()
    assert ".pipeline-kit-venv" in installed.splitlines()[0]  # the job's venv, not this test's kit


def pinned_build(tmp_path: Path, sigstore: LocalSigstore) -> tuple[Path, Path]:
    """The build template alone, installing the kit from a directory, its dependencies from the
    user's copy of the lock (offline, from the wheelhouse .ci/test-tools fetches)."""
    kit = kit_checkout(tmp_path / "kit")
    repo = build_only(tmp_path, sigstore, f"      install: {kit}\n      requirements: ci/pipeline-kit.lock\n")
    return repo, repo / "ci" / "pipeline-kit.lock"


def run_offline(repo: Path, **variables: str) -> subprocess.CompletedProcess[str]:
    pairs = {**offline_installs(repo.parent), **variables}
    return run(repo, *(arg for key, value in pairs.items() for arg in ("--variable", f"{key}={value}")))


def build_only(tmp_path: Path, sigstore: LocalSigstore, install: str) -> Path:
    """The project including the build template alone, with these install inputs."""
    repo = project(tmp_path, sigstore)
    (repo / ".gitlab-ci.yml").write_text("include:\n  - local: gitlab-templates/build.yml\n    inputs:\n" + install)
    git(repo, "add", "-A")
    git(repo, "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-q", "-m", "install")
    return repo


def installing(tmp_path: Path, sigstore: LocalSigstore, install: str) -> tuple[Path, subprocess.CompletedProcess[str]]:
    """The build template alone with these install inputs, run offline, the local instance trusted
    to verify the kit's release (as a fork's CI/CD variables would name its own)."""
    repo = build_only(tmp_path, sigstore, install)
    trust = {"PIPELINE_KIT_INSTALL_OIDC_ISSUER": sigstore.issuer}
    trust["PIPELINE_KIT_INSTALL_TRUST_CONFIG"] = str(sigstore.trust_config_path)
    return repo, run_offline(repo, **trust)


def test_a_kit_wheel_not_signed_by_the_kit_release_is_never_installed(tmp_path: Path, sigstore: LocalSigstore) -> None:
    # a look-alike wheel, pinned by its own hash, signed by another repository's release workflow
    wheel = released_kit(tmp_path, sigstore, ("mallory/pipeline-kit", *KIT_RELEASE[1:]))
    repo, result = installing(tmp_path, sigstore, user_install(wheel))
    assert "FAIL  pipeline-kit-build" in result.stdout, result.stdout[-3000:]
    expected = f"https://github.com/{KIT_RELEASE[0]}/{KIT_RELEASE[1]}@{KIT_RELEASE[2]}"
    assert f"is not signed by {expected}" in result.stdout
    assert not (repo / ".pipeline-kit-venv" / "bin" / "pipeline-kit").exists()
    assert not (repo / ".pipeline-kit" / "release.json").exists()


@pytest.mark.parametrize(
    ("install", "message"),
    [
        ("      install: pipeline-kit==0.1.0\n", "is not pinned to exact code"),
        ("      install: git+https://gitlab.com/pipeline-kit/pipeline-kit.git@v0.1.0\n", "pin the full 40-character"),
        ("      install: https://example.com/kit.whl\n", "has no #sha256=<hash> pin"),
        ("", "set the template input install:"),
    ],
)
def test_an_install_not_pinned_to_exact_code_is_refused(
    tmp_path: Path, sigstore: LocalSigstore, install: str, message: str
) -> None:
    repo, result = installing(tmp_path, sigstore, install + "      requirements: ci/pipeline-kit.lock\n")
    assert "FAIL  pipeline-kit-build" in result.stdout and message in result.stdout, result.stdout[-3000:]
    assert not (repo / ".pipeline-kit-venv").exists()  # refused before anything is installed


def test_a_kit_wheel_with_another_hash_is_refused_before_any_install(tmp_path: Path, sigstore: LocalSigstore) -> None:
    wheel = released_kit(tmp_path, sigstore)
    repo, result = installing(tmp_path, sigstore, user_install(wheel, digest="0" * 64))
    assert "does not have the pinned sha256" in result.stdout, result.stdout[-3000:]
    assert not list((repo / ".pipeline-kit-venv").glob("lib/*/site-packages/sigstore"))


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
    # the built files travel with the evidence to every job after the build: a deploy job has the
    # file its digest names (GitLab hands a job only the artifacts of the jobs it needs)
    for name in ("pipeline-kit-build", "pipeline-kit-sign", "pipeline-kit-promote-dev", "pipeline-kit-promote-staging"):
        assert jobs[name]["artifacts"]["paths"][:2] == ["./.pipeline-kit/", "./dist/"], name
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


class GitLabLoader(yaml.SafeLoader):
    """YAML as GitLab reads it: `!reference [job, key]` is a tag the safe loader does not know."""


def _reference(loader: yaml.SafeLoader, node: yaml.SequenceNode) -> list[Any]:
    return loader.construct_sequence(node)


GitLabLoader.add_constructor("!reference", _reference)
INSTALL = "install.yml"  # the shared install job the templates include: no inputs of its own


@pytest.mark.parametrize("template", sorted(p.name for p in TEMPLATES.glob("*.yml") if p.name != INSTALL))
def test_templates_pass_the_gitlab_ci_schema(tmp_path: Path, sigstore: LocalSigstore, template: str) -> None:
    """The spec header as written, and the jobs as GitLab sees them once inputs are interpolated
    (the schema cannot judge `$[[ inputs.x ]]` placeholders in enumerated fields)."""
    header, _ = list(yaml.load_all((TEMPLATES / template).read_text(), Loader=GitLabLoader))
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


def test_the_install_template_names_the_kit_version_it_ships_with() -> None:
    # the version the installed kit must report, and whose release tag signs the wheel
    (line,) = [x for x in (TEMPLATES / INSTALL).read_text().splitlines() if "PIPELINE_KIT_TEMPLATE_VERSION=" in x]
    assert line.split("=", 1)[1] == __version__
