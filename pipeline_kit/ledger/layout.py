"""How a ledger line is laid out: what a writer frames and what the chain check reads.

A line starts at fixed offsets with its hash, the previous hash and its sequence number:
`{"hash":"<H>","prev":"<P>","seq":<N>,<the other fields, canonical JSON>}`, and H is the sha256
of the stored bytes after `"hash":"<H>",` (with the opening brace). Nothing here needs the entry
models: the chain over stored lines is checked from this layout alone.
"""

from __future__ import annotations

import json
from typing import Any

GENESIS = "0" * 64

# A line starts with its hash, the previous hash and its sequence number at fixed places; the hash
# covers '{' and everything after '{"hash":"<H>",'.
HASH_FIELD = b'{"hash":"'


def framed(digest: str, hashed: bytes) -> bytes:
    """The stored line: the hash first, then the hashed body (its opening brace shared)."""
    return HASH_FIELD + digest.encode() + b'",' + hashed[1:] + b"\n"


def body(fields: dict[str, Any], seq: int, prev: str) -> bytes:
    """What the hash covers: previous hash and sequence number first, then the draft's fields."""
    rest = json.dumps(fields, sort_keys=True, separators=(",", ":"))
    return f'{{"prev":"{prev}","seq":{seq},{rest[1:]}'.encode()
