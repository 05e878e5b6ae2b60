from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path

import pytest

from pipeline_kit.digest import (
    CHUNK_SIZE,
    PIPELINE_THRESHOLD,
    ChecksumLine,
    format_checksums,
    hash_file,
    hash_files,
    parse_checksums,
)
from pipeline_kit.errors import InputError


@pytest.mark.parametrize(
    "size",
    [0, 1, CHUNK_SIZE - 1, CHUNK_SIZE, CHUNK_SIZE * 3 + 17, PIPELINE_THRESHOLD, PIPELINE_THRESHOLD * 2 + 5],
)
def test_hash_file_matches_hashlib(tmp_path: Path, size: int) -> None:
    data = os.urandom(size)
    path = tmp_path / "blob"
    path.write_bytes(data)
    digest = hash_file(path)
    assert digest.sha256 == hashlib.sha256(data).hexdigest()
    assert digest.size == size


def test_hash_files_keeps_order(tmp_path: Path) -> None:
    paths = []
    for i in range(5):
        path = tmp_path / f"f{i}"
        path.write_bytes(str(i).encode() * (i + 1) * 1000)
        paths.append(path)
    assert [d.sha256 for d in hash_files(paths)] == [hashlib.sha256(p.read_bytes()).hexdigest() for p in paths]


def test_checksums_round_trip_and_sha256sum_accepts(tmp_path: Path) -> None:
    (tmp_path / "dist").mkdir()
    (tmp_path / "dist" / "a b.bin").write_bytes(b"a")
    (tmp_path / "c.txt").write_bytes(b"c")
    entries = [
        ChecksumLine("dist/a b.bin", hashlib.sha256(b"a").hexdigest()),
        ChecksumLine("c.txt", hashlib.sha256(b"c").hexdigest()),
    ]
    text = format_checksums(entries)
    assert parse_checksums(text, "SUMS") == entries
    (tmp_path / "SUMS").write_text(text)
    subprocess.run(["sha256sum", "--check", "--strict", "SUMS"], cwd=tmp_path, check=True, capture_output=True)


def test_binary_marker_and_uppercase_accepted() -> None:
    digest = "AB" * 32
    (entry,) = parse_checksums(f"{digest} *bin/tool\n", "SUMS")
    assert entry == ChecksumLine("bin/tool", digest.lower())


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "empty"),
        ("not a checksum line\n", "line 1"),
        ("ab" * 31 + "  short.txt\n", "line 1"),
        ("ab" * 32 + "  ../escape\n", "relative path"),
        ("ab" * 32 + "  /etc/passwd\n", "relative path"),
        ("ab" * 32 + "  a\n" + "cd" * 32 + "  a\n", "twice"),
        ("ab" * 32 + "  ok\n\n" + "zz" * 32 + "  bad\n", "line 3"),
    ],
)
def test_bad_checksum_files_name_the_line(text: str, fragment: str) -> None:
    with pytest.raises(InputError) as caught:
        parse_checksums(text, "fragment/SHA256SUMS")
    assert caught.value.message.startswith("fragment/SHA256SUMS")
    assert fragment in caught.value.message


def test_identical_duplicate_lines_collapse() -> None:
    line = "ab" * 32 + "  a\n"
    assert len(parse_checksums(line + line, "SUMS")) == 1
