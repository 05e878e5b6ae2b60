"""What a migration classifier says about each statement: its phase in an expand / migrate /
contract change, its lock risk, the rule behind that, and the safe way to do it.

- expand: adds what the new release needs; the running (old) release keeps working.
- migrate: moves data (backfills); shapes unchanged.
- contract: removes or restricts what the old release still uses (drop, rename, NOT NULL, a new
  CHECK or UNIQUE, a type change): it may only run once no environment runs the old release.
- neutral: changes nothing an application sees (SET, BEGIN, VALIDATE, comments).
- review: the classifier cannot tell (unparsable, opaque, procedural): a human must look.
"""

from __future__ import annotations

import bisect
import re
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from json.encoder import encode_basestring_ascii as _json_string
from typing import Any, Literal

Phase = Literal["expand", "migrate", "contract", "neutral", "review"]
Lock = Literal["safe", "blocks", "n/a"]

# `-- pipeline-kit: allow <rule> because <why>`: a recorded waiver, never a silent one
WAIVER = re.compile(r"--\s*pipeline-kit:\s*allow\s+([a-z0-9-]+)\s+because\s+(\S.*?)\s*$", re.MULTILINE)


def waivers(text: str) -> dict[str, str]:
    """The waivers in `text` (the comments before one statement): rule -> reason. Most text has
    none: it is searched only when it names the kit (the pattern needs its name)."""
    return {m.group(1): m.group(2) for m in WAIVER.finditer(text)} if "pipeline-kit" in text else {}


@dataclass(frozen=True)
class Finding:
    file: str
    line: int  # 1-based, where the statement starts
    phase: Phase
    lock: Lock
    rule: str
    message: str
    fix: str = ""
    waived: str | None = field(default=None)  # the waiver's reason, when one names this rule

    @property
    def needs_attention(self) -> bool:
        """A contract step, a statement nobody could classify, or one that blocks, not waived."""
        return self.waived is None and (self.phase in ("contract", "review") or self.lock == "blocks")

    @property
    def severity(self) -> int:
        """How bad it is, lowest first: a contract step that also blocks (a table rewrite under an
        ACCESS EXCLUSIVE lock), then any other blocking statement, a contract step, a statement
        nobody could classify, and last a missing lock_timeout (a risk, not the change itself)."""
        if self.rule == "missing-lock-timeout":
            return 4
        if self.lock == "blocks":
            return 0 if self.phase == "contract" else 1
        return {"contract": 2, "review": 3}.get(self.phase, 4)

    def as_dict(self) -> dict[str, Any]:
        return dict(vars(self))  # every field is a plain value: no deep copy (asdict's) needed

    def as_json(self) -> str:
        """`json.dumps(self.as_dict())`, byte for byte, without the dict: the check's --json is
        mostly these (json's own string encoder; `line` an int, `waived` a string or null)."""
        waived = "null" if self.waived is None else _json_string(self.waived)
        return (
            f'{{"file": {_json_string(self.file)}, "line": {self.line:d}, "phase": {_json_string(self.phase)}, '
            f'"lock": {_json_string(self.lock)}, "rule": {_json_string(self.rule)}, '
            f'"message": {_json_string(self.message)}, "fix": {_json_string(self.fix)}, "waived": {waived}}}'
        )


def by_severity(findings: list[Finding]) -> list[Finding]:
    """The worst first; equally bad ones in the order they apply."""
    return sorted(findings, key=lambda finding: finding.severity)


class Dialect(ABC):
    name: str

    @abstractmethod
    def classify(self, sql: str, file: str) -> list[Finding]:
        """Every statement of `sql`, in order; unparsable text is one `review` finding."""


# blanks and comments (an unterminated block comment runs to the end)
_BLANK = re.compile(r"(?:\s+|--[^\n]*|/\*.*?(?:\*/|\Z))*", re.DOTALL)


def first_token(text: str, offset: int) -> int:
    """The offset of the first token at or after `offset`, skipping blanks and comments."""
    match = _BLANK.match(text, offset)
    return match.end() if match else min(offset, len(text))


class Lines:
    """Where statements start in one file's text: each offset's line by bisection over the
    newlines, found in one pass (counting from the start for every statement made a check
    quadratic in the file's size). libpg_query reports offsets in UTF-8 bytes, Python slices
    characters: `char` converts, in one pass too when the offsets ascend, as statements do."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.newlines = [match.start() for match in re.finditer("\n", text)]
        self.ascii = text.isascii()
        self._byte, self._char = 0, 0  # the last conversion, where the next one continues
        self._encoded = b"" if self.ascii else text.encode()

    def line(self, offset: int) -> int:
        """The 1-based line of the first token at or after character `offset`."""
        return self.line_at(first_token(self.text, offset))

    def line_at(self, offset: int) -> int:
        """The 1-based line character `offset` is on."""
        return bisect.bisect_left(self.newlines, offset) + 1

    def char(self, byte_offset: int) -> int:
        """The character offset of a UTF-8 `byte_offset` (one at a character's start)."""
        if self.ascii:
            return byte_offset
        if byte_offset < self._byte:
            self._byte, self._char = 0, 0
        self._char += len(self._encoded[self._byte : byte_offset].decode())
        self._byte = byte_offset
        return self._char
