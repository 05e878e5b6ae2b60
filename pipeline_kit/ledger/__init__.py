"""Ledger backends: `file` (default) and `git`, behind one interface."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from pipeline_kit.ledger.chain import verify_chain
from pipeline_kit.ledger.file import FileLedger
from pipeline_kit.ledger.git import GitLedger
from pipeline_kit.ledger.interface import Guard, Ledger
from pipeline_kit.ledger.layout import GENESIS

if TYPE_CHECKING:  # not at run time: checking a bare ledger's chain needs no models
    from pipeline_kit.config import LedgerConfig
    from pipeline_kit.ledger.entries import Draft, Entry, Kind, arrived, head, in_flight

# The entry models and what reads them, loaded when first used (PEP 562): `ledger verify` checks a
# chain by hashing bytes and never needs them.
_ENTRIES = frozenset({"Draft", "Entry", "Kind", "arrived", "head", "in_flight"})


def __getattr__(name: str) -> object:
    if name in _ENTRIES:
        from pipeline_kit.ledger import entries

        return getattr(entries, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "DEFAULT_FILE",
    "GENESIS",
    "Draft",
    "Entry",
    "FileLedger",
    "GitLedger",
    "Guard",
    "Kind",
    "Ledger",
    "arrived",
    "default_ledger",
    "head",
    "in_flight",
    "open_ledger",
    "verify_chain",
]

# Beside the evidence dir, never inside it: the evidence dir is the build job's artifact, and a
# build step must not be able to plant a promotion history in it.
DEFAULT_FILE = ".pipeline-kit-ledger/ledger.jsonl"


def open_ledger(config: LedgerConfig, workdir: Path) -> Ledger:
    if config.backend == "git":
        # The token is looked up now but required only by a push (`append`): reading the ledger
        # (a dry run, a plan, a report) works without it wherever the remote lets one fetch.
        token = os.environ.get(config.token_variable) if config.token_variable else None
        return GitLedger(workdir, config.remote, config.ref, token=token or None, token_variable=config.token_variable)
    if config.path is None:
        return default_ledger(workdir)
    path = Path(config.path)
    return FileLedger(path if path.is_absolute() else workdir / path)


def default_ledger(workdir: Path) -> Ledger:
    """The ledger of a project without a `ledger:` setting."""
    return FileLedger(workdir / DEFAULT_FILE)
