"""Migration layouts that are code, not SQL: Alembic and Django (Python), Rails (Ruby).

A layout reads a migration file into the operations it runs, each rendered as the SQL it runs,
in order. The whole file's SQL is then classified by the dialect as one script (so a `SET
lock_timeout` early on covers what follows, and the migration's transaction is seen), and each
finding is reported at the operation's line in the file. An operation the layout cannot render
(procedural code, arguments that are not literals, an operation it does not know) is `review`.
"""

from __future__ import annotations

import bisect
import re
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from pipeline_kit.migrations.interface import Dialect, Finding

# `# pipeline-kit: allow <rule> because <why>` just before an operation waives that rule for it
COMMENT_WAIVER = re.compile(r"#\s*(pipeline-kit:\s*allow\s+[a-z0-9-]+\s+because\s+\S.*?)\s*$")


class NotLiteral(Exception):
    """A value the migration file does not spell out (a variable, a call, code the kit does not read)."""


@dataclass(frozen=True)
class Operation:
    line: int  # 1-based, where the operation starts in the migration file
    label: str  # how the file names it, for messages (`op.drop_column`, `RemoveField`, ...)
    sql: str | None  # what it runs; None when that cannot be told from the file
    why: str = ""  # when sql is None: why not
    silent: bool = False  # the tool's own BEGIN / COMMIT around the operations: not reported


BEGIN = Operation(1, "BEGIN", "BEGIN", silent=True)
COMMIT = Operation(1, "COMMIT", "COMMIT", silent=True)


def in_transaction(operations: list[Operation], transactional: bool) -> tuple[Operation, ...]:
    """The operations as the tool runs them: inside one transaction unless the migration opts out."""
    return (BEGIN, *operations, COMMIT) if transactional else tuple(operations)


class Layout(ABC):
    name: str
    suffix: str  # the files it reads

    @abstractmethod
    def recognises(self, text: str) -> bool:
        """Whether `text` is a migration in this layout (a `.py` file may be neither)."""

    def order(self, files: list[Path]) -> list[Path]:
        """This layout's migrations (sorted by name) in the order the tool applies them."""
        return files

    @abstractmethod
    def read(self, text: str, path: Path) -> tuple[Operation, ...]:
        """The forward operations of the migration, in the order they run (with the tool's
        BEGIN and COMMIT around them)."""


def classify_operations(operations: Sequence[Operation], text: str, dialect: Dialect, file: str) -> list[Finding]:
    """Classify the operations' SQL as one script; report each finding at its operation's line."""
    lines = text.splitlines()
    script: list[str] = []
    origin: dict[int, Operation] = {}  # script line -> the operation it came from
    findings: list[Finding] = []
    for operation in operations:
        if operation.sql is None:
            findings.append(
                Finding(
                    file, operation.line, "review", "n/a", "opaque-operation", f"{operation.label}: {operation.why}"
                )
            )
            continue
        script += [f"-- {waiver}" for waiver in _waivers_before(lines, operation.line)]
        origin[len(script) + 1] = operation
        script.extend(operation.sql.rstrip().rstrip(";").splitlines())
        script[-1] += ";"
    if not origin:
        return findings
    starts = sorted(origin)
    for finding in dialect.classify("\n".join(script) + "\n", file):
        operation = origin[starts[bisect.bisect_right(starts, finding.line) - 1]]
        if operation.silent:
            continue
        findings.append(replace(finding, line=operation.line, message=f"{operation.label}: {finding.message}"))
    return sorted(findings, key=lambda f: f.line)


def _waivers_before(lines: list[str], line: int) -> list[str]:
    """The waiver comments on the lines just above `line` (1-based), nearest last."""
    found: list[str] = []
    index = line - 2
    while index >= 0 and lines[index].strip().startswith("#"):
        match = COMMENT_WAIVER.search(lines[index])
        if match:
            found.insert(0, match.group(1))
        index -= 1
    return found


def quote(name: str) -> str:
    """A SQL identifier, double-quoted."""
    return '"' + name.replace('"', '""') + '"'


def literal(value: object) -> str:
    """A SQL literal for a Python value from a migration file."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return "'" + str(value).replace("'", "''") + "'"


def column_sql(name: str, sql_type: str, *, nullable: bool, default: str | None, unique: bool = False) -> str:
    parts = [quote(name), sql_type]
    if default is not None:
        parts.append(f"DEFAULT {default}")
    if not nullable:
        parts.append("NOT NULL")
    if unique:
        parts.append("UNIQUE")
    return " ".join(parts)


def index_sql(name: str, table: str, columns: list[str], *, unique: bool, concurrently: bool) -> str:
    kind = "UNIQUE INDEX" if unique else "INDEX"
    how = " CONCURRENTLY" if concurrently else ""
    return f"CREATE {kind}{how} {quote(name)} ON {quote(table)} ({', '.join(map(quote, columns))})"
