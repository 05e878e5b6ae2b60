"""Ledger backends: `file` (default) and `git`, behind one interface."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from pipeline_kit.errors import EnvironmentFailure
from pipeline_kit.ledger.file import FileLedger
from pipeline_kit.ledger.git import GitLedger
from pipeline_kit.ledger.interface import (
    GENESIS,
    Draft,
    Entry,
    Kind,
    Ledger,
    arrived,
    head,
    in_flight,
    verify_chain,
)

if TYPE_CHECKING:  # not at run time: a project without a config needs no config models
    from pipeline_kit.config import LedgerConfig

__all__ = [
    "DEFAULT_FILE",
    "GENESIS",
    "Draft",
    "Entry",
    "FileLedger",
    "GitLedger",
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
        token = None
        if config.token_variable:
            token = os.environ.get(config.token_variable)
            if not token:
                raise EnvironmentFailure(
                    f"ledger.token-variable names {config.token_variable}, which is not set: "
                    "the git ledger cannot push without it"
                )
        return GitLedger(workdir, config.remote, config.ref, token=token)
    if config.path is None:
        return default_ledger(workdir)
    path = Path(config.path)
    return FileLedger(path if path.is_absolute() else workdir / path)


def default_ledger(workdir: Path) -> Ledger:
    """The ledger of a project without a `ledger:` setting."""
    return FileLedger(workdir / DEFAULT_FILE)
