"""Filesystem helpers: atomic writes and safe path handling."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def atomic_write(path: Path, data: bytes, *, mode: int = 0o644) -> None:
    """Write `data` to `path` so that readers see either the old file or the whole new one.

    The bytes go to a temporary file in the same directory, are flushed to disk, and replace
    the target in one rename; a crash leaves at most a stray temporary file, never a torn one.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp_name, mode)
        os.replace(tmp_name, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise


def relative_inside(path: Path, root: Path) -> Path | None:
    """`path` relative to `root` when it lies inside it (after resolving), else None."""
    try:
        return path.resolve().relative_to(root.resolve())
    except ValueError:
        return None


def reached_through_symlink(path: Path, root: Path) -> bool:
    """True when `path` or any directory between `root` and it is a symbolic link."""
    current = path
    root_abs = root.absolute()
    while True:
        if current.is_symlink():
            return True
        if current.absolute() == root_abs or current.parent == current:
            return False
        current = current.parent


@contextmanager
def exclusive(path: Path, refusal: str) -> Iterator[None]:
    """Hold `path`'s lock for the block (the kernel drops it when the process dies), or refuse at
    once (a UsageError saying `refusal`) when another process holds it."""
    import fcntl

    from pipeline_kit.errors import UsageError

    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+b") as lock:
        try:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise UsageError(refusal) from None
        yield
