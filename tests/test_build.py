from __future__ import annotations

import hashlib
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Cli, init_repo

CONFIG = """\
version: 1
artifact:
  name: app
  build: {build}
  outputs: {outputs}
"""


def project(
    tmp_path: Path,
    build: str = "'mkdir -p dist && printf one > dist/a.bin && printf two > dist/b.bin'",
    outputs: str = "['dist/*.bin']",
) -> Path:
    (tmp_path / "pipeline-kit.yml").write_text(CONFIG.format(build=build, outputs=outputs))
    return tmp_path


def release_json(root: Path) -> dict[str, Any]:
    document = json.loads((root / ".pipeline-kit" / "release.json").read_text())
    assert isinstance(document, dict)
    return document


def test_build_records_subjects_and_sha256sum_checks(cli: Cli, tmp_path: Path) -> None:
    root = project(tmp_path)
    result = cli(["build"], cwd=root)
    assert result.code == 0, result.err
    release = release_json(root)
    assert release["schema"] == "pipeline-kit/release/v1"
    assert [(s["name"], s["digest"]["sha256"], s["size"]) for s in release["subjects"]] == [
        ("dist/a.bin", hashlib.sha256(b"one").hexdigest(), 3),
        ("dist/b.bin", hashlib.sha256(b"two").hexdigest(), 3),
    ]
    assert release["build"]["platform"] == "local"
    assert release["build"]["command"] == [
        "/bin/sh",
        "-c",
        "mkdir -p dist && printf one > dist/a.bin && printf two > dist/b.bin",
    ]
    sums = (root / ".pipeline-kit" / "SHA256SUMS").read_bytes()
    assert release["evidence"]["SHA256SUMS"]["sha256"] == hashlib.sha256(sums).hexdigest()
    subprocess.run(["sha256sum", "-c", ".pipeline-kit/SHA256SUMS"], cwd=root, check=True, capture_output=True)
    # the release is archived under its id as well
    archived = root / ".pipeline-kit" / "releases" / release["id"] / "release.json"
    assert json.loads(archived.read_text()) == release


def test_release_id_depends_only_on_subjects(cli: Cli, tmp_path: Path) -> None:
    root = project(tmp_path)
    assert cli(["build"], cwd=root).code == 0
    first = release_json(root)["id"]
    assert cli(["build"], cwd=root).code == 0
    assert release_json(root)["id"] == first
    (root / "pipeline-kit.yml").write_text(
        CONFIG.format(build="'printf changed > dist/a.bin'", outputs="['dist/*.bin']")
    )
    assert cli(["build"], cwd=root).code == 0
    assert release_json(root)["id"] != first


def test_explicit_command_and_outputs_need_no_config(cli: Cli, tmp_path: Path) -> None:
    result = cli(
        ["build", "--name", "tool", "-o", "out/*", "--", "sh", "-c", "mkdir out; echo hi > out/x"],
        cwd=tmp_path,
    )
    assert result.code == 0, result.err
    release = release_json(tmp_path)
    assert release["name"] == "tool"
    assert release["build"]["command"] == ["sh", "-c", "mkdir out; echo hi > out/x"]
    assert [s["name"] for s in release["subjects"]] == ["out/x"]


def test_failing_build_reports_exit_code_and_tail(cli: Cli, tmp_path: Path) -> None:
    root = project(tmp_path, build="'for i in $(seq 1 40); do echo line$i; done; echo boom >&2; exit 7'")
    result = cli(["build"], cwd=root)
    assert result.code == 3
    assert "build command exited with code 7" in result.err
    assert "boom" in result.err and "line40" in result.err
    # streamed as it ran, and not printed a second time as the hint
    assert result.err.count("line40") == 1 and "hint: see its output above" in result.err
    assert not (root / ".pipeline-kit" / "release.json").exists()


def test_missing_build_tool_is_environment_failure(cli: Cli, tmp_path: Path) -> None:
    result = cli(["build", "-o", "x", "--", "definitely-not-a-command-xyz"], cwd=tmp_path)
    assert result.code == 3
    assert "could not start" in result.err


def test_no_output_matched(cli: Cli, tmp_path: Path) -> None:
    root = project(tmp_path, build="'true'")
    result = cli(["build"], cwd=root)
    assert result.code == 2
    assert "output glob 'dist/*.bin' matched no file" in result.err
    assert not (root / ".pipeline-kit").exists()


def test_symlinked_output_refused(cli: Cli, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.bin").write_text("x")
    root = tmp_path / "proj"
    root.mkdir()
    project(root, build="'true'")
    (root / "dist").mkdir()
    os.symlink(outside / "secret.bin", root / "dist" / "link.bin")
    result = cli(["build"], cwd=root)
    assert result.code == 2
    assert "symbolic link" in result.err


def test_symlinked_directory_refused(cli: Cli, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "a.bin").write_text("x")
    root = tmp_path / "proj"
    root.mkdir()
    project(root, build="'true'")
    os.symlink(outside, root / "dist")
    result = cli(["build"], cwd=root)
    assert result.code == 2
    assert "symbolic link" in result.err


def test_evidence_dir_is_never_a_subject(cli: Cli, tmp_path: Path) -> None:
    root = project(tmp_path, outputs="['**/*.bin', '**/*.json']")
    (root / "x.json").write_text("{}")
    assert cli(["build"], cwd=root).code == 0
    assert cli(["build"], cwd=root).code == 0
    names = [s["name"] for s in release_json(root)["subjects"]]
    assert names == ["dist/a.bin", "dist/b.bin", "x.json"]


def test_new_build_retires_stale_derived_evidence(cli: Cli, hello: Path) -> None:
    assert cli(["build"], cwd=hello).code == 0
    assert cli(["sbom"], cwd=hello).code == 0
    old_id = release_json(hello)["id"]
    (hello / "src" / "hello_service" / "extra.py").write_text("X = 1\n")
    assert cli(["build"], cwd=hello).code == 0
    assert not (hello / ".pipeline-kit" / "sbom.cdx.json").exists()
    assert (hello / ".pipeline-kit" / "releases" / old_id / "sbom.cdx.json").exists()


def fragment(directory: Path, files: dict[str, bytes]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    lines = "".join(f"{hashlib.sha256(data).hexdigest()}  {name}\n" for name, data in files.items())
    (directory / "SHA256SUMS").write_text(lines)
    return directory / "SHA256SUMS"


def test_matrix_fragments_merge_into_one_release(cli: Cli, tmp_path: Path) -> None:
    linux = fragment(tmp_path / "linux", {"dist/tool-linux": b"L", "dist/common.txt": b"C"})
    mac = fragment(tmp_path / "mac", {"dist/tool-macos": b"M", "dist/common.txt": b"C"})
    result = cli(["build", "--name", "tool", "--subjects", str(linux), "--subjects", str(mac)], cwd=tmp_path)
    assert result.code == 0, result.err
    subjects = release_json(tmp_path)["subjects"]
    assert [s["name"] for s in subjects] == [
        "dist/common.txt",
        "dist/tool-linux",
        "dist/tool-macos",
    ]
    assert all(s["size"] is None for s in subjects)  # built elsewhere: size unknown here


def test_fragment_with_conflicting_duplicate_refused(cli: Cli, tmp_path: Path) -> None:
    a = fragment(tmp_path / "a", {"dist/tool": b"one"})
    b = fragment(tmp_path / "b", {"dist/tool": b"two"})
    result = cli(["build", "--name", "t", "--subjects", str(a), "--subjects", str(b)], cwd=tmp_path)
    assert result.code == 2
    assert "duplicate subject name 'dist/tool' with different digests" in result.err
    assert not (tmp_path / ".pipeline-kit").exists()


def test_fragment_checked_against_local_file(cli: Cli, tmp_path: Path) -> None:
    sums = fragment(tmp_path / "job", {"dist/tool": b"expected"})
    (tmp_path / "dist").mkdir()
    (tmp_path / "dist" / "tool").write_bytes(b"tampered")
    result = cli(["build", "--name", "t", "--subjects", str(sums)], cwd=tmp_path)
    assert result.code == 1
    assert "dist/tool: the file here has sha256" in result.err
    (tmp_path / "dist" / "tool").write_bytes(b"expected")
    assert cli(["build", "--name", "t", "--subjects", str(sums)], cwd=tmp_path).code == 0
    assert release_json(tmp_path)["subjects"][0]["size"] == len(b"expected")


@pytest.mark.parametrize(
    "content",
    [b"", b"garbage\n", b"\xff\xfe binary", ("ab" * 32 + "  ../../etc/passwd\n").encode()],
)
def test_hostile_fragments_rejected_without_output(cli: Cli, tmp_path: Path, content: bytes) -> None:
    (tmp_path / "SUMS").write_bytes(content)
    result = cli(["build", "--name", "t", "--subjects", "SUMS"], cwd=tmp_path)
    assert result.code == 2
    assert result.err.startswith("error: ")
    assert "SUMS" in result.err
    assert "Traceback" not in result.err
    assert not (tmp_path / ".pipeline-kit").exists()


def test_evidence_dir_from_environment(cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = project(tmp_path)
    monkeypatch.setenv("PIPELINE_KIT_EVIDENCE_DIR", "out/evidence")
    assert cli(["build"], cwd=root).code == 0
    assert (root / "out" / "evidence" / "release.json").is_file()
    assert cli(["build", "--evidence-dir", "flag-dir"], cwd=root).code == 0
    assert (root / "flag-dir" / "release.json").is_file()


def test_build_records_git_source(cli: Cli, tmp_path: Path) -> None:
    root = project(tmp_path)
    commit = init_repo(root, remote="https://ci-bot:ghp_SECRET@github.com/acme/app.git")
    assert cli(["build"], cwd=root).code == 0
    source = release_json(root)["source"]
    assert source == {
        "repository": "https://github.com/acme/app",
        "commit": commit,
        "ref": "refs/heads/main",
    }
    assert "SECRET" not in (root / ".pipeline-kit" / "release.json").read_text()
