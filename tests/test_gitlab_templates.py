"""The GitLab CI templates, run for real by gitlab-ci-local (shell executor), previewed and linted."""

from __future__ import annotations

import functools
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
from tests.conftest import EXAMPLE, LEDGER, ROOT, SIGNER, Cli, git, kit_checkout, offline_installs
from tests.mermaid_parser import charts
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
    offline and signed on the local instance by `signer` (repository, workflow, ref), in
    tmp_path / "kit-release". Built and signed once per session and signer (the checkout does not
    change while the tests run); each test gets a copy of its own to change."""
    key = (sigstore.trust_config_path, signer)
    if key not in _RELEASED:
        _RELEASED[key] = _build_and_sign_kit(
            sigstore.trust_config_path.parent / f"kit-{len(_RELEASED)}", sigstore, signer
        )
    dist = shutil.copytree(_RELEASED[key].parent, tmp_path / "kit-release")
    return dist / _RELEASED[key].name


_RELEASED: dict[tuple[Path, tuple[str, str, str]], Path] = {}  # (instance, signer) -> its signed wheel


def _build_and_sign_kit(scratch: Path, sigstore: LocalSigstore, signer: tuple[str, str, str]) -> Path:
    scratch.mkdir()
    dist = scratch / "kit-release"
    build = subprocess.run(
        [str(BIN / "uv"), "build", "--wheel", "--out-dir", str(dist), str(kit_checkout(scratch / "kit"))],
        env={**os.environ, **offline_installs(scratch)},
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


def one_template(project: Path, sigstore: LocalSigstore, template: str, inputs: str) -> dict[str, str]:
    """The files that make `project` a pipeline of one template of this checkout, included with
    the test Sigstore's trust, this interpreter (the kit installed) and `inputs` (indented lines)."""
    pipeline = (
        "include:\n"
        f"  - local: gitlab-templates/{template}\n"
        "    inputs:\n"
        f"      python: {sys.executable}\n"
        f"      trust-config: {sigstore.trust_config_path}\n"
        f"      cert-identity: {SIGNER}\n"
        f"      cert-oidc-issuer: {sigstore.issuer}\n" + inputs
    )
    files = {".gitlab-ci.yml": pipeline, ".gitignore": (project / ".gitignore").read_text() + ".gitlab-ci-local/\n"}
    return files | {f"gitlab-templates/{p.name}": p.read_text() for p in TEMPLATES.glob("*.yml")}


def run(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "CI_", "GITLAB_", "PIPELINE_KIT_"))}
    env["PATH"] = f"{BIN}:{env['PATH']}"
    return subprocess.run(
        [gitlab_ci_local(), *args], cwd=repo, env=env, capture_output=True, text=True, timeout=300, check=False
    )


def test_full_pipeline_installs_the_released_kit_then_builds_signs_and_promotes_to_dev(
    tmp_path: Path, sigstore: LocalSigstore
) -> None:
    # A real adoption: the .gitlab-ci.yml is the include and what the project says about itself;
    # no wheel URL, no hash, no copy of the lock. Every job installs this version's release (from
    # a mirror here: PIPELINE_KIT_RELEASE_URL), its lock checked against the hash the templates
    # carry, its wheel against its signature by the kit's release workflow at the version's tag.
    release = kit_release(tmp_path, sigstore)
    # before-script: the project's own setup (build tools) runs in the build job, before the kit
    setup = '      before-script: echo "setup in $CI_JOB_NAME" > before.txt\n'
    repo = project(tmp_path, sigstore, setup, kit="      # the kit: this version's release, verified\n")
    shutil.rmtree(repo / "ci")  # no copy of the lock
    git(repo, "add", "-A")
    git(repo, "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-q", "-m", "no lock")
    assert "install:" not in (repo / ".gitlab-ci.yml").read_text()
    # gitlab-ci-local marks its runs GITLAB_CI=false; ask for GitLab's behaviour (dotenv reports)
    result = run_offline(
        repo,
        SIGSTORE_IDENTITY_TOKEN=sigstore.mint_token(SIGNER),
        GITLAB_CI="true",
        PIPELINE_KIT_RELEASE_URL=str(release),
        **release_trust(sigstore),
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
    # the promote job's summary (GitLab has none: a Markdown artifact) draws the environments
    kept = repo / ".gitlab-ci-local" / "artifacts" / "pipeline-kit-promote-dev" / "pipeline-kit-summary.md"
    chart = charts(kept.read_text())[-1]
    assert chart["shown"] == [
        (f"dev\nrelease {release['id'][:12]}\ngates passed\narrived: deployed", ["passed"]),
        ("staging\nnot judged by this job", ["waiting"]),
        ("prod\nnot judged by this job", ["waiting"]),
    ]
    assert (repo / "before.txt").read_text().strip() == "setup in pipeline-kit-build"
    installed = (repo / ".pipeline-kit-venv" / "bin" / "pipeline-kit").read_text()
    assert ".pipeline-kit-venv" in installed.splitlines()[0]  # the job's venv, not this test's kit


def pinned_build(tmp_path: Path, sigstore: LocalSigstore) -> tuple[Path, Path]:
    """The build template alone, installing the kit from a directory, its dependencies from the
    user's copy of the lock (offline, from the wheelhouse .ci/test-tools fetches)."""
    kit = kit_checkout(tmp_path / "kit")
    repo = build_only(tmp_path, sigstore, f"      install: {kit}\n      requirements: ci/pipeline-kit.lock\n")
    return repo, repo / "ci" / "pipeline-kit.lock"


def run_offline(repo: Path, *options: str, **variables: str) -> subprocess.CompletedProcess[str]:
    pairs = {**offline_installs(repo.parent), **variables}
    return run(repo, *options, *(arg for key, value in pairs.items() for arg in ("--variable", f"{key}={value}")))


def build_only(tmp_path: Path, sigstore: LocalSigstore, install: str) -> Path:
    """The project including the build template alone, with these install inputs."""
    repo = project(tmp_path, sigstore)
    (repo / ".gitlab-ci.yml").write_text("include:\n  - local: gitlab-templates/build.yml\n    inputs:\n" + install)
    git(repo, "add", "-A")
    git(repo, "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-q", "-m", "install")
    return repo


def release_trust(sigstore: LocalSigstore) -> dict[str, str]:
    """The CI/CD variables by which a fork names its own kit release's signer: here, the test
    instance's."""
    return {
        "PIPELINE_KIT_INSTALL_OIDC_ISSUER": sigstore.issuer,
        "PIPELINE_KIT_INSTALL_TRUST_CONFIG": str(sigstore.trust_config_path),
    }


def installing(
    tmp_path: Path, sigstore: LocalSigstore, install: str, **variables: str
) -> tuple[Path, subprocess.CompletedProcess[str]]:
    """The build template alone with these install inputs, run offline, the local instance trusted
    to verify the kit's release (as a fork's CI/CD variables would name its own)."""
    repo = build_only(tmp_path, sigstore, install)
    trust = release_trust(sigstore)
    return repo, run_offline(repo, **trust, **variables)


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
    ],
)
def test_an_install_not_pinned_to_exact_code_is_refused(
    tmp_path: Path, sigstore: LocalSigstore, install: str, message: str
) -> None:
    repo, result = installing(tmp_path, sigstore, install + "      requirements: ci/pipeline-kit.lock\n")
    assert "FAIL  pipeline-kit-build" in result.stdout and message in result.stdout, result.stdout[-3000:]
    assert not (repo / ".pipeline-kit-venv").exists()  # refused before anything is installed


def kit_release(tmp_path: Path, sigstore: LocalSigstore) -> Path:
    """This version's GitHub release as a mirror keeps it (PIPELINE_KIT_RELEASE_URL): the wheel, its
    bundle (signed by the kit's release workflow at the tag) and the lock."""
    wheel = released_kit(tmp_path, sigstore)
    assert wheel.name == f"pipeline_kit_release-{__version__}-py3-none-any.whl"
    shutil.copy(ROOT / "actions" / "setup" / "requirements.lock", wheel.parent / "requirements.lock")
    return wheel.parent


@pytest.mark.parametrize("python3", ["with pip", "without pip"])
def test_a_hash_pinned_wheel_and_a_copy_of_its_lock_install(
    tmp_path: Path, sigstore: LocalSigstore, python3: str
) -> None:
    # the other way to name the kit: the release's wheel pinned by hash, the user's copy of the lock;
    # installed by python3's own pip into a venv without one, or, where python3 has no pip (a
    # slim image), by the pip the venv brings (ensurepip)
    wheel = released_kit(tmp_path, sigstore)
    variables = {}
    if python3 == "without pip":
        bare = tmp_path / "bare-python"
        subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(bare)], check=True)
        variables["PATH"] = f"{bare / 'bin'}:{BIN}:{os.environ['PATH']}"
    repo, result = installing(tmp_path, sigstore, user_install(wheel), **variables)
    assert "PASS  pipeline-kit-build" in result.stdout, result.stdout[-3000:]
    venv = repo / ".pipeline-kit-venv"
    assert (venv / "bin" / "pipeline-kit").exists()
    assert (venv / "bin" / "pip").exists() == (python3 == "without pip"), sorted(
        p.name for p in (venv / "bin").iterdir()
    )


@pytest.mark.parametrize("tamper", ["lock", "signer"])
def test_a_release_whose_lock_or_signature_is_not_the_templates_is_never_installed(
    tmp_path: Path, sigstore: LocalSigstore, tamper: str
) -> None:
    # Attack: whoever answers for the release's files (a mirror, a compromised download) serves a
    # lock naming other packages, or a wheel signed by another repository's release workflow.
    release = kit_release(tmp_path, sigstore)
    if tamper == "lock":
        with (release / "requirements.lock").open("a") as lock:
            lock.write("evil==1.0 --hash=sha256:" + "0" * 64 + "\n")
    else:
        (wheel,) = release.glob("*.whl")
        (tmp_path / "mallory").mkdir()
        released_kit(tmp_path / "mallory", sigstore, ("mallory/pipeline-kit", *KIT_RELEASE[1:])).replace(wheel)
        (tmp_path / "mallory" / "kit-release" / f"{wheel.name}.sigstore.json").replace(f"{wheel}.sigstore.json")
    repo = build_only(tmp_path, sigstore, "      stage: build\n")
    trust = release_trust(sigstore)
    result = run_offline(repo, PIPELINE_KIT_RELEASE_URL=str(release), **trust)
    assert "FAIL  pipeline-kit-build" in result.stdout, result.stdout[-3000:]
    expected = "is not the lock of these templates" if tamper == "lock" else "is not signed by"
    assert expected in result.stdout, result.stdout[-3000:]
    assert not (repo / ".pipeline-kit-venv" / "bin" / "pipeline-kit").exists()


def test_the_install_template_carries_the_hash_of_the_kits_lock() -> None:
    (line,) = [x for x in (TEMPLATES / INSTALL).read_text().splitlines() if "PIPELINE_KIT_TEMPLATE_LOCK_SHA256=" in x]
    lock = (ROOT / "actions" / "setup" / "requirements.lock").read_bytes()
    assert line.split("=", 1)[1] == hashlib.sha256(lock).hexdigest()


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


@pytest.mark.parametrize(
    ("template", "inputs", "missing"),
    [
        ("promote.yml", "", "environment"),
        ("promote-apart.yml", "      environment: dev\n", "deploy-job"),  # the user's deploy job: no default
    ],
)
def test_promote_templates_require_their_inputs(
    tmp_path: Path, sigstore: LocalSigstore, template: str, inputs: str, missing: str
) -> None:
    repo = project(tmp_path, sigstore)
    (repo / ".gitlab-ci.yml").write_text(
        f"include:\n  - local: gitlab-templates/{template}\n" + (f"    inputs:\n{inputs}" if inputs else "")
    )
    result = run(repo, "--preview")
    assert result.returncode != 0
    assert missing in result.stdout + result.stderr


@functools.cache
def gitlab_ci_schema() -> Any:
    """GitLab's CI schema as check-jsonschema vendors it, compiled once per worker (loading it is
    2 s; check-jsonschema run per file paid that every time), with its format checks."""
    import jsonschema
    from check_jsonschema.builtin_schemas import get_builtin_schema

    schema = get_builtin_schema("vendor.gitlab-ci")
    validator = jsonschema.validators.validator_for(schema)
    return validator(schema, format_checker=validator.FORMAT_CHECKER)


def check_schema(path: Path) -> None:
    document = yaml.load(path.read_text(), Loader=GitLabLoader)
    errors = sorted(gitlab_ci_schema().iter_errors(document), key=lambda e: list(e.absolute_path))
    assert not errors, f"{path.name}: " + "; ".join(f"{list(e.absolute_path)}: {e.message}" for e in errors[:5])


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
    needs_environment = template in (
        "plan.yml",
        "promote.yml",
        "promote-apart.yml",
        "rollback.yml",
        "rollback-apart.yml",
        "drift.yml",
    )
    include = f"include:\n  - local: gitlab-templates/{template}\n"
    if needs_environment:
        include += "    inputs:\n      environment: dev\n"
    if template == "promote-apart.yml":  # and the user's deploy job, between its jobs
        include += "      deploy-job: deploy-dev\n"
        include += "deploy-dev:\n  stage: deploy\n  needs: [pipeline-kit-decide-dev]\n  script: [echo]\n"
    needed = {"build.yml": None, "full-pipeline.yml": None, "sign.yml": "pipeline-kit-build"}
    stub = needed.get(template, "pipeline-kit-sign")
    if stub:  # the job this template's job needs
        include += f"{stub}:\n  stage: build\n  script: [echo]\n"
    (repo / ".gitlab-ci.yml").write_text(include)
    result = run(repo, "--preview")
    assert result.returncode == 0, result.stdout + result.stderr
    (tmp_path / "preview.yml").write_text(result.stdout)
    check_schema(tmp_path / "preview.yml")


def test_every_template_input_is_documented_in_the_readme() -> None:
    # the README's GitLab section names each template and each of its inputs
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## Use it from GitLab CI") : readme.index("\n## Commands")]
    for path in sorted(TEMPLATES.glob("*.yml")):
        if path.name == INSTALL:
            continue
        assert f"`{path.name}`" in section, path.name
        header, _ = list(yaml.load_all(path.read_text(), Loader=GitLabLoader))
        missing = [name for name in header["spec"]["inputs"] if f"`{name}`" not in section]
        assert missing == [], f"{path.name}: {missing}"


def test_the_install_template_names_the_kit_version_it_ships_with() -> None:
    # the version the installed kit must report, and whose release tag signs the wheel
    (line,) = [x for x in (TEMPLATES / INSTALL).read_text().splitlines() if "PIPELINE_KIT_TEMPLATE_VERSION=" in x]
    assert line.split("=", 1)[1] == __version__


# --- the isolated layout on GitLab: promote-apart.yml, the deploy in a job of the user's ---

HARVEST = ROOT / "tests" / "assets" / "harvest.py"
GITLAB_PROJECT = "pipeline-kit/hello-service"
GITLAB_REF = "refs/heads/main"
# what GitLab's token names as the signer: the project's top-level config at the ref (ci_config_ref_uri)
GITLAB_SAN = f"https://gitlab.com/{GITLAB_PROJECT}//.gitlab-ci.yml@{GITLAB_REF}"
# The user's deploy script: it deploys the file the digest names (from the decide job's
# artifact), then does what a hostile deploy step (or a dependency it loads) can: walks up to the
# runner looking for signing credentials (names only, in the report), and writes a dotenv report
# pointing the kit's jobs at a `pipeline-kit` of its own. It fails in $TEST_FAILING.
DEPLOY = """\
#!/bin/sh
set -e
file="sha256:$(sha256sum dist/*.whl | cut -d" " -f1)"
echo "$1 $PIPELINE_KIT_RELEASE_ID $PIPELINE_KIT_DIGEST $file" >> "$TEST_OUT/deploys.txt"
"$TEST_PYTHON" "$TEST_HARVEST" "$TEST_OUT/harvest-$1.json"
printf 'PIPELINE_KIT_PYTHON=%s/python\\nPIPELINE_KIT_APART=false\\n' "$TEST_SPY" > deploy.env
[ "$1" != "$TEST_FAILING" ]
"""


def apart_project(tmp_path: Path, sigstore: LocalSigstore) -> tuple[Path, str]:
    """The example project as gitlab.com/pipeline-kit/hello-service, its policy naming the
    pipeline's identity (the local issuer), released by build + sign, promoted to dev and then
    staging with promote-apart.yml around deploy jobs of its own. Returns the repo and its commit."""
    repo = project(tmp_path, sigstore)
    config = yaml.safe_load((repo / "pipeline-kit.yml").read_text())
    config["signing"]["identity"] = {
        "issuer": sigstore.issuer,
        "san": GITLAB_SAN,
        "repository": f"https://gitlab.com/{GITLAB_PROJECT}",
    }
    for environment in ("dev", "staging"):  # the jobs and what they hand on, not the policy gates
        config["environments"][environment].pop("soak", None)
        config["environments"][environment]["gates"] = ["signature", "provenance", "sbom"]
    # the build command is the user's too: it harvests, and writes the build job's dotenv report
    # (what the build template names) pointing the next job, which signs, at the spy
    config["artifact"]["build"] = (
        '"$TEST_PYTHON" "$TEST_HARVEST" "$TEST_OUT/harvest-build.json" && python build.py'
        ' && printf "PIPELINE_KIT_PYTHON=%s/python\\n" "$TEST_SPY" >> pipeline-kit.env'
    )
    config["artifact"]["pass-env"] = ["TEST_PYTHON", "TEST_HARVEST", "TEST_OUT", "TEST_SPY"]
    (repo / "pipeline-kit.yml").write_text(yaml.safe_dump(config, sort_keys=False))
    (repo / "deploy.sh").write_text(DEPLOY)
    (repo / "deploy.sh").chmod(0o755)
    kit = f"      python: {sys.executable}\n"
    trust = f"      trust-config: {sigstore.trust_config_path}\n"
    pipeline = (
        "stages: [build, sign, deploy]\n"
        "include:\n"
        "  - local: gitlab-templates/build.yml\n"
        "    inputs:\n" + kit + "  - local: gitlab-templates/sign.yml\n"
        "    inputs:\n      stage: sign\n" + kit + trust
    )
    for environment, needs in (("dev", "pipeline-kit-sign"), ("staging", "pipeline-kit-arrive-dev")):
        pipeline += (
            "  - local: gitlab-templates/promote-apart.yml\n"
            "    inputs:\n"
            f"      environment: {environment}\n"
            "      when: on_success\n"
            f"      needs: {needs}\n"
            f"      deploy-job: deploy-{environment}\n" + kit + trust
        )
    for environment in ("dev", "staging"):  # the user's deploy jobs, as the template's header says
        pipeline += (
            f"deploy-{environment}:\n"
            "  stage: deploy\n"
            f"  needs: [pipeline-kit-decide-{environment}]\n"
            f"  environment: {{name: {environment}}}\n"
            f"  resource_group: {environment}\n"
            f"  script: ['./deploy.sh {environment}']\n"
            "  artifacts:\n    reports:\n      dotenv: deploy.env\n"
        )
    # the control: a job that needs the deploy job with its artifacts gets what its dotenv says
    pipeline += (
        "dotenv-control:\n"
        "  stage: deploy\n"
        "  needs: [deploy-dev]\n"
        """  script: ['echo "$PIPELINE_KIT_APART $PIPELINE_KIT_PYTHON" > "$TEST_OUT/control.txt"']\n"""
    )
    (repo / ".gitlab-ci.yml").write_text(pipeline)
    git(repo, "remote", "set-url", "origin", f"https://gitlab.com/{GITLAB_PROJECT}.git")
    git(repo, "add", "-A")
    git(repo, "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-q", "-m", "isolated layout")
    return repo, git(repo, "rev-parse", "HEAD")


def grant_id_tokens(repo: Path, sigstore: LocalSigstore, sha: str) -> tuple[dict[str, str], dict[str, Any]]:
    """GitLab's runner: a job gets SIGSTORE_ID_TOKEN only if the merged pipeline says it declares
    `id_tokens` for it, as a variable of that job (gitlab-ci-local has no ID tokens). Each such job
    of the preview gets a token of its own (its job_id claim), through a job of the same name
    appended to .gitlab-ci.yml (merged into the included one), left uncommitted. Returns the
    granted jobs' names and job ids, and the merged pipeline before the grant."""
    preview = run(repo, "--preview")
    assert preview.returncode == 0, preview.stdout + preview.stderr
    jobs = yaml.safe_load(preview.stdout)
    granted: dict[str, str] = {}
    overrides = ""
    for name, job in jobs.items():
        if not isinstance(job, dict) or "id_tokens" not in job:
            continue
        assert job["id_tokens"] == {"SIGSTORE_ID_TOKEN": {"aud": "sigstore"}}, name
        granted[name] = str(1000 + len(granted))
        claims = {"job_id": granted[name], "environment": job.get("environment", {}).get("name", "")}
        token = sigstore.mint_workflow_token("gitlab", GITLAB_PROJECT, ".gitlab-ci.yml", GITLAB_REF, sha, **claims)
        overrides += f"{json.dumps(name)}:\n  variables:\n    SIGSTORE_ID_TOKEN: {token}\n"
    with (repo / ".gitlab-ci.yml").open("a") as handle:
        handle.write(overrides)
    return granted, jobs


def spy(tmp_path: Path, out: Path) -> Path:
    """A `pipeline-kit` that records the environment it runs in (what a hostile deploy job's
    dotenv report would run in the kit's jobs, were they to take it), then runs the kit."""
    directory = tmp_path / "spy"
    directory.mkdir()
    program = directory / "pipeline-kit"
    program.write_text(
        f'#!/bin/sh\n"{sys.executable}" "{HARVEST}" "{out}/spied-$$.json"\nexec "{BIN / "pipeline-kit"}" "$@"\n'
    )
    program.chmod(0o755)
    return directory


def job_results(output: str) -> dict[str, str]:
    """gitlab-ci-local's closing summary: each job that ran, PASS or FAIL."""
    return {name: verdict for verdict, name in re.findall(r"^ (PASS|FAIL) .*?([\w.-]+) *$", output, re.MULTILINE)}


def test_promote_apart_signs_only_in_the_arrive_job_and_records_a_failed_deploy(
    tmp_path: Path, sigstore: LocalSigstore, monkeypatch: pytest.MonkeyPatch, cli: Cli
) -> None:
    import jwt
    from sigstore.models import Bundle
    from sigstore.verify import Verifier

    from pipeline_kit.config import load_config
    from pipeline_kit.identity import IdentityPolicy, certificate_identity
    from pipeline_kit.trust import load_trust_config
    from pipeline_kit.vsa import SIGNED_APART

    repo, head = apart_project(tmp_path, sigstore)
    granted, jobs = grant_id_tokens(repo, sigstore, head)
    # only the kit's jobs that sign have an ID token: not the build, not decide, not the user's
    # deploy jobs, not deploy-failed
    assert sorted(granted) == ["pipeline-kit-arrive-dev", "pipeline-kit-arrive-staging", "pipeline-kit-sign"]
    decide, arrive, failed = (jobs[f"pipeline-kit-{job}-dev"] for job in ("decide", "arrive", "deploy-failed"))
    for job in (decide, arrive, failed):  # the kit's fixed script, apart from any program the project names
        assert job["variables"]["PIPELINE_KIT_APART"] == "true"
        assert [line.split()[0] for line in job["script"]] == ["pipeline-kit"]
        assert job["resource_group"] == "dev"
    assert decide["allow_failure"] is False and decide["environment"] == {"name": "dev", "action": "prepare"}
    # arrive runs if the deploy job succeeded, deploy-failed if it failed: its status, never its files
    for job, when in ((arrive, "on_success"), (failed, "on_failure")):
        assert job["when"] == when and job["environment"] == {"name": "dev", "action": "verify"}
        assert [(n["job"], n["artifacts"]) for n in job["needs"]] == [
            ("pipeline-kit-decide-dev", True),
            ("deploy-dev", False),
        ]
    assert "--deploy-result success" in arrive["script"][0] and "--deploy-result failure" in failed["script"][0]
    certified: list[dict[str, Any]] = []  # the claims of every token Fulcio certified from now on
    issue = sigstore.signing_cert

    def recording(authorization: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        certified.append(jwt.decode(authorization.removeprefix("Bearer ").strip(), options={"verify_signature": False}))
        return issue(authorization, body)

    monkeypatch.setattr(sigstore, "signing_cert", recording)
    out = tmp_path / "out"
    out.mkdir()
    result = run_offline(
        repo,
        "--shell-isolation",
        GITLAB_CI="true",  # gitlab-ci-local says false: ask for GitLab's behaviour (dotenv reports)
        TEST_PYTHON=sys.executable,
        TEST_HARVEST=str(HARVEST),
        TEST_OUT=str(out),
        TEST_SPY=str(spy(tmp_path, out)),
        TEST_FAILING="staging",
    )
    log = result.stdout[-6000:] + result.stderr[-2000:]
    # dev: decided, deployed by the user's job, arrived; staging: decided, its deploy failed, recorded
    assert job_results(result.stdout) == {
        "pipeline-kit-build": "PASS",
        "pipeline-kit-sign": "PASS",
        "pipeline-kit-decide-dev": "PASS",
        "deploy-dev": "PASS",
        "pipeline-kit-arrive-dev": "PASS",
        "pipeline-kit-decide-staging": "PASS",
        "deploy-staging": "FAIL",
        "pipeline-kit-deploy-failed-staging": "FAIL",  # exit 3: the deploy failed, recorded
        "dotenv-control": "PASS",
    }, log
    assert "the deploy job for staging ended failure; recorded in the ledger" in result.stdout, log

    # Built once; the same file deployed to dev and staging by its signed digest
    release = json.loads((repo / ".pipeline-kit" / "release.json").read_text())
    digest = f"sha256:{release['subjects'][0]['digest']['sha256']}"
    deploys = [line.split() for line in (out / "deploys.txt").read_text().splitlines()]
    assert deploys == [[env, release["id"], digest, digest] for env in ("dev", "staging")]

    # Only the sign job and dev's arrive job got certificates: decide, the deploy jobs and
    # deploy-failed signed nothing (and had nothing to sign with)
    jobs_certified = [c["job_id"] for c in certified]
    assert set(jobs_certified) == {granted["pipeline-kit-sign"], granted["pipeline-kit-arrive-dev"]}, certified
    assert jobs_certified.count(granted["pipeline-kit-arrive-dev"]) == 1  # the VSA
    decided = repo / ".gitlab-ci-local" / "artifacts" / "pipeline-kit-decide-dev" / ".pipeline-kit" / "promotions"
    assert sorted(p.name for p in decided.iterdir()) == ["dev.decision.json"]

    # The build and deploy jobs found no token in their environment nor in any process above
    # them, up to the runner; and what they wrote for the kit's jobs (their dotenv) never reached them
    for env in ("build", "dev", "staging"):
        harvest = json.loads((out / f"harvest-{env}.json").read_text())
        assert harvest["own_environment"] == [] and harvest["found"] == {}, harvest
        assert "error" not in harvest and "signed_as" not in harvest, harvest
        assert "gitlab-ci-local" in harvest["ancestors"][-1]["command"], harvest["ancestors"]
    # a job that takes the deploy job's artifacts gets its dotenv over its own variables: the
    # kit's jobs, which take its status only, never ran the `pipeline-kit` it pointed them to
    assert (out / "control.txt").read_text().split() == ["false", f"{tmp_path / 'spy'}/python"]
    assert list(out.glob("spied-*.json")) == []

    # dev's VSA, signed in the arrive job apart from user code, verifies under the policy (the
    # pipeline's identity, for this repository), and the kit's verifier checks the chain to dev
    promotions = repo / ".pipeline-kit" / "promotions"
    bundle = Bundle.from_json((promotions / "dev.vsa.sigstore.json").read_bytes())
    assert certificate_identity(bundle.signing_certificate)[0] == GITLAB_SAN
    identity = load_config(repo / "pipeline-kit.yml").signing.identity
    assert identity is not None
    verifier = Verifier(trusted_root=load_trust_config(sigstore.trust_config_path, offline=True).trusted_root)
    _, payload = verifier.verify_dsse(bundle, IdentityPolicy.from_config(identity).sigstore_policy())
    assert json.loads(payload)["predicate"]["verifiedLevels"][-1] == SIGNED_APART
    verified = cli(["verify", "--env", "dev", "--trust-config", str(sigstore.trust_config_path)], cwd=repo)
    assert verified.code == 0, verified.out + verified.err
    (custody,) = [line.split() for line in verified.out.splitlines() if " custody " in line]
    assert custody[:3] == ["promotions/dev.vsa.sigstore.json", "custody", "ok"], verified.out

    # staging: its deploy failed, so the ledger says so and nothing was signed for it
    assert not (promotions / "staging.vsa.sigstore.json").exists()
    ledger = [json.loads(line) for line in (repo / LEDGER).read_text().splitlines()]
    assert [(e["kind"], e["environment"], e["details"].get("deploy")) for e in ledger] == [
        ("promoted", "dev", "pending"),
        ("deployed", "dev", None),
        ("promoted", "staging", "pending"),
        ("deploy-failed", "staging", None),
    ]
    assert ledger[-1]["details"]["deploy_job"] == "failure"


def test_nothing_in_the_checkout_reaches_the_next_job_or_the_kits_environment(
    tmp_path: Path, sigstore: LocalSigstore
) -> None:
    # Attacks (found in review): a committed pipeline-kit.env would travel on in the job's dotenv
    # report (GitLab puts a needed job's dotenv before the next job's own variables: a
    # PIPELINE_KIT_PYTHON of the attacker's in the signing job); a committed .pipeline-kit-venv
    # with a .pth would run in every call of the kit's interpreter, the token in its environment;
    # modules named like those the install runs (`python3 -m venv`, `-m pip`, `-m sigstore`)
    # would run from the checkout, the job's working directory, if Python put it first on
    # sys.path, as `-c` and `-m` do outside isolated mode (the user's build, run here too, may
    # import the checkout's modules: it is the project's own code).
    wheel = released_kit(tmp_path, sigstore)
    repo = build_only(tmp_path, sigstore, user_install(wheel))
    (repo / "pipeline-kit.env").write_text("PIPELINE_KIT_PYTHON=/tmp/evil/python\n")
    planted = repo / ".pipeline-kit-venv" / "lib" / f"python{sys.version_info[0]}.{sys.version_info[1]}"
    (planted / "site-packages").mkdir(parents=True)
    (planted / "site-packages" / "zz.pth").write_text(f"import os; open({str(tmp_path / 'ran')!r}, 'w')\n")
    for module in ("venv", "ensurepip", "pip", "sigstore"):
        (repo / f"{module}.py").write_text(f"open({str(tmp_path / f'ran-{module}')!r}, 'w')\n")
    git(repo, "add", "-A", "-f")
    git(repo, "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-q", "-m", "planted")
    trust = release_trust(sigstore)
    result = run_offline(repo, **trust)
    assert "PASS  pipeline-kit-build" in result.stdout, result.stdout[-3000:]
    assert sorted(p.name for p in tmp_path.glob("ran*")) == []  # neither the .pth nor a module ran
    report = repo / "pipeline-kit.env"
    assert not report.exists() or "PIPELINE_KIT_PYTHON" not in report.read_text()


def test_a_lock_from_a_url_must_be_pinned_by_hash(tmp_path: Path, sigstore: LocalSigstore) -> None:
    # the lock brings the verifier: whoever serves an unpinned one chooses what checks the wheel
    kit = kit_checkout(tmp_path / "kit")
    inputs = f"      install: {kit}\n      requirements: https://example.com/requirements.lock\n"
    repo, result = installing(tmp_path, sigstore, inputs)
    assert "FAIL  pipeline-kit-build" in result.stdout and "has no #sha256=<hash> pin" in result.stdout
    assert not (repo / ".pipeline-kit-venv" / "bin" / "pipeline-kit").exists()
