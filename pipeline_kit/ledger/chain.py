"""The ledger's chain: how the chain over stored lines is checked.

Each entry carries the hash of the one before it and its own hash over its content, so editing,
dropping, inserting or reordering any entry breaks the chain at a place `verify_chain` names.

A line starts at fixed offsets with its hash, the previous hash and its sequence number (the
layout is layout.py's), and its hash covers the stored bytes after them. So the chain is checked by
hashing bytes, without parsing JSON (or loading the entry models): 100,000 entries in a fraction
of a second. Lines written before 0.2 (sorted keys, the hash over the canonical JSON of every other
field) still verify, the slow way, and a chain may continue from them.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence

from pipeline_kit.errors import VerificationError
from pipeline_kit.ledger.layout import GENESIS

# The framing at the start of a line (see layout.py). Any 64 bytes match a hash here (3x faster
# than a hex class): a hash must equal the sha256 hex computed, a prev the hash before it.
_FRAMING = re.compile(rb'\{"hash":"(.{64})","prev":"(.{64})","seq":([1-9][0-9]{0,17}),', re.DOTALL)
_HASHED_FROM = 75


def verify_chain(lines: Sequence[bytes], source: str) -> tuple[int, str]:
    """Check the chain over the stored lines; (seq, hash) of the last entry. Raise
    VerificationError naming the first entry that breaks it."""
    prev = GENESIS.encode()
    sha256 = hashlib.sha256
    for position, line in enumerate(lines, start=1):
        # the whole loop is the cost of `ledger verify`: no call, no parse for a framed line
        framed = _FRAMING.match(line)
        if framed is None:
            from pipeline_kit.ledger.entries import legacy_framing

            digest, entry_prev, seq, intact = legacy_framing(line, position, source)
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
