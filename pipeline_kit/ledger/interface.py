"""The promotion ledger: append-only, hash-chained entries, one JSON object per line (the line
layout and the chain: `chain`; the entries: `entries`). Backends differ only in where the lines
are kept and how concurrent writers are serialised."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from pipeline_kit.ledger.chain import verify_chain

if TYPE_CHECKING:  # the models load when entries are read, not to check the chain
    from pipeline_kit.ledger.entries import Draft, Entry


# Called with every committed entry, under the backend's serialisation, before an append: raising
# (a PipelineKitError saying why) refuses the append. A compare-and-swap on what the ledger shows.
Guard = Callable[[Sequence["Entry"]], None]


class Ledger(ABC):
    """A ledger backend. Besides entries it keeps attachments (the signed VSAs an entry names),
    content-addressed by sha256, so a later job finds the proof beside the index."""

    @abstractmethod
    def lines(self) -> list[bytes]:
        """Every committed line, oldest first, as stored (not verified)."""

    def entries(self) -> list[Entry]:
        """Every committed entry, oldest first (not verified)."""
        from pipeline_kit.ledger.entries import parse_lines

        return parse_lines(self.lines(), self.describe())

    @abstractmethod
    def append(self, draft: Draft, attachments: Sequence[bytes] = (), *, guard: Guard | None = None) -> Entry:
        """Store the attachments, then chain and store one entry; concurrent appenders are
        serialised, none is lost. `guard` sees the entries the new one would follow, atomically
        with the append (so of two guarded appends that exclude each other, one is refused)."""

    @abstractmethod
    def attachment(self, sha256: str) -> bytes | None:
        """An attachment by its sha256, or None when this ledger has none by that digest."""

    @abstractmethod
    def describe(self) -> str:
        """Where the ledger lives, for messages."""

    def nothing_here(self) -> str:
        """What an empty read of this ledger means, for messages: no entries, or no ledger at all."""
        return f"{self.describe()} has no entries"

    def check(self) -> tuple[int, str]:
        """Verify the chain without parsing the entries: (seq, hash) of the last one."""
        return verify_chain(self.lines(), self.describe())

    def verify(self) -> list[Entry]:
        """Every entry, parsed, once the chain verifies."""
        from pipeline_kit.ledger.entries import parse_lines

        lines = self.lines()
        verify_chain(lines, self.describe())
        return parse_lines(lines, self.describe())
