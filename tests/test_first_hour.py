"""What a new user does first, on fresh projects of their own: init, run --dry-run, plan."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import WHEELHOUSE, Cli, git

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
    assert plan.code == 1 and "would be DENIED" in plan.out  # nothing signed, no identity policy yet
    assert "no identity policy" in plan.out


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
