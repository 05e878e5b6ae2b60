"""`pipeline-kit init`'s starter: every detected value written by the YAML library, the whole file
checked by the kit's own config loader before anything is written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline_kit.config import load_config
from pipeline_kit.scaffold import Project, checked_starter
from tests.conftest import Cli, init_repo

AWKWARD = [
    "@acme/web",  # a scoped npm name: `@` cannot start a plain YAML scalar
    "web: api # edge",
    "yes",
    "1.0",
    "- item",
    "[x]",
    "'quoted\" both",
    "tab\there",
    "line\nbreak",
    "x\u2028y",
    "ünïcode ✓",
    "a" * 200,
]


@pytest.mark.parametrize("value", AWKWARD)
def test_every_detected_value_reads_back_as_detected(tmp_path: Path, value: str) -> None:
    project = Project(
        name=value,
        version=value,
        build=f'RUSTFLAGS="--remap-path-prefix=$PWD=." {value} && echo "#done"',
        outputs=("dist/*.whl", f"target/release/{value.splitlines()[0][:50] or 'x'}"),
        sources=("requirements.txt", f"sub dir/{value.splitlines()[0][:30]}.lock"),
        repository=f"https://github.com/acme/{'web' if value.isascii() else 'wëb'}",
    )
    text = checked_starter(project, tmp_path / "pipeline-kit.yml")  # raises unless it reads back exactly
    assert "# Files the build produces" in text  # still commented for humans


def test_a_scoped_npm_package_and_a_numeric_looking_version(cli: Cli, tmp_path: Path) -> None:
    (tmp_path / "package.json").write_text(json.dumps({"name": "@acme/web", "version": "1.0"}))
    result = cli(["init"], cwd=tmp_path)
    assert result.code == 0, result.err
    config = load_config(tmp_path / "pipeline-kit.yml")
    assert (config.artifact.name, config.artifact.version) == ("@acme/web", "1.0")


@pytest.mark.parametrize(
    ("starter", "problem"),
    [
        ('version: 1\nartifact:\n  build: "a "b" c"\n', "invalid YAML"),  # not YAML at all
        ("version: 1\nartifact: {name: other, outputs: [dist/*]}\n", "would say"),  # valid, but not what was found
    ],
)
def test_an_invalid_starter_is_a_bug_and_writes_nothing(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, starter: str, problem: str
) -> None:
    (tmp_path / "package.json").write_text(json.dumps({"name": "web", "version": "1.0.0"}))
    monkeypatch.setattr("pipeline_kit.scaffold.starter_config", lambda project: starter)
    result = cli(["init"], cwd=tmp_path)
    assert result.code == 3, result.err
    assert problem in result.err and "nothing written" in result.err and "pipeline-kit bug" in result.err
    assert str(tmp_path) not in result.err  # names no file that was never written
    assert sorted(p.name for p in tmp_path.iterdir()) == ["package.json"]  # no config, no .gitignore


@pytest.mark.parametrize(
    "record",
    [
        {"url": "https://github.com/pipeline-kit/pipeline-kit", "vcs_info": {"vcs": "git", "commit_id": "c" * 40}},
        {"url": "file:///kit", "dir_info": {"editable": True}},
    ],
)
def test_init_pins_the_kit_workflows_at_the_commit_the_kit_came_from(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, record: dict[str, object]
) -> None:
    # A commit pattern would also match an imposter commit (a fork's, served under the kit's name):
    # a kit installed from a commit pins that commit; otherwise the pattern, and the comment says so.
    import importlib.metadata

    from pipeline_kit.identity import KIT_WORKFLOWS_SAN_REGEX

    class Installed:
        def read_text(self, name: str) -> str | None:
            return json.dumps(record) if name == "direct_url.json" else None

    monkeypatch.setattr(importlib.metadata, "distribution", lambda name: Installed())
    project = tmp_path / "app"
    project.mkdir()
    (project / "pyproject.toml").write_text('[project]\nname = "app"\nversion = "1.0"\n')
    init_repo(project, remote="https://github.com/acme/app.git")
    assert cli(["init"], cwd=project).code == 0
    identity = load_config(project / "pipeline-kit.yml").signing.identity
    assert identity is not None and identity.repository == "https://github.com/acme/app"
    vcs = record.get("vcs_info")
    commit = vcs.get("commit_id") if isinstance(vcs, dict) else None
    expected = KIT_WORKFLOWS_SAN_REGEX.replace("[0-9a-f]{40}", str(commit)) if commit else KIT_WORKFLOWS_SAN_REGEX
    assert identity.san_regex == expected
    assert (
        identity.caller_regex
        == r"^https://github\.com/acme/app/\.github/workflows/(release\.yml@refs/tags/v.*|rollback\.yml@refs/heads/main)$"
    )
