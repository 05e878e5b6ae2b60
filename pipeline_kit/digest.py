"""Streaming SHA-256 and the `sha256sum` checksum-file format.

Files are hashed in fixed-size chunks read into one reusable buffer, so memory stays constant
whatever the file size, and hashlib (OpenSSL, SHA extensions where the CPU has them) releases
the GIL on each chunk, which lets several files hash in parallel threads.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from pipeline_kit.errors import InputError

CHUNK_SIZE = 1 << 20
HEX_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_SUMS_LINE = re.compile(r"^(?P<digest>[0-9a-fA-F]{64}) (?P<mode>[ *])(?P<name>.+)$")


@dataclass(frozen=True)
class FileDigest:
    """A file's sha256 (lowercase hex) and size in bytes."""

    sha256: str
    size: int


def hash_file(path: Path) -> FileDigest:
    """SHA-256 of a file, streamed through a fixed 1 MiB buffer."""
    hasher = hashlib.sha256()
    buffer = bytearray(CHUNK_SIZE)
    view = memoryview(buffer)
    size = 0
    with open(path, "rb", buffering=0) as handle:
        if hasattr(os, "posix_fadvise"):
            os.posix_fadvise(handle.fileno(), 0, 0, os.POSIX_FADV_SEQUENTIAL)
        while True:
            count = handle.readinto(view)
            if not count:
                break
            hasher.update(view[:count])
            size += count
    return FileDigest(hasher.hexdigest(), size)


def hash_files(paths: Sequence[Path]) -> list[FileDigest]:
    """Hash several files, in parallel when there is more than one; results in input order."""
    if len(paths) <= 1:
        return [hash_file(path) for path in paths]
    workers = min(len(paths), os.cpu_count() or 1, 8)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(hash_file, paths))


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def check_subject_name(name: str) -> str | None:
    """Why `name` cannot be a subject name (a relative POSIX path), or None when it can."""
    if not name or name != name.strip():
        return "is empty or has leading/trailing whitespace"
    if any(ch in name for ch in "\n\r\\\0"):
        return "contains a newline, backslash or NUL"
    pure = PurePosixPath(name)
    if pure.is_absolute() or ".." in pure.parts or name.startswith("./"):
        return "must be a relative path inside the working directory"
    return None


@dataclass(frozen=True)
class ChecksumLine:
    name: str
    sha256: str


def parse_checksums(text: str, source: Path | str) -> list[ChecksumLine]:
    """Parse `sha256sum` output (text or binary mode markers); any bad line is an InputError."""
    entries: list[ChecksumLine] = []
    seen: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        match = _SUMS_LINE.match(raw)
        if match is None:
            raise InputError(
                source,
                f"line {number}",
                "expected '<64 hex digits>  <file name>' (sha256sum format)",
            )
        name = match["name"]
        problem = check_subject_name(name)
        if problem:
            raise InputError(source, f"line {number}", f"file name {name!r} {problem}")
        digest = match["digest"].lower()
        if name in seen and seen[name] != digest:
            raise InputError(source, f"line {number}", f"{name!r} is listed twice with different digests")
        if name not in seen:
            seen[name] = digest
            entries.append(ChecksumLine(name, digest))
    if not entries:
        raise InputError(source, None, "no checksums found (empty file)")
    return entries


def format_checksums(entries: Iterable[ChecksumLine]) -> str:
    """`sha256sum` text-mode lines, so `sha256sum -c` accepts the file."""
    return "".join(f"{entry.sha256}  {entry.name}\n" for entry in entries)
