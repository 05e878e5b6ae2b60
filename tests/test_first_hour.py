"""What a new user does first, on fresh projects of their own: init, run --dry-run, plan."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator
from time_machine import TimeMachineFixture

from pipeline_kit.config import load_config
from pipeline_kit.sbom import ARTIFACT_ALONE
from tests.conftest import REPOSITORY, WHEELHOUSE, Cli, git, init_repo, run_kit

PYPROJECT = """\
[build-system]
requires = ["hatchling"]
build-backend = "hatchling.build"

[project]
name = "demo-py"
version = "2.3.4"
dependencies = ["click"]
"""


def fresh_python(path: Path) -> None:
    (path / "src" / "demo_py").mkdir(parents=True)
    (path / "src" / "demo_py" / "__init__.py").write_text("VALUE = 1\n")
    (path / "pyproject.toml").write_text(PYPROJECT)
    (path / "requirements.txt").write_text("click==8.1.7\n")


def fresh_node(path: Path) -> None:
    manifest = {
        "name": "demo-node",
        "version": "1.4.2",
        "scripts": {"build": "node -e \"require('fs').writeFileSync('out.js', '1')\""},
    }
    (path / "package.json").write_text(json.dumps(manifest))
    (path / "index.js").write_text("console.log(1)\n")
    lock = {
        "name": "demo-node",
        "version": "1.4.2",
        "lockfileVersion": 3,
        "requires": True,
        "packages": {"": {"name": "demo-node", "version": "1.4.2"}},
    }
    (path / "package-lock.json").write_text(json.dumps(lock))


@pytest.mark.parametrize(("kind", "version"), [("python", "2.3.4"), ("node", "1.4.2")])
def test_init_then_dry_run_then_plan_on_a_fresh_project(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str, version: str
) -> None:
    # pip builds the wheel offline, its build backend from the wheelhouse .ci/test-tools fetches
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(WHEELHOUSE))
    project = tmp_path / kind
    project.mkdir()
    (fresh_python if kind == "python" else fresh_node)(project)
    git(project, "init", "-q")
    git(project, "add", "-A")
    git(project, "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-q", "-m", "init")

    init = cli(["init"], cwd=project)
    assert init.code == 0 and "next: " in init.out, init.err
    config = (project / "pipeline-kit.yml").read_text()
    assert f'version: "{version}"' in config and "environments:" in config and "  prod:" in config
    ignored = (project / ".gitignore").read_text().splitlines()
    assert {".pipeline-kit/", ".pipeline-kit-ledger/", "dist/"} <= set(ignored)

    ids = []
    for _ in range(2):  # the second build sees the first's outputs and evidence: the same release
        dry = cli(["run", "--dry-run"], cwd=project)
        assert dry.code == 0, dry.out[-2000:] + dry.err
        assert "summary: release " in dry.out and "next: " in dry.out
        ids.append(json.loads((project / ".pipeline-kit" / "release.json").read_text())["id"])
    assert ids[0] == ids[1]
    plan = cli(["plan", "--to", "dev"], cwd=project)
    assert plan.code == 2 and "nothing signed yet" in plan.err and plan.out == ""  # built, not signed
    assert "hint: sign first with `pipeline-kit sign`" in plan.err


def test_read_only_commands_on_a_fresh_project_say_nothing_is_signed_or_recorded_yet(
    cli: Cli, hello: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Offline, with no trust root cached: nothing here needs one, since there is nothing to judge
    # yet; each command says what is missing (exit 2, a hint), never the trust root (exit 3).
    from pipeline_kit import trust

    def uncached(*args: object, **kwargs: object) -> object:
        raise trust.TrustRootUnavailable("the trust root is not cached and --offline was given")

    init_repo(hello, remote="https://github.com/pipeline-kit/hello-service.git")
    assert cli(["build"], cwd=hello).code == 0
    monkeypatch.setattr(trust, "load_trust_config", uncached)
    ledger = hello / ".pipeline-kit-ledger" / "ledger.jsonl"
    for args in (["plan", "--to", "dev", "--offline"], ["verify", "--offline"]):
        result = cli(args, cwd=hello)
        assert result.code == 2 and result.out == "", result.err
        assert "nothing signed yet" in result.err and "hint: sign first with `pipeline-kit sign`" in result.err
    for args in (["report", "--offline"], ["report", "dora", "--offline"], ["report", "dora", "--json", "--offline"]):
        result = cli(args, cwd=hello)
        # errors are never JSON: one line (and a hint) on stderr, nothing on stdout
        assert result.code == 2 and result.out == "", result.out
        assert result.err.splitlines()[0] == f"error: no ledger: {ledger} does not exist: nothing to report"
        assert result.err.splitlines()[1].startswith("hint: nothing promoted here yet")
    ledger.parent.mkdir()
    ledger.write_text("")
    result = cli(["report", "dora", "--json", "--offline"], cwd=hello)
    assert result.code == 2 and result.out == "" and f"{ledger} has no entries" in result.err


def test_offline_trust_root_prints_no_stray_log_line(capsys: pytest.CaptureFixture[str]) -> None:
    # `--offline` asked for it: sigstore's "loaded in offline mode" warning is not printed.
    import contextlib
    import logging

    from pipeline_kit.errors import PipelineKitError
    from pipeline_kit.trust import load_trust_config

    logging.basicConfig()
    with contextlib.suppress(PipelineKitError):  # a cached root, or one clear error: no network either way
        load_trust_config(None, offline=True)
    assert "offline mode" not in capsys.readouterr().err
    assert logging.getLogger("sigstore._internal.tuf").getEffectiveLevel() >= logging.ERROR


# Fresh projects made by their own tools, then `pipeline-kit init` and `run --dry-run` as separate
# processes, as a new user runs them. Each toolchain is installed by .ci/test-tools (so these run
# in CI); on a machine without one, its test says so and skips.
def toolchain(*tools: str) -> None:
    missing = [tool for tool in tools if shutil.which(tool) is None]
    if missing:
        message = f"{', '.join(missing)} not installed (.ci/test-tools installs it)"
        if os.environ.get("CI"):
            pytest.fail(f"{message}: CI must run this test")
        pytest.skip(message)


def tool(project: Path, *command: str) -> None:
    done = subprocess.run(command, cwd=project, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


def uv_project(project: Path) -> str:
    """`uv init --lib` (hatchling, from the wheelhouse) and `uv lock`: a Python project with a lockfile."""
    uv = str(Path(sys.executable).parent / "uv")
    tool(project, uv, "init", "-q", "--lib", "--build-backend", "hatch", "--name", "demo-py", "--no-workspace", ".")
    tool(project, uv, "lock", "-q")
    return "dist/demo_py-0.1.0-py3-none-any.whl"


def npm_project(project: Path) -> str:
    toolchain("node", "npm")
    tool(project, "npm", "init", "-y")
    tool(project, "npm", "pkg", "set", "scripts.build=node -e \"require('fs').writeFileSync('out.js', '1')\"")
    return "dist/demo-node-1.0.0.tgz"


def go_project(project: Path) -> str:
    toolchain("go")
    tool(project, "go", "mod", "init", "example.com/demo")
    (project / "main.go").write_text('package main\n\nfunc main() { println("demo") }\n')
    return "dist/demo"


def cargo_project(project: Path) -> str:
    toolchain("cargo", "rustc")
    tool(project, "cargo", "init", "-q", "--name", "demo-rs")
    return "target/release/demo-rs"


def kit_environment(home: Path) -> dict[str, str]:
    """This process's environment without CI's, every toolchain offline: pip from the wheelhouse,
    uv, Go and npm with no network (cargo needs none for a project without dependencies)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "GITLAB_", "CI_", "RUNNER_"))}
    env.pop("PIPELINE_KIT_CONFIG", None)
    env.pop("PIPELINE_KIT_EVIDENCE_DIR", None)
    return {
        **env,
        "PIP_NO_INDEX": "1",
        "PIP_FIND_LINKS": str(WHEELHOUSE),
        "UV_OFFLINE": "1",
        "UV_PYTHON_DOWNLOADS": "never",
        "UV_CACHE_DIR": str(home / "uv"),
        "GOPROXY": "off",
        "GOTOOLCHAIN": "local",
        "npm_config_offline": "true",
        "npm_config_cache": str(home / "npm"),
        "npm_config_update_notifier": "false",
    }


@pytest.mark.parametrize(
    ("kind", "make", "source"),
    [
        ("python", uv_project, "uv.lock"),
        ("node", npm_project, None),
        ("go", go_project, None),
        ("rust", cargo_project, None),
    ],
)
def test_init_then_dry_run_on_a_project_its_own_tool_made(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str, make: Callable[[Path], str], source: str | None
) -> None:
    env = kit_environment(tmp_path / "home")
    for name, value in env.items():  # the project's own tool runs offline too
        monkeypatch.setenv(name, value)
    project = tmp_path / ("demo-node" if kind == "node" else kind)
    project.mkdir()
    artifact = make(project)
    if not (project / ".git").exists():
        git(project, "init", "-q")
    git(project, "remote", "add", "origin", f"https://github.com/acme/{project.name}.git")

    init = run_kit(["init"], project, env)
    assert init.returncode == 0, init.stdout + init.stderr
    assert "next: " in init.stdout
    config = load_config(project / "pipeline-kit.yml")
    assert [config.artifact.name, config.environment_order()] == [
        {"python": "demo-py", "rust": "demo-rs"}.get(kind, project.name),
        ["dev", "staging", "prod"],
    ]
    assert "#" in (project / "pipeline-kit.yml").read_text()  # still commented for humans
    assert config.signing.identity is not None
    assert config.signing.identity.repository == f"https://github.com/acme/{project.name}"
    if source is None:
        assert "the SBOM will list the artifact alone" in init.stdout

    dry = run_kit(["run", "--dry-run"], project, env)
    assert dry.returncode == 0, dry.stdout[-3000:] + dry.stderr[-3000:]
    assert f"build  {config.artifact.build}" in dry.stderr  # the build ran, its output streamed
    assert "summary: release " in dry.stdout and "next: " in dry.stdout
    release = json.loads((project / ".pipeline-kit" / "release.json").read_text())
    assert [s["name"] for s in release["subjects"]] == [artifact]
    built = project / artifact
    assert release["subjects"][0]["digest"]["sha256"] == hashlib.sha256(built.read_bytes()).hexdigest()

    document = (project / ".pipeline-kit" / "sbom.cdx.json").read_bytes()
    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(document.decode()) is None
    sbom = json.loads(document)
    assert sbom["metadata"]["component"]["name"] == artifact
    assert sbom["metadata"]["component"]["hashes"][0]["content"] == release["subjects"][0]["digest"]["sha256"]
    if source is None:
        assert ARTIFACT_ALONE in dry.stdout
        assert "components" not in sbom
        assert sbom["compositions"] == [{"aggregate": "unknown", "dependencies": [f"subject:{artifact}"]}]
        assert "SBOM (signed in CI) of the artifact alone (no dependency source)" in dry.stdout
    else:
        assert f"{source}  " in dry.stdout and ARTIFACT_ALONE not in dry.stdout


def npm_packed(project: Path) -> list[str]:
    """The files real `npm pack` would put in the package."""
    done = subprocess.run(
        ["npm", "pack", "--dry-run", "--json"], cwd=project, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return [entry["path"] for entry in json.loads(done.stdout)[0]["files"]]


@pytest.mark.parametrize("layout", ["npm-init", "npmignore", "files"])
def test_init_keeps_its_config_and_evidence_out_of_the_npm_package(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, layout: str
) -> None:
    env = kit_environment(tmp_path / "home")
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    project = tmp_path / "demo-node"
    project.mkdir()
    npm_project(project)
    (project / "index.js").write_text("module.exports = 1\n")
    if layout == "npmignore":
        (project / ".npmignore").write_text("test/\n")
    elif layout == "files":
        tool(project, "npm", "pkg", "set", "files[]=index.js")
    git(project, "init", "-q")

    init = run_kit(["init"], project, env)
    assert init.returncode == 0, init.stdout + init.stderr
    (project / ".pipeline-kit").mkdir()
    (project / ".pipeline-kit" / "release.json").write_text("{}")  # a previous build's evidence
    advice = "npm pack would include pipeline-kit.yml: list what the package ships in package.json's `files`"
    packed = npm_packed(project)
    if layout == "npm-init":  # no .npmignore is created (npm would stop reading .gitignore): advice
        assert advice in init.stdout and not (project / ".npmignore").exists()
        assert "pipeline-kit.yml" in packed  # npm's own rule, which the advice is about
        tool(project, "npm", "pkg", "set", "files[]=index.js")  # following it
        packed = npm_packed(project)
    else:
        assert advice not in init.stdout
    if layout == "npmignore":
        ignored = (project / ".npmignore").read_text().splitlines()
        assert {"test/", "pipeline-kit.yml", ".pipeline-kit/", ".pipeline-kit-ledger/"} <= set(ignored)
    assert "index.js" in packed and "package.json" in packed
    assert not [path for path in packed if path.startswith(("pipeline-kit", ".pipeline-kit"))], packed


QUICK_START_CLONE = "https://github.com/pipeline-kit/pipeline-kit.git"  # a clone of this repository


@pytest.mark.parametrize(
    ("moment", "passing", "frozen"),
    [
        pytest.param(
            datetime(2026, 12, 9, 10, 0),
            "3 of 3 environment(s) would pass in CI (dev, staging, prod)",
            False,
            id="wednesday",
        ),
        pytest.param(
            datetime(2026, 12, 12, 19, 30), "2 of 3 environment(s) would pass in CI (dev, staging)", True, id="weekend"
        ),
    ],
)
def test_quick_start_first_screen_says_why_a_clone_is_denied_and_what_passes(
    cli: Cli, hello: Path, time_machine: TimeMachineFixture, moment: datetime, passing: str, frozen: bool
) -> None:
    # the README's first command: the example, in a clone of this repository (its origin is not
    # the example's repository, which the example's policy names)
    time_machine.move_to(moment.replace(tzinfo=ZoneInfo("Europe/Berlin")), tick=False)
    init_repo(hello, remote=QUICK_START_CLONE)
    dry = cli(["run", "--dry-run"], cwd=hello)
    assert dry.code == 0, dry.err
    summary = dry.out[dry.out.index("summary: ") :]
    # the check stands: built from another repository, every environment is denied, as in CI
    assert "0 of 3 environment(s) would pass in CI" in summary
    assert (
        summary.count(
            "blocked by provenance: provenance.intoto.json: built from https://github.com/pipeline-kit/pipeline-kit, not the policy's repository"
        )
        == 3
    )
    # one sentence on why, and what would pass built from the example's own repository
    why = [line for line in summary.splitlines() if line.startswith("why: ")]
    assert len(why) == 1 and why[0].count(". ") == 0
    assert (
        f"this checkout's origin is {QUICK_START_CLONE.removesuffix('.git')}, not the policy's repository {REPOSITORY}"
        in why[0]
    )
    assert why[0].endswith(f"built from {REPOSITORY}, {passing}")
    assert "next: in your own project, `pipeline-kit init`" in summary
    # per environment: what passes here, what CI alone decides
    assert (
        "    pass: signature, sbom; CI alone decides: checks, previous-stage, rollback-hold; deny: provenance"
        in summary
    )
    prod = next(line for line in summary.splitlines() if line.startswith("  prod: "))
    assert ("freeze: freeze window (weekend freeze) until Mon 08:00 Europe/Berlin" in prod) is frozen
