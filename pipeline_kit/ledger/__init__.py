"""Ledger backends: `file` (default) and `git`, behind one interface."""

from __future__ import annotations

from pathlib import Path

from pipeline_kit.config import LedgerConfig
from pipeline_kit.ledger.file import FileLedger
from pipeline_kit.ledger.git import GitLedger
from pipeline_kit.ledger.interface import GENESIS, Draft, Entry, Kind, Ledger, arrived, in_flight, verify_chain

__all__ = [
    "GENESIS",
    "Draft",
    "Entry",
    "FileLedger",
    "GitLedger",
    "Kind",
    "Ledger",
    "arrived",
    "in_flight",
    "open_ledger",
    "verify_chain",
]

DEFAULT_FILE = "ledger.jsonl"


def open_ledger(config: LedgerConfig, workdir: Path, evidence_root: Path) -> Ledger:
    if config.backend == "git":
        return GitLedger(workdir, config.remote, config.ref)
    if config.path:
        path = Path(config.path)
        return FileLedger(path if path.is_absolute() else workdir / path)
    return FileLedger(evidence_root / DEFAULT_FILE)
