"""Ledger entries: what a writer supplies (`Draft`), what the chain adds (`Entry`), and what the
history says (what arrived where, what is still in flight)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Literal

from pydantic import Field, ValidationError

from pipeline_kit.errors import VerificationError
from pipeline_kit.ledger.layout import GENESIS, HASH_FIELD, body, framed
from pipeline_kit.models import Model

Kind = Literal[
    "promoted",
    "reconciled",  # a promotion putting back the signed release after a drift (`drift --reconcile`)
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
    "rollout-step",  # a step of a rollout passed: its signed statement attached (what resume goes on from)
    "saga",  # a release plan's progress: details.state started, step-done, step-failed, compensated, ...
    "drift",  # `drift` found the environment not running the signed release (details.state), or that ended
    "contract-verified",  # a consumer's contracts verified against this release: the signed verifications attached
    "line-stopped",  # the org ledger: a stop-the-line statement attached (what it says is the signed statement's)
    "line-resumed",  # the org ledger: a resume-the-line statement attached
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
        fields = draft.model_dump(mode="json", by_alias=True)
        digest = hashlib.sha256(body(fields, seq, prev)).hexdigest()
        return Entry.model_validate({**fields, "seq": seq, "prev": prev, "hash": digest})

    def line(self) -> bytes:
        fields = self.model_dump(mode="json", by_alias=True, exclude={"seq", "prev", "hash"})
        return framed(self.hash, body(fields, self.seq, self.prev))


def legacy_framing(line: bytes, position: int, source: str) -> tuple[bytes, bytes, int, bool]:
    """(hash, prev, seq, whether the hash matches) of a line in the pre-0.2 layout, parsed."""
    if line.startswith(HASH_FIELD):
        raise VerificationError(f"{source}: line {position} was edited: it is not in the ledger's line layout")
    entry = _parse(line, position, source)
    return entry.hash.encode(), entry.prev.encode(), entry.seq, _legacy_hash(entry) == entry.hash


def head(entries: Sequence[Entry]) -> tuple[int, str]:
    """(seq, hash) of the last entry: what a signed decision commits to (GENESIS when empty)."""
    return (entries[-1].seq, entries[-1].hash) if entries else (0, GENESIS)


# The kinds of a decision to promote (its deploy pending, or nothing to deploy).
DECIDED = ("promoted", "reconciled", "waived")


def arrived(entry: Entry) -> bool:
    """Whether `entry` is a release arriving in its environment: a finished deploy, or a promotion
    with nothing to deploy. A promotion whose deploy is pending has not arrived (a crash between
    the decision and the deploy must not count)."""
    if entry.kind == "deployed" or (entry.kind == "rollout" and entry.details.get("state") == "finished"):
        return True  # a rollout arrives with its finish: its PASSED VSA attached to that entry
    return entry.kind in DECIDED and entry.details.get("deploy", "none") == "none"


def in_flight(entries: Sequence[Entry], environment: str) -> list[Entry]:
    """Promotions to `environment` whose deploy neither succeeded nor failed (yet, or ever)."""
    pending: dict[str | None, Entry] = {}
    for entry in entries:
        if entry.environment != environment:
            continue
        if entry.kind in DECIDED and entry.details.get("deploy") == "pending":
            pending[entry.release] = entry
        elif entry.kind in ("deployed", "deploy-failed") or (
            entry.kind == "rollout" and entry.details.get("state") in ("finished", "failed", "aborted")
        ):
            pending.pop(entry.release, None)
    return list(pending.values())


def _legacy_hash(entry: Entry) -> str:
    """The pre-0.2 hash: sha256 over the canonical JSON of every field but `hash` itself."""
    body = entry.model_dump(mode="json", by_alias=True, exclude={"hash"})
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def _parse(line: bytes, number: int, source: str) -> Entry:
    try:
        entry = Entry.model_validate_json(line)
    except ValidationError as exc:
        raise VerificationError(f"{source}: line {number}: not a ledger entry ({exc.errors()[0]['msg']})") from exc
    framing = f'{{"hash":"{entry.hash}","prev":"{entry.prev}","seq":{entry.seq},'.encode()
    if line.startswith(HASH_FIELD) and not line.startswith(framing):
        # a second "hash", "prev" or "seq" later in the line would be what the parser keeps
        raise VerificationError(f"{source}: line {number}: not a ledger entry (a field appears twice)")
    return entry


def parse_lines(lines: Sequence[bytes], source: str) -> list[Entry]:
    """Entries from complete lines (a torn, newline-less tail is the caller's to drop)."""
    return [_parse(line, number, source) for number, line in enumerate(lines, start=1)]


def next_entry(draft: Draft, last_line: bytes | None, source: str) -> Entry:
    """`draft` chained after the ledger's last committed line (the first entry after none)."""
    last = _parse(last_line, 1, source) if last_line else None
    return Entry.chain(draft, (last.seq if last else 0) + 1, last.hash if last else GENESIS)
