"""Plain-text rendering shared by the commands."""

from __future__ import annotations

import json
import textwrap
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import click

from pipeline_kit.cli import terminal_columns

if TYPE_CHECKING:
    from pipeline_kit.sbom import SourceResult


def printable(value: object, limit: int = 500) -> str:
    """Recorded text as one safe line: control characters (newlines that would start a workflow
    command like `::error::`, terminal escapes) shown escaped, and bounded in length."""
    text = str(value)
    if len(text) > limit:
        text = text[:limit] + "..."
    if text.isprintable():  # nearly every cell: no need to look at each character
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """Aligned columns; on a terminal (or with COLUMNS set) the last column wraps to fit its width,
    continued under itself. Logs, which scroll sideways, keep one line per row."""
    cells = [[str(c) for c in headers]] + [["" if c is None else printable(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    room = terminal_columns()
    if room is not None:  # the last column gets what the others leave, at least 30 characters
        widths[-1] = min(widths[-1], max(30, room - sum(widths[:-1]) - 2 * (len(widths) - 1)))
    lines = []
    for row in cells:
        long = len(row[-1]) > widths[-1]
        last = (textwrap.wrap(row[-1], widths[-1], break_on_hyphens=False) or [""]) if long else [row[-1]]
        indent = "  ".join(" " * w for w in widths[:-1]) + "  " if len(widths) > 1 else ""
        lines.append("  ".join([*(c.ljust(w) for c, w in zip(row[:-1], widths, strict=False)), last[0]]).rstrip())
        lines.extend(indent + more for more in last[1:])
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def subjects_table(subjects: Iterable[tuple[str, str, int | None]]) -> str:
    """(name, sha256, size) rows as the subject table every command prints."""
    return table(["subject", "sha256", "size"], [(n, d, human_size(s)) for n, d, s in subjects])


def sources_table(results: Sequence[SourceResult]) -> str:
    """What each SBOM source contributed; no source at all is said in words (an SBOM of the
    artifact alone)."""
    if not results:
        from pipeline_kit.sbom import ARTIFACT_ALONE

        return ARTIFACT_ALONE
    return table(["source", "kind", "packages"], [(r.source, r.kind, len(r.packages)) for r in results])


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A GitHub-flavoured Markdown table (for job summaries). A cell is text, never Markdown of its
    own: what a probe, a server or a ledger says can make no link, image, HTML or code span, nor
    leave its cell (`_` stays: intraword, as in file names, it emphasises nothing)."""

    def cell(value: object) -> str:
        return "" if value is None else _escaped(value, "\\`*[]|~")

    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def markdown_text(value: object) -> str:
    """Recorded text as one line of Markdown that renders as that text: no link, image, emphasis,
    code span or HTML of its own."""
    return _escaped(value, "\\`*_[]()!|#~")


def _escaped(value: object, special: str) -> str:
    """`value` as one printable line, HTML's characters as entities, `special` backslash-escaped."""
    text = printable(value).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return "".join(f"\\{c}" if c in special else c for c in text)


def emit_json(value: Any, *, indent: int | None = 2) -> None:
    """`value` as JSON; `indent=None` for long outputs (one line, through json's C encoder)."""
    click.echo(json.dumps(value, indent=indent, default=str))


def human_size(size: int | None) -> str:
    if size is None:
        return "?"
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return str(size)


def heading(text: str) -> str:
    return click.style(text, bold=True)
