"""Migration safety: classify migration files statement by statement (one module per SQL
dialect; PostgreSQL through libpg_query today) into expand / migrate / contract / neutral /
review, with lock risk, rule and the safe alternative."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from pipeline_kit._internal.files import read_text
from pipeline_kit.errors import UsageError
from pipeline_kit.migrations.interface import Dialect, Finding
from pipeline_kit.migrations.postgres import Postgres

__all__ = ["DIALECTS", "Finding", "check_paths"]

DIALECTS: dict[str, type[Dialect]] = {dialect.name: dialect for dialect in (Postgres,)}


def migration_files(paths: Sequence[Path]) -> list[Path]:
    """The .sql files named, or found under the directories named, in order (sorted by path:
    migration tools apply them in name order)."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found.extend(sorted(p for p in path.rglob("*.sql") if p.is_file()))
        elif path.is_file():
            found.append(path)
        else:
            raise UsageError(f"{path}: no such file or directory")
    return found


def check_paths(paths: Sequence[Path], dialect: str = "postgres") -> list[Finding]:
    if dialect not in DIALECTS:
        raise UsageError(f"unknown dialect {dialect!r}; known: {', '.join(DIALECTS)}")
    classifier = DIALECTS[dialect]()
    findings: list[Finding] = []
    for path in migration_files(paths):
        findings.extend(classifier.classify(read_text(path), str(path)))
    return findings
