"""The promotion ledger: append-only, hash-chained entries, one JSON object per line.

Each entry carries the hash of the one before it and its own hash over its content, so editing,
dropping, inserting or reordering any entry breaks the chain at a place `verify` names. Backends
differ only in where the lines are kept and how concurrent writers are serialised.

A line starts at fixed offsets with its hash, the previous hash and its sequence number:
`{"hash":"<H>","prev":"<P>","seq":<N>,<the other fields, canonical JSON>}`, and H is the sha256
of the stored bytes after `"hash":"<H>",` (with the opening brace). So the chain is checked by
hashing bytes, without parsing JSON: 100,000 entries verify in a fraction of a second. Lines
written before 0.2 (sorted keys, H over the canonical JSON of every other field) still verify,
the slow way, and a chain may continue from them.
"""

from __future__ import annotations

import hashlib
import json
import re
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
        fields = draft.model_dump(mode="json", by_alias=True)
        digest = hashlib.sha256(_body(fields, seq, prev)).hexdigest()
        return Entry.model_validate({**fields, "seq": seq, "prev": prev, "hash": digest})

    def line(self) -> bytes:
        fields = self.model_dump(mode="json", by_alias=True, exclude={"seq", "prev", "hash"})
        return _HASH_FIELD + self.hash.encode() + b'",' + _body(fields, self.seq, self.prev)[1:] + b"\n"


# A line starts with its hash, the previous hash and its sequence number at fixed places; the hash
# covers '{' and everything after '{"hash":"<H>",'.
_HASH_FIELD = b'{"hash":"'
# Any 64 bytes match a hash here (3x faster than a hex class): a hash must equal the sha256 hex
# computed, a prev the hash before it.
_FRAMING = re.compile(rb'\{"hash":"(.{64})","prev":"(.{64})","seq":([1-9][0-9]{0,17}),', re.DOTALL)
_HASHED_FROM = 75


def _body(fields: dict[str, Any], seq: int, prev: str) -> bytes:
    """What the hash covers: previous hash and sequence number first, then the draft's fields."""
    rest = json.dumps(fields, sort_keys=True, separators=(",", ":"))
    return f'{{"prev":"{prev}","seq":{seq},{rest[1:]}'.encode()


def _unframed(line: bytes, position: int, source: str) -> tuple[bytes, bytes, int, bool]:
    """(hash, prev, seq, whether the hash matches) of a line in the pre-0.2 layout, parsed."""
    if line.startswith(_HASH_FIELD):
        raise VerificationError(f"{source}: line {position} was edited: it is not in the ledger's line layout")
    entry = _parse(line, position, source)
    return entry.hash.encode(), entry.prev.encode(), entry.seq, _legacy_hash(entry) == entry.hash


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
    if line.startswith(_HASH_FIELD) and not line.startswith(framing):
        # a second "hash", "prev" or "seq" later in the line would be what the parser keeps
        raise VerificationError(f"{source}: line {number}: not a ledger entry (a field appears twice)")
    return entry


def parse_lines(lines: Sequence[bytes], source: str) -> list[Entry]:
    """Entries from complete lines (a torn, newline-less tail is the caller's to drop)."""
    return [_parse(line, number, source) for number, line in enumerate(lines, start=1)]


def verify_chain(lines: Sequence[bytes], source: str) -> tuple[int, str]:
    """Check the chain over the stored lines; (seq, hash) of the last entry. Raise
    VerificationError naming the first entry that breaks it."""
    prev = GENESIS.encode()
    sha256 = hashlib.sha256
    for position, line in enumerate(lines, start=1):
        # the whole loop is the cost of `ledger verify`: no call, no parse for a framed line
        framed = _FRAMING.match(line)
        if framed is None:
            digest, entry_prev, seq, intact = _unframed(line, position, source)
        else:
            digest, entry_prev, number = framed.groups()
            seq, intact = int(number), sha256(b"{" + line[_HASHED_FROM:]).hexdigest().encode() == digest
        if not intact:
            raise VerificationError(
                f"{source}: line {position} (seq {seq}) was edited: its hash does not match its content"
            )
        if seq != position:
            raise VerificationError(
                f"{source}: line {position} has seq {seq}: an entry was dropped, inserted or reordered before it"
            )
        if entry_prev != prev:
            raise VerificationError(
                f"{source}: line {position} (seq {seq}) does not follow the entry before it "
                "(dropped, inserted or reordered)"
            )
        prev = digest
    return len(lines), prev.decode()


class Ledger(ABC):
    """A ledger backend. Besides entries it keeps attachments (the signed VSAs an entry names),
    content-addressed by sha256, so a later job finds the proof beside the index."""

    @abstractmethod
    def lines(self) -> list[bytes]:
        """Every committed line, oldest first, as stored (not verified)."""

    def entries(self) -> list[Entry]:
        """Every committed entry, oldest first (not verified)."""
        return parse_lines(self.lines(), self.describe())

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

    def check(self) -> tuple[int, str]:
        """Verify the chain without parsing the entries: (seq, hash) of the last one."""
        return verify_chain(self.lines(), self.describe())

    def verify(self) -> list[Entry]:
        """Every entry, parsed, once the chain verifies."""
        lines = self.lines()
        verify_chain(lines, self.describe())
        return parse_lines(lines, self.describe())
