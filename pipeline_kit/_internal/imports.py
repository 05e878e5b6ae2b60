"""Importing ahead: a heavy library loads while the process waits on something else."""

from __future__ import annotations

import importlib
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress


@contextmanager
def importing_meanwhile(*modules: str) -> Iterator[None]:
    """Import `modules` in a background thread while the body runs, finished by its end: the
    tenths of a second they take overlap with the body's waits (a child process, the disk)
    instead of following them. A failed import is left to the code that needs the module, which
    imports it again and reports the error its own way (no thread prints a traceback)."""

    def load() -> None:
        for module in modules:
            with suppress(Exception):  # reported by the import that needs it
                importlib.import_module(module)

    thread = threading.Thread(target=load, name="import-ahead", daemon=True)
    thread.start()
    try:
        yield
    finally:
        thread.join()
