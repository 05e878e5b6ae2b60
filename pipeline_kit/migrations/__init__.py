"""Migration safety: classify migration files statement by statement (one module per SQL
dialect; PostgreSQL through libpg_query today) into expand / migrate / contract / neutral /
review, with lock risk, rule and the safe alternative."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pipeline_kit._internal.files import read_text
from pipeline_kit.config import MigrationsConfig
from pipeline_kit.digest import sha256_bytes
from pipeline_kit.errors import UsageError
from pipeline_kit.evidence import MIGRATIONS_FILE, EvidenceDir
from pipeline_kit.migrations.interface import Dialect, Finding
from pipeline_kit.migrations.postgres import Postgres
from pipeline_kit.migrations.sqlglot_dialects import MySQL, SQLite
from pipeline_kit.models import Release

__all__ = ["DIALECTS", "Finding", "check_paths", "record_migrations"]

DIALECTS: dict[str, type[Dialect]] = {dialect.name: dialect for dialect in (Postgres, MySQL, SQLite)}


def _order(path: Path) -> tuple[tuple[int, str], ...]:
    """Version order, as the tools apply them: Flyway's V2__ before V10__, golang-migrate's and
    Alembic-style numeric prefixes, then names (numbers compared as numbers)."""
    return tuple((int(part), "") if part.isdigit() else (-1, part) for part in re.split(r"(\d+)", path.name))


def migration_files(paths: Sequence[Path]) -> list[Path]:
    """The forward migrations named, or found under the directories named, in the order the
    tools apply them. Down migrations (golang-migrate's `*.down.sql`, Flyway's `U*__` undo
    scripts) are not forward steps and are left out."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            candidates = [p for p in path.rglob("*.sql") if p.is_file()]
            forward = [p for p in candidates if not p.name.endswith(".down.sql") and not re.match(r"U\d", p.name)]
            found.extend(sorted(forward, key=lambda p: (p.parent.as_posix(), _order(p))))
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


# A contract migration names the expand migration it follows: `-- pipeline-kit: expand-step FILE`
# (FILE as the record names it, relative to the project). The migrations gate lets it through once
# every environment runs a release whose signed record has FILE.
EXPAND_STEP = re.compile(r"--\s*pipeline-kit:\s*expand-step\s+(\S+)")


def record_migrations(config: MigrationsConfig, evidence: EvidenceDir, release: Release, workdir: Path) -> Release:
    """Classify the release's migration files into `migrations.json` (each file's path relative to
    the project and sha256, every statement's finding); provenance then signs its digest."""
    files = migration_files([workdir / path for path in config.paths])
    classifier = DIALECTS[config.dialect]()
    record: dict[str, Any] = {"dialect": config.dialect, "files": [], "statements": []}
    for path in files:
        text = read_text(path)
        name = path.relative_to(workdir).as_posix()
        record["files"].append({"path": name, "sha256": sha256_bytes(text.encode())})
        record["statements"] += [finding.as_dict() for finding in classifier.classify(text, name)]
        declared = EXPAND_STEP.search(text)
        if declared:
            record.setdefault("expand_steps", {})[name] = declared.group(1)
    return evidence.record(release, MIGRATIONS_FILE, json.dumps(record, indent=2, sort_keys=True).encode())


def contract_steps(newer: dict[str, Any], older: dict[str, Any]) -> list[str]:
    """The contract statements `newer`'s migrations applied that `older`'s did not: the schema
    `older`'s code expects is gone after them."""
    known = {item["path"] for item in older.get("files", [])}
    return [
        f"{s['file']}:{s['line']} {s['rule']}"
        for s in newer.get("statements", [])
        if s["phase"] == "contract" and s["file"] not in known
    ]


def load_record(evidence: EvidenceDir) -> dict[str, Any]:
    path = evidence.path(MIGRATIONS_FILE)
    return json.loads(path.read_bytes()) if path.is_file() else {}
