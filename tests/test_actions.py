"""The composite actions, run for real by nektos/act (host mode), and their static checks."""

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
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from pipeline_kit._internal.files import read_toml
from tests.conftest import EXAMPLE, ROOT, SIGNER, git, kit_checkout, offline_installs
from tests.mermaid_parser import charts
from tests.sigstore_instance import LocalSigstore

BIN = Path(sys.executable).parent
KIT = "pipeline-kit/pipeline-kit"  # how users name the actions; act maps it to a local copy
UPLOAD_PIN = "ea165f8d65b6e75b540449e92b4886f43607fa02"  # actions/upload-artifact v4.6.2, as the report action pins it

WORKFLOW = """\
name: selftest
on: push
permissions: {}
jobs:
  release:
    runs-on: ubuntu-latest
    permissions:
      contents: read
      id-token: write
    steps:
      - uses: actions/checkout@v4
      - id: release
        uses: pipeline-kit/pipeline-kit/actions/release@v0
        with:
          trust-config: ${{ env.TEST_TRUST_CONFIG }}
      - id: promote
        uses: pipeline-kit/pipeline-kit/actions/promote@v0
        with:
          to: dev
          trust-config: ${{ env.TEST_TRUST_CONFIG }}
          cert-identity: %(signer)s
          cert-oidc-issuer: ${{ env.TEST_ISSUER }}
          reason: ${{ env.TEST_REASON }}
          deploy: echo "deploying $PIPELINE_KIT_RELEASE_ID to $PIPELINE_KIT_ENVIRONMENT" > "$TEST_OUT/deployed.txt"
      - name: Record outputs
        env:
          RELEASE: ${{ steps.release.outputs.release-id }}
          DIGEST: ${{ steps.release.outputs.digest }}
          BUNDLES: ${{ steps.release.outputs.bundles }}
          VERDICT: ${{ steps.promote.outputs.verdict }}
        run: |
          printf 'release=%%s\\ndigest=%%s\\nverdict=%%s\\n' "$RELEASE" "$DIGEST" "$VERDICT" > "$TEST_OUT/outputs.txt"
          printf '%%s\\n' "$BUNDLES" > "$TEST_OUT/bundles.txt"
          command -v pipeline-kit > "$TEST_OUT/kit.txt"
          cp .pipeline-kit/promotions/dev.decision.json "$TEST_OUT/"
      - id: report
        uses: pipeline-kit/pipeline-kit/actions/report@v0
        with:
          environment: dev
          trust-config: ${{ env.TEST_TRUST_CONFIG }}
          cert-identity: %(signer)s
          cert-oidc-issuer: ${{ env.TEST_ISSUER }}
"""


def act_repo(tmp_path: Path) -> Path:
    """A git repository holding the example project and a workflow using the actions."""
    repo = tmp_path / "repo"
    shutil.copytree(EXAMPLE, repo, ignore=shutil.ignore_patterns("dist", ".pipeline-kit", "__pycache__"))
    (repo / ".github" / "workflows").mkdir(parents=True)
    (repo / ".github" / "workflows" / "test.yml").write_text(WORKFLOW % {"signer": SIGNER})
    # the deploy command sees a scrubbed environment: the variable it writes to is named
    config = repo / "pipeline-kit.yml"
    config.write_text(config.read_text().replace("  dev:\n", "  dev:\n    pass-env: [TEST_OUT]\n", 1))
    git(repo, "init", "-q")
    git(repo, "remote", "add", "origin", "https://github.com/pipeline-kit/hello-service.git")
    git(repo, "add", "-A")
    git(repo, "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-q", "-m", "init")
    return repo


def run_act(
    repo: Path,
    tmp_path: Path,
    sigstore: LocalSigstore,
    reason: str,
    *,
    workflow: str = ".github/workflows/test.yml",
    token: str = "",
    extra: tuple[str, ...] = (),
    event: str = "push",
) -> tuple[subprocess.CompletedProcess[str], Path]:
    out = tmp_path / "out"
    out.mkdir()
    scratch = tmp_path / "act"
    scratch.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "CI_", "GITLAB_", "PIPELINE_KIT_"))}
    env.update({"HOME": str(scratch), "ACT_DISABLE_VERSION_CHECK": "1"})
    tools = scratch / "bin"  # uv, and no pipeline-kit: the steps can only use what setup installed
    tools.mkdir()
    (tools / "uv").symlink_to(BIN / "uv")
    variables = {
        "TEST_TRUST_CONFIG": str(sigstore.trust_config_path),
        "TEST_ISSUER": sigstore.issuer,
        "TEST_REASON": reason,
        "TEST_OUT": str(out),
        "TEST_ARTIFACTS": str(tmp_path / "artifacts"),
        "SIGSTORE_IDENTITY_TOKEN": token or sigstore.mint_token(SIGNER),
        **offline_installs(scratch),
        "PATH": f"{tools}:{os.environ['PATH']}",
    }
    command = [
        str(BIN / "act"),
        event,
        "-W",
        workflow,
        "-P",
        "ubuntu-latest=-self-hosted",
        "--container-daemon-socket",
        "-",
        "--action-cache-path",
        str(scratch / "cache"),
        "--local-repository",
        f"{KIT}@v0={kit_checkout(tmp_path / 'kit')}",
        # the report action uploads its page: the stand-in keeps it in $TEST_ARTIFACTS
        "--local-repository",
        f"actions/upload-artifact@{UPLOAD_PIN}={ROOT / 'tests' / 'assets' / 'artifact-actions' / 'upload'}",
        *extra,
    ]
    for key, value in variables.items():
        command += ["--env", f"{key}={value}"]
    result = subprocess.run(
        command, cwd=repo, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=600, check=False
    )
    return result, out


def test_act_runs_release_and_promote_end_to_end(tmp_path: Path, sigstore: LocalSigstore) -> None:
    repo = act_repo(tmp_path)
    result, out = run_act(repo, tmp_path, sigstore, "first release")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    outputs = dict(line.split("=", 1) for line in (out / "outputs.txt").read_text().splitlines())
    assert len(outputs["release"]) == 32
    assert outputs["digest"].startswith("sha256:")
    assert outputs["verdict"] == "passed"
    bundles = (out / "bundles.txt").read_text().split()
    assert [Path(b).name for b in bundles] == [
        "hello_service-0.1.0-py3-none-any.whl.sigstore.json",
        "provenance.sigstore.json",
        "sbom.sigstore.json",
    ]
    assert (out / "deployed.txt").read_text().strip() == f"deploying {outputs['release']} to dev"
    # the setup action really installed the kit and its locked dependencies, in the tool cache
    assert (out / "kit.txt").read_text().startswith(str(tmp_path / "act")), (out / "kit.txt").read_text()
    decision = json.loads((out / "dev.decision.json").read_text())
    assert decision["actor"].startswith("github:") and decision["reason"] == "first release"
    assert SIGNER in "".join(g["reason"] for g in decision["gates"])
    # the step summary carried the gate table and the environments drawn, as Mermaid reads them
    assert "| signature | passed |" in result.stdout
    # the report action wrote the page from the promotion just made, uploaded it and linked it
    page = (tmp_path / "artifacts" / "pipeline-kit-report" / "pipeline-kit-report.html").read_text()
    assert outputs["release"] in page and page.count('<span class="badge verified"') >= 2
    assert "Download the release report (pipeline-kit-report)" in result.stdout
    chart = charts(result.stdout)[0]
    assert chart["shown"] == [
        (f"dev\nrelease {outputs['release'][:12]}\ngates passed\narrived: deployed", ["passed"]),
        ("staging\nnot judged by this job", ["waiting"]),
        ("prod\nnot judged by this job", ["waiting"]),
    ]


def test_hostile_input_reaches_the_kit_as_data(tmp_path: Path, sigstore: LocalSigstore) -> None:
    marker = tmp_path / "pwned"
    # (act itself expands `${{ }}` inside --env values, which GitHub never does: left out here)
    hostile = f'$(touch {marker}) `touch {marker}` "; touch {marker}; echo " \'\nsecond line; touch {marker}'
    repo = act_repo(tmp_path)
    result, out = run_act(repo, tmp_path, sigstore, hostile)
    assert result.returncode == 0, result.stdout[-3000:]
    assert not marker.exists()
    assert json.loads((out / "dev.decision.json").read_text())["reason"] == hostile


def test_actions_and_workflows_pass_static_checks() -> None:
    actions = sorted(str(p) for p in (ROOT / "actions").glob("*/action.yml"))
    workflows = sorted(str(p) for p in (ROOT / ".github" / "workflows").glob("*.yml"))
    workflows += sorted(str(p) for p in (ROOT / "examples" / "github").glob("*.yml"))  # what users copy
    assert len(actions) == 12 and workflows
    checks = [
        [str(BIN / "check-jsonschema"), "--builtin-schema", "vendor.github-actions", *actions],
        [str(BIN / "check-jsonschema"), "--builtin-schema", "vendor.github-workflows", *workflows],
        [str(BIN / "actionlint"), "-ignore", "node20", *workflows],
        [str(BIN / "zizmor"), "--offline", "--no-progress", str(ROOT / ".github"), str(ROOT / "actions"), *workflows],
    ]
    for command in checks:
        result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
        assert result.returncode == 0, f"{command[0]}: {result.stdout}{result.stderr}"


def test_every_action_input_reaches_run_only_through_env() -> None:

    for path in (ROOT / "actions").glob("*/action.yml"):
        action = yaml.safe_load(path.read_text())
        for step in action["runs"]["steps"]:
            assert "${{" not in step.get("run", ""), f"{path}: expression inside run:"
        used = {v for step in action["runs"]["steps"] for v in (step.get("env") or {}).values()}
        for name in action.get("inputs", {}):
            assert f"${{{{ inputs.{name} }}}}" in used, f"{path}: input {name} is never passed to the kit"


@pytest.mark.parametrize(
    "name",
    ["build", "sbom", "sign", "verify", "plan", "promote", "rollback", "release", "drift", "stop-the-line", "report"],
)
def test_action_environment_names_are_options_the_cli_reads(name: str) -> None:
    """Each PIPELINE_KIT_* variable an action sets is read by the command it runs."""

    from pipeline_kit.cli import load

    action = yaml.safe_load((ROOT / "actions" / name / "action.yml").read_text())
    steps = action["runs"]["steps"]
    step = next((s for s in steps if s.get("id") == "run"), steps[-1])  # the step that runs the kit
    known = {
        "PIPELINE_KIT_WORKDIR",
        "PIPELINE_KIT_EVIDENCE_DIR",
        "PIPELINE_KIT_CONFIG",
        "PIPELINE_KIT_TRUST_CONFIG",
        "PIPELINE_KIT_BUILD_COMMAND",
        "PIPELINE_KIT_DEPLOY_COMMAND",
        "PIPELINE_KIT_BREAK_GLASS_INPUT",
        "PIPELINE_KIT_LINE_COMMAND",  # which of stop-the-line and resume-the-line the script runs
        "GITHUB_TOKEN",  # read by the forge
    }  # read by the script or the group
    commands = {"release": ["build", "sign"], "stop-the-line": ["stop-the-line", "resume-the-line"]}.get(name, [name])
    for command in commands:
        for param in load(command).params:
            prefix = f"PIPELINE_KIT_{command.upper().replace('-', '_')}_"
            known.add(param.envvar if isinstance(param.envvar, str) else prefix + (param.name or "").upper())
    for variable in step["env"]:
        assert variable in known, f"{name}: {variable} is not read by pipeline-kit {'/'.join(commands)}"


def test_every_action_has_a_readme_covering_its_interface() -> None:

    for path in (ROOT / "actions").glob("*/action.yml"):
        action = yaml.safe_load(path.read_text())
        readme = (path.parent / "README.md").read_text()
        assert "```yaml" in readme and "permissions:" in readme, path.parent.name
        for name in [*action.get("inputs", {}), *action.get("outputs", {})]:
            assert f"| `{name}` |" in readme, f"{path.parent.name}/README.md does not document {name}"


def run_setup(
    kit: Path, cache: Path, path: str, cwd: Path | None = None, **env: str
) -> subprocess.CompletedProcess[str]:
    environment = {
        "PATH": path,
        "HOME": str(cache.parent),
        "RUNNER_TOOL_CACHE": str(cache),
        "GITHUB_OUTPUT": str(cache.parent / "outputs"),
        **offline_installs(cache.parent),
        **env,
    }
    return subprocess.run(
        [str(kit / "actions" / "setup" / "install.sh")],
        cwd=cwd,
        env=environment,
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.mark.parametrize("interpreter", ["pip", "no pip"])
def test_setup_installs_exactly_the_lock_with_pip_and_reuses_it(tmp_path: Path, interpreter: str) -> None:
    # the interpreter's own pip installs into a venv without one; an interpreter without pip (a
    # slim image) gets a venv with one (ensurepip)
    kit = kit_checkout(tmp_path / "kit")
    cache = tmp_path / "tool-cache"
    no_uv = "/usr/bin:/bin"  # the pip fallback (the act runs above take the uv path)
    python = str(Path(sys.executable).resolve())
    if interpreter == "no pip":
        subprocess.run([python, "-m", "venv", "--without-pip", str(tmp_path / "bare")], check=True)
        python = str(tmp_path / "bare" / "bin" / "python")
    # run where a step runs, in the checkout: modules named like those the install runs never run
    # from it (`-c` and `-m` would put it first on sys.path outside isolated mode)
    checkout = tmp_path / "checkout"
    checkout.mkdir()
    for module in ("venv", "ensurepip", "pip", "re"):
        (checkout / f"{module}.py").write_text(f"open({str(tmp_path / f'ran-{module}')!r}, 'w')\n")
    first = run_setup(kit, cache, no_uv, checkout, PIPELINE_KIT_SETUP_PYTHON=python)
    assert first.returncode == 0, first.stderr
    assert sorted(p.name for p in tmp_path.glob("ran-*")) == []
    outputs = dict(line.split("=", 1) for line in (tmp_path / "outputs").read_text().splitlines())
    venv = Path(outputs["bin"]).parent
    assert venv.parent == cache / "pipeline-kit" and (venv / ".complete").is_file()
    assert (venv / "bin" / "pip").exists() == (interpreter == "no pip")
    # exactly the pinned versions, nothing more (`freeze` leaves out pip and its setuptools)
    frozen = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "freeze", "--exclude-editable"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    pins = locked_pins()
    # `name==version`, and `pipeline-kit-release @ file://...` for the kit built from the action's checkout
    installed: dict[str, str] = {
        canonicalize_name(re.split("==| @ ", line)[0]): line.partition("==")[2] for line in frozen
    }
    assert installed.pop("pipeline-kit-release") == ""
    assert installed == pins
    # the second run is a cache hit: same environment, untouched
    stamp = (venv / ".complete").stat().st_mtime_ns
    second = run_setup(kit, cache, no_uv, PIPELINE_KIT_SETUP_PYTHON=python)
    assert second.returncode == 0 and (venv / ".complete").stat().st_mtime_ns == stamp


LOCKED_INSTALL = "install --no-compile --no-deps --require-hashes --only-binary :all: -r"  # the lock is complete


@pytest.mark.parametrize("pip", ["stock", "current"])
def test_the_locked_install_takes_exactly_the_pins_with_stock_and_current_pip(tmp_path: Path, pip: str) -> None:
    # The setup action's pip fallback and the GitLab templates' `requirements:` install run this
    # command; a newer pydantic is on offer (offline_installs), and pip 23.2.1 (Python 3.11's
    # bundled pip) used to take it for the pydantic[email] extra and stop.
    for user in [ROOT / "actions" / "setup" / "install.sh", *(ROOT / "gitlab-templates").glob("*.yml")]:
        for line in user.read_text().splitlines():
            assert " install " not in line or "--require-hashes" not in line or "--no-deps" in line, (user, line)
    for user in [ROOT / "actions" / "setup" / "install.sh", ROOT / "gitlab-templates" / "install.yml"]:
        assert LOCKED_INSTALL in user.read_text(), user  # the command tested here is theirs
    base = getattr(sys, "_base_executable", sys.executable)
    venv = tmp_path / "venv"
    subprocess.run([base, "-m", "venv", str(venv)], check=True)
    python = str(venv / "bin" / "python")
    env = {**os.environ, **offline_installs(tmp_path)}
    if pip == "current":
        upgrade = [python, "-m", "pip", "install", "-q", "--upgrade", "pip"]
        subprocess.run(upgrade, env=env, check=True, capture_output=True)
    version = subprocess.run([python, "-m", "pip", "--version"], capture_output=True, text=True, check=True).stdout
    bundled = subprocess.run(
        [base, "-c", "import ensurepip; print(ensurepip.version())"], capture_output=True, text=True
    )
    assert (version.split()[1] == bundled.stdout.strip()) == (pip == "stock"), version
    lock = ROOT / "actions" / "setup" / "requirements.lock"
    result = subprocess.run(
        [python, "-m", "pip", "-q", *LOCKED_INSTALL.split(), str(lock)], env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    frozen = subprocess.run([python, "-m", "pip", "freeze"], capture_output=True, text=True, check=True).stdout
    installed = {
        canonicalize_name(name): pin for name, _, pin in (line.partition("==") for line in frozen.splitlines())
    }
    assert installed == locked_pins(), frozen


def test_setup_refuses_a_wheel_whose_hash_is_not_the_locked_one(tmp_path: Path) -> None:
    kit = kit_checkout(tmp_path / "kit")
    lock = kit / "actions" / "setup" / "requirements.lock"
    text = lock.read_text()
    start = text.index("click==")
    end = text.index("# via", start)
    # every hash of click's files changed: the wheel in the wheelhouse no longer matches any
    forged = re.sub("sha256:[0-9a-f]{64}", "sha256:" + "0" * 64, text[start:end])
    lock.write_text(text[:start] + forged + text[end:])
    cache = tmp_path / "tool-cache"
    tools = tmp_path / "bin"
    tools.mkdir()
    (tools / "uv").symlink_to(BIN / "uv")
    result = run_setup(kit, cache, f"{tools}:/usr/bin:/bin", PIPELINE_KIT_SETUP_PYTHON=sys.executable)
    assert result.returncode != 0
    assert "hash" in result.stderr.lower() and "click" in result.stderr.lower(), result.stderr
    assert not list(cache.glob("pipeline-kit/*/.complete"))  # a failed install is never a cache hit


def locked_pins() -> dict[str, str]:
    """name -> version the setup lock pins for this interpreter (markers evaluated)."""
    pins: dict[str, str] = {}
    for line in (ROOT / "actions" / "setup" / "requirements.lock").read_text().splitlines():
        if "==" not in line or line.startswith((" ", "#")):
            continue
        requirement = Requirement(line.rstrip(" \\"))
        if requirement.marker is None or requirement.marker.evaluate():
            pins[canonicalize_name(requirement.name)] = str(requirement.specifier).removeprefix("==")
    return pins


def test_setup_lock_satisfies_the_declared_dependencies() -> None:
    # A dependency changed in pyproject.toml without re-locking fails here; re-lock with the
    # command at the top of actions/setup/requirements.lock.
    pins = locked_pins()
    project = read_toml(ROOT / "pyproject.toml")
    declared = [*project["project"]["dependencies"], *project["build-system"]["requires"]]
    for text in declared:
        requirement = Requirement(text)
        if requirement.marker is not None and not requirement.marker.evaluate():
            continue
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{name} is not in the lock"
        assert requirement.specifier.contains(pins[name], prereleases=True), f"lock pins {name}=={pins[name]}: {text}"


# The multi-environment example (examples/github/release-pipeline.yml) runs under act in
# tests/test_signing_isolation.py, with GitHub's OIDC emulated per job.


def test_the_kit_workflows_install_the_kit_with_the_same_steps() -> None:
    # a reusable workflow cannot call an action at its own ref: each carries the steps that read
    # its commit from its token and install the kit there; they must stay the same steps
    def install_steps(name: str) -> list[dict[str, object]]:
        workflow = yaml.safe_load((ROOT / ".github" / "workflows" / name).read_text())
        (job,) = workflow["jobs"].values()
        steps = job["steps"]
        return [step for step in steps if str(step.get("name", "")).startswith(("This workflow's", "Install"))]

    signing = install_steps("sign-release.yml")
    assert len(signing) == 2 and signing == install_steps("arrive.yml") == install_steps("rollback.yml")


def test_the_kit_workflows_take_the_same_things_from_an_artifact() -> None:
    # arrive and rollback take the evidence and the ledger from an artifact with one check (no
    # link or special file); the two copies must stay one
    def taking(name: str) -> tuple[object, ...]:
        workflow = yaml.safe_load((ROOT / ".github" / "workflows" / name).read_text())
        (job,) = workflow["jobs"].values()
        (step,) = [s for s in job["steps"] if str(s.get("name", "")).startswith("Take the evidence")]
        return step["name"], step["shell"], sorted(step["env"]), step["run"]

    assert taking("arrive.yml") == taking("rollback.yml")
