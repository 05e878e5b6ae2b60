"""Streaming SHA-256 and the `sha256sum` checksum-file format.

Files are hashed in fixed-size chunks read into a few reusable buffers, so memory stays
constant whatever the file size. Both the read and hashlib's update (OpenSSL, with the CPU's SHA
instructions where it has them) release the GIL, so for large files one thread reads the next
chunk while another hashes the last: throughput is that of the slower of the two, not their
sum, which is what lets it keep up with `openssl dgst`.
"""

from __future__ import annotations

import hashlib
import io
import os
import queue
import re
import threading
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from pipeline_kit.errors import InputError

CHUNK_SIZE = 1 << 20
PIPELINE_BUFFERS = 4
# Below this size a second thread costs more than it saves.
PIPELINE_THRESHOLD = 8 * CHUNK_SIZE
HEX_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_SUMS_LINE = re.compile(r"^(?P<digest>[0-9a-fA-F]{64}) (?P<mode>[ *])(?P<name>.+)$")


@dataclass(frozen=True)
class FileDigest:
    """A file's sha256 (lowercase hex) and size in bytes."""

    sha256: str
    size: int


def hash_file(path: Path) -> FileDigest:
    """SHA-256 and size of a file, streamed in constant memory."""
    hasher = hashlib.sha256()
    with open(path, "rb", buffering=0) as handle:
        if os.fstat(handle.fileno()).st_size < PIPELINE_THRESHOLD:
            size = _hash_serial(handle, hasher)
        else:
            size = _hash_pipelined(handle, hasher)
    return FileDigest(hasher.hexdigest(), size)


def _hash_serial(handle: io.FileIO, hasher: Any) -> int:
    view = memoryview(bytearray(CHUNK_SIZE))
    size = 0
    while count := handle.readinto(view):
        hasher.update(view[:count])
        size += count
    return size


def _hash_pipelined(handle: io.FileIO, hasher: Any) -> int:
    """A reader thread fills free buffers while this thread hashes filled ones."""
    free: queue.Queue[bytearray] = queue.Queue()
    filled: queue.Queue[tuple[bytearray, int] | BaseException] = queue.Queue()
    for _ in range(PIPELINE_BUFFERS):
        free.put(bytearray(CHUNK_SIZE))

    def read() -> None:
        try:
            while True:
                buffer = free.get()
                count = handle.readinto(buffer)
                filled.put((buffer, count or 0))
                if not count:
                    return
        except BaseException as exc:  # handed to the hashing thread, which re-raises it
            filled.put(exc)

    reader = threading.Thread(target=read, name="pipeline-kit-hash-reader", daemon=True)
    reader.start()
    size = 0
    while True:
        item = filled.get()
        if isinstance(item, BaseException):
            raise item
        buffer, count = item
        if not count:
            break
        with memoryview(buffer) as view:
            hasher.update(view[:count])
        size += count
        free.put(buffer)
    reader.join()
    return size


def cpu_workers(items: int) -> int:
    """Threads for `items` pieces of work that hash (hashlib releases the GIL): one per core."""
    return max(1, min(items, os.cpu_count() or 1, 8))


def hash_files(paths: Sequence[Path]) -> list[FileDigest]:
    """Hash several files, in parallel when there is more than one; results in input order."""
    if len(paths) <= 1:
        return [hash_file(path) for path in paths]
    with ThreadPoolExecutor(max_workers=cpu_workers(len(paths))) as pool:
        return list(pool.map(hash_file, paths))


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def check_subject_name(name: str) -> str | None:
    """Why `name` cannot be a subject name (a relative POSIX path), or None when it can."""
    if not name or name != name.strip():
        return "is empty or has leading/trailing whitespace"
    # control characters (ESC, BEL, newlines) would be written raw into SHA256SUMS and terminals
    if "\\" in name or any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in name):
        return "contains a control character or a backslash"
    pure = PurePosixPath(name)
    if pure.is_absolute() or ".." in pure.parts or name.startswith("./"):
        return "must be a relative path inside the working directory"
    return None


def output_glob_problem(pattern: str) -> str | None:
    """Why `pattern` cannot select build outputs (it must stay inside the project), or None."""
    if not pattern or PurePosixPath(pattern).is_absolute() or ".." in PurePosixPath(pattern).parts:
        return "must be relative to the project, inside it"
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
