"""The file backend: a local JSON-lines file, appended under an exclusive lock.

An append takes `flock` on a lock file beside the ledger, reads the last committed entry, drops
a torn tail left by a writer that was killed mid-append (a line without its newline was never
committed), writes the whole new line with one `write` and fsyncs before releasing the lock.
Readers ignore a torn tail, so a killed writer leaves a ledger that still verifies. Attachments
are files named by their sha256 in `<ledger>.d/` beside it, written before the entry naming them.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from pipeline_kit._internal.files import MAX_EVIDENCE_BYTES, read_regular
from pipeline_kit._internal.fs import atomic_write
from pipeline_kit.digest import HEX_SHA256, sha256_bytes
from pipeline_kit.errors import EnvironmentFailure, PipelineKitError, UsageError
from pipeline_kit.ledger.interface import Guard, Ledger

MAX_LEDGER_BYTES = 4 << 30  # millions of entries; beyond that the ledger needs archiving, not reading

if TYPE_CHECKING:
    from pipeline_kit.ledger.entries import Draft, Entry


class FileLedger(Ledger):
    def __init__(self, path: Path) -> None:
        self.path = path

    def describe(self) -> str:
        return str(self.path)

    def nothing_here(self) -> str:
        if not self.path.exists() and not self.path.is_symlink():
            return f"no ledger: {self.path} does not exist"
        return super().nothing_here()

    def lines(self) -> list[bytes]:
        if self.path.is_dir():
            raise UsageError(f"{self.path}: the ledger path is a directory, expected a file")
        if not self.path.exists() and not self.path.is_symlink():
            return []
        try:  # a regular file, bounded: a FIFO or a device in its place would hang every job
            data = read_regular(self.path, MAX_LEDGER_BYTES)
        except OSError as exc:
            raise EnvironmentFailure(f"{self.path}: cannot read the ledger: {exc.strerror}") from exc
        return _committed(data).splitlines()

    @contextmanager
    def _locked(self) -> Iterator[None]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        lock_path = self.path.with_name(self.path.name + ".lock")
        try:
            with open(lock_path, "a+b") as lock:
                fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
                try:
                    yield
                finally:
                    fcntl.flock(lock.fileno(), fcntl.LOCK_UN)
        except OSError as exc:
            raise EnvironmentFailure(f"{self.path}: cannot lock the ledger: {exc.strerror}") from exc

    @property
    def _attachments(self) -> Path:
        return self.path.with_name(self.path.name + ".d")

    def attachment(self, sha256: str) -> bytes | None:
        if not HEX_SHA256.fullmatch(sha256):
            return None
        try:
            return read_regular(self._attachments / sha256, MAX_EVIDENCE_BYTES)
        except (OSError, PipelineKitError):  # absent, or not a file the kit wrote: not there
            return None

    def append(self, draft: Draft, attachments: Sequence[bytes] = (), *, guard: Guard | None = None) -> Entry:
        from pipeline_kit.ledger.entries import next_entry, parse_lines

        for data in attachments:
            atomic_write(self._attachments / sha256_bytes(data), data)
        with self._locked():
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
            try:
                size, last_line = _tail(fd)
                if size != os.fstat(fd).st_size:
                    os.ftruncate(fd, size)  # a writer died mid-line: that line was never committed
                if guard is not None:  # under the lock: no append can come between its check and ours
                    guard(parse_lines(os.pread(fd, size, 0).splitlines(), self.describe()))
                entry = next_entry(draft, last_line, self.describe())
                line = entry.line()
                if os.write(fd, line) != len(line):
                    raise EnvironmentFailure(f"{self.path}: short write while appending to the ledger")
                os.fsync(fd)
            finally:
                os.close(fd)
        return entry


def _tail(fd: int) -> tuple[int, bytes | None]:
    """(length of the committed part, its last line), reading only the end of the file."""
    size = os.fstat(fd).st_size
    window = 1 << 16
    while True:
        start = max(0, size - window)
        data = os.pread(fd, size - start, start)
        end = data.rfind(b"\n")
        if end >= 0:
            begin = data.rfind(b"\n", 0, end) + 1  # 0 when no earlier newline in the window
            if begin > 0 or start == 0:
                return start + end + 1, data[begin:end]
        elif start == 0:
            return 0, None
        window *= 4


def _committed(data: bytes) -> bytes:
    """`data` up to and including its last newline."""
    end = data.rfind(b"\n")
    return data[: end + 1] if end >= 0 else b""
