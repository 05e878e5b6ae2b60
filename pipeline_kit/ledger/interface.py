"""The promotion ledger: append-only, hash-chained entries, one JSON object per line.

Each entry carries the hash of the one before it and its own hash over its canonical JSON, so
editing, dropping, inserting or reordering any entry breaks the chain at a place `verify` names.
Backends differ only in where the lines are kept and how concurrent writers are serialised.
"""

from __future__ import annotations

import hashlib
import json
from abc import ABC, abstractmethod
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Literal

from pydantic import Field, ValidationError

from pipeline_kit.errors import VerificationError
from pipeline_kit.models import Model

GENESIS = "0" * 64
Kind = Literal[
    "promoted",
    "denied",
    "waived",
    "deployed",
    "canary-deployed",  # deployed to a rollout's canary slot: not arrived until the rollout finishes
    "deploy-failed",
    "analysed",  # the analysis after a deploy: details.verdict, and the VSA when it passed
    "rolled-back",
    "rollback-failed",
    "annotated",
    "flag-killed",
    "flag-restored",
    "rollout",  # a rollout's progress: details.state started, step, paused, finished, failed, aborted
    "saga",  # a release plan's progress: details.state started, step-done, step-failed, compensated, ...
]


class Draft(Model):
    """What a writer supplies; the backend adds the sequence number and the chain."""

    kind: Kind
    environment: str
    release: str | None = None  # release id
    subjects: dict[str, str] = Field(default_factory=dict)  # name -> sha256
    actor: str
    time: datetime
    reason: str | None = None
    details: dict[str, Any] = Field(default_factory=dict)


class Entry(Draft):
    seq: int
    prev: str
    hash: str

    @staticmethod
    def chain(draft: Draft, seq: int, prev: str) -> Entry:
        body = {**draft.model_dump(mode="json", by_alias=True), "seq": seq, "prev": prev}
        return Entry.model_validate({**body, "hash": entry_hash(body)})

    def line(self) -> bytes:
        return (
            json.dumps(self.model_dump(mode="json", by_alias=True), sort_keys=True, separators=(",", ":")) + "\n"
        ).encode()


def head(entries: Sequence[Entry]) -> tuple[int, str]:
    """(seq, hash) of the last entry: what a signed decision commits to (GENESIS when empty)."""
    return (entries[-1].seq, entries[-1].hash) if entries else (0, GENESIS)


def arrived(entry: Entry) -> bool:
    """Whether `entry` is a release arriving in its environment: a finished deploy, or a promotion
    with nothing to deploy. A promotion whose deploy is pending has not arrived (a crash between
    the decision and the deploy must not count)."""
    if entry.kind == "deployed":
        return True
    return entry.kind in ("promoted", "waived") and entry.details.get("deploy", "none") == "none"


def in_flight(entries: Sequence[Entry], environment: str) -> list[Entry]:
    """Promotions to `environment` whose deploy neither succeeded nor failed (yet, or ever)."""
    pending: dict[str | None, Entry] = {}
    for entry in entries:
        if entry.environment != environment:
            continue
        if entry.kind in ("promoted", "waived") and entry.details.get("deploy") == "pending":
            pending[entry.release] = entry
        elif entry.kind in ("deployed", "deploy-failed") or (
            entry.kind == "rollout" and entry.details.get("state") in ("failed", "aborted")
        ):
            pending.pop(entry.release, None)
    return list(pending.values())


def entry_hash(body: dict[str, Any]) -> str:
    """sha256 over the canonical JSON of every field but `hash` itself."""
    canonical = json.dumps({k: v for k, v in body.items() if k != "hash"}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def parse_lines(lines: Sequence[bytes], source: str) -> list[Entry]:
    """Entries from complete lines (a torn, newline-less tail is the caller's to drop)."""
    entries = []
    for number, line in enumerate(lines, start=1):
        try:
            entries.append(Entry.model_validate_json(line))
        except ValidationError as exc:  # noqa: PERF203 - the first bad line ends the loop
            raise VerificationError(f"{source}: line {number}: not a ledger entry ({exc.errors()[0]['msg']})") from exc
    return entries


def verify_chain(entries: Sequence[Entry], source: str) -> None:
    """Raise VerificationError naming the first entry that breaks the chain."""
    prev = GENESIS
    for position, entry in enumerate(entries, start=1):
        body = entry.model_dump(mode="json", by_alias=True)
        if entry_hash(body) != entry.hash:
            raise VerificationError(
                f"{source}: line {position} (seq {entry.seq}) was edited: its hash does not match its content"
            )
        if entry.seq != position:
            raise VerificationError(
                f"{source}: line {position} has seq {entry.seq}: an entry was dropped, inserted or reordered before it"
            )
        if entry.prev != prev:
            raise VerificationError(
                f"{source}: line {position} (seq {entry.seq}) does not follow the entry before it "
                "(dropped, inserted or reordered)"
            )
        prev = entry.hash


class Ledger(ABC):
    """A ledger backend. Besides entries it keeps attachments (the signed VSAs an entry names),
    content-addressed by sha256, so a later job finds the proof beside the index."""

    @abstractmethod
    def entries(self) -> list[Entry]:
        """Every committed entry, oldest first (not verified)."""

    @abstractmethod
    def append(self, draft: Draft, attachments: Sequence[bytes] = ()) -> Entry:
        """Store the attachments, then chain and store one entry; concurrent appenders are
        serialised, none is lost."""

    @abstractmethod
    def attachment(self, sha256: str) -> bytes | None:
        """An attachment by its sha256, or None when this ledger has none by that digest."""

    @abstractmethod
    def describe(self) -> str:
        """Where the ledger lives, for messages."""

    def verify(self) -> list[Entry]:
        entries = self.entries()
        verify_chain(entries, self.describe())
        return entries
