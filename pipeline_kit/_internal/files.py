"""Reading structured input files with errors that name the file and the position."""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path
from typing import Any

from pipeline_kit.errors import InputError, UsageError

MAX_INPUT_BYTES = 256 << 20  # a lockfile larger than this is not a lockfile
# far above any SBOM, provenance or bundle the kit writes; evidence travels inside the ledger
MAX_EVIDENCE_BYTES = 64 << 20
CONFIG_NAMES = ("pipeline-kit.yml", "pipeline-kit.yaml")  # the project's config, first found wins


def find_config(directory: Path) -> Path | None:
    """The project's config file in `directory` (found without loading the config's models)."""
    return next((directory / name for name in CONFIG_NAMES if (directory / name).is_file()), None)


def read_text(path: Path) -> str:
    """A regular file's text, at most MAX_INPUT_BYTES read: a device (/dev/zero), a FIFO or
    /proc file reports no useful size, so the bound is on bytes actually read."""
    try:
        info = path.stat()
        if not stat.S_ISREG(info.st_mode):
            raise InputError(path, None, "not a regular file")
        with path.open("rb") as handle:
            # a read of the bound allocates the bound (256 MiB, tens of microseconds a file):
            # ask for the size the file says, and read on to the bound when it gives more
            # (a /proc file says 0, a file being written may have grown)
            data = handle.read(min(info.st_size, MAX_INPUT_BYTES) + 1)
            if len(data) > info.st_size:
                data += handle.read(MAX_INPUT_BYTES + 1 - len(data))
        if len(data) > MAX_INPUT_BYTES:
            raise InputError(path, None, "file is too large to be a dependency record")
        return data.decode("utf-8")
    except FileNotFoundError:
        raise UsageError(f"{path}: file not found") from None
    except IsADirectoryError:
        raise InputError(path, None, "is a directory, expected a file") from None
    except UnicodeDecodeError as exc:
        raise InputError(path, f"byte {exc.start}", "not valid UTF-8") from exc
    except OSError as exc:
        raise InputError(path, None, f"cannot read: {exc.strerror}") from exc


def read_regular(path: Path, limit: int = MAX_INPUT_BYTES) -> bytes:
    """A regular file's bytes, at most `limit` read. The last component must not be a link and
    nothing is opened that could block (a FIFO) or stream without end (a device)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except FileNotFoundError:
        raise UsageError(f"{path}: file not found") from None
    except OSError as exc:
        if os.path.islink(path):
            raise InputError(path, None, "is a symbolic link, expected a regular file") from None
        raise InputError(path, None, f"cannot read: {exc.strerror}") from exc
    if not stat.S_ISREG(os.fstat(fd).st_mode):  # before fdopen, which refuses a directory itself
        os.close(fd)
        raise InputError(path, None, "not a regular file")
    with os.fdopen(fd, "rb") as handle:
        data = handle.read(limit + 1)
    if len(data) > limit:
        raise InputError(path, None, f"larger than {limit} bytes")
    return data


def excerpt(text: str, limit: int = 40) -> str:
    """A short, escaped quotation of untrusted input for an error message."""
    shown = repr(text[:limit])
    return shown + ("..." if len(text) > limit else "")


def read_toml(path: Path) -> dict[str, Any]:
    # imported here: most commands (`migrations check` among them) read no TOML
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - exercised on 3.10 only
        import tomli as tomllib
    try:
        return tomllib.loads(read_text(path))
    except tomllib.TOMLDecodeError as exc:
        raise InputError(path, None, f"invalid TOML: {exc}") from exc
    except RecursionError:
        raise InputError(path, None, "nested too deeply to be a dependency record") from None


def read_json(path: Path) -> Any:
    try:
        data = json.loads(read_text(path))
        json.dumps(data)  # readers walk it recursively: a depth json.loads survives must not crash them
        return data
    except json.JSONDecodeError as exc:
        raise InputError(path, f"line {exc.lineno}", f"invalid JSON: {exc.msg}") from exc
    except (RecursionError, ValueError) as exc:  # ValueError: an integer of thousands of digits
        raise InputError(
            path, None, f"nested too deeply or too large to be a dependency record ({type(exc).__name__})"
        ) from None


def expect(value: Any, kind: type | tuple[type, ...], path: Path, where: str) -> Any:
    """`value` if it has the expected type, else an InputError naming the field."""
    if not isinstance(value, kind):
        names = " or ".join(k.__name__ for k in (kind if isinstance(kind, tuple) else (kind,)))
        got = type(value).__name__
        raise InputError(path, where, f"expected {_plain(names)}, got {_plain(got)}")
    return value


def _plain(names: str) -> str:
    return names.replace("dict", "a table").replace("list", "a list").replace("str", "a string")
