"""Words for the output: a count with its noun in the right number."""

from __future__ import annotations


def counted(n: int, noun: str, plural: str | None = None) -> str:
    """`1 component`, `2 components`; `plural` for the others (`counted(n, "entry", "entries")`)."""
    return f"{n} {noun if n == 1 else plural or noun + 's'}"
