"""Migration safety: classify migration files statement by statement (one module per SQL
dialect: PostgreSQL through libpg_query, MySQL and SQLite through sqlglot) into expand / migrate /
contract / neutral / review, with lock risk, rule and the safe alternative. Files are plain SQL
(Flyway, golang-migrate, any numbered directory) or code in a layout (one module each: Alembic,
Django, Rails), whose operations are rendered as the SQL they run and classified the same way."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline_kit._internal.files import read_text
from pipeline_kit.errors import UsageError, VerificationError
from pipeline_kit.migrations.interface import Dialect, Finding
from pipeline_kit.migrations.postgres import Postgres
from pipeline_kit.migrations.sqlglot_dialects import MySQL, SQLite

if TYPE_CHECKING:  # `migrations check` needs neither (pydantic's import is most of its start)
    from pipeline_kit.config import MigrationsConfig
    from pipeline_kit.evidence import EvidenceDir
    from pipeline_kit.migrations.layout import Layout
    from pipeline_kit.models import Release

__all__ = ["DIALECTS", "Checked", "Finding", "check_migrations", "check_paths", "record_migrations"]

DIALECTS: dict[str, type[Dialect]] = {dialect.name: dialect for dialect in (Postgres, MySQL, SQLite)}


@cache
def layouts() -> tuple[Layout, ...]:
    """The code layouts, one module each, imported when a file that is not SQL is found: a
    directory of SQL loads none of them."""
    from pipeline_kit.migrations.alembic import Alembic
    from pipeline_kit.migrations.django import Django
    from pipeline_kit.migrations.rails import Rails

    return (Alembic(), Django(), Rails())


def _order(path: Path) -> tuple[tuple[int, str], ...]:
    """Version order, as the tools apply them: Flyway's V2__ before V10__, golang-migrate's and
    Alembic-style numeric prefixes, then names (numbers compared as numbers)."""
    return tuple((int(part), "") if part.isdigit() else (-1, part) for part in re.split(r"(\d+)", path.name))


def layout_of(path: Path, text: str) -> Layout | None:
    """The code layout `path` is a migration in; None for SQL (and for code that is no migration)."""
    if path.suffix == ".sql":  # no layout reads SQL
        return None
    return next((layout for layout in layouts() if path.suffix == layout.suffix and layout.recognises(text)), None)


def _forward(path: Path) -> tuple[bool, Layout | None]:
    """Whether `path` is a forward migration, and the code layout it is one in (None for SQL).
    Down migrations (golang-migrate's `*.down.sql`, Flyway's `U*__` undo scripts) are not forward
    steps; code that is no migration (an Alembic `env.py`, a package's `__init__.py`) is none."""
    if path.suffix == ".sql":
        return not path.name.endswith(".down.sql") and not re.match(r"U\d", path.name), None
    if not any(path.suffix == layout.suffix for layout in layouts()):
        return False, None
    layout = layout_of(path, read_text(path))
    return layout is not None, layout


def migration_files(paths: Sequence[Path]) -> list[Path]:
    """The forward migrations named, or found under the directories named, in the order the
    tools apply them (see `_forward` for what is left out)."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            named = sorted((p for p in path.rglob("*") if p.is_file()), key=lambda p: (p.parent.as_posix(), _order(p)))
            layouts: dict[Path, Layout | None] = {}
            for candidate in named:
                forward, layout = _forward(candidate)
                if forward:
                    layouts[candidate] = layout
            found.extend(applied_order(layouts))
        elif path.is_file():
            found.append(path)
        else:
            raise UsageError(f"{path}: no such file or directory")
    return found


def applied_order(files: dict[Path, Layout | None]) -> list[Path]:
    """`files` (in name order, each with its layout) in the order the tools apply them: each
    layout orders its own files (Alembic by revision links); the others keep their places."""
    order = list(files)
    for layout in layouts() if any(files.values()) else ():
        mine = [path for path, found in files.items() if found is layout]
        if mine:
            slots = iter(layout.order(mine))
            order = [next(slots) if files[path] is layout else path for path in order]
    return order


def classify_file(path: Path, text: str, classifier: Dialect, name: str) -> list[Finding]:
    """Every statement of one migration file: SQL as it is, code through its layout."""
    layout = layout_of(path, text)
    if layout is None:
        return classifier.classify(text, name)
    from pipeline_kit.migrations.layout import classify_operations

    try:
        operations = layout.read(text, path)
    except SyntaxError as exc:
        return [
            Finding(
                name,
                exc.lineno or 1,
                "review",
                "n/a",
                "unparsable",
                f"not {layout.name} code the parser accepts: {exc.msg}",
            )
        ]
    return classify_operations(operations, text, classifier, name)


def _named(path: Path, base: Path | None) -> str:
    """`path` as findings name it: relative to `base` when under it (pathlib's `relative_to`
    is slow for a call made for every file: once, not twice)."""
    if base:
        try:
            return path.relative_to(base).as_posix()
        except ValueError:  # not under it
            pass
    return str(path)


# A contract migration names the expand migration it follows: `-- pipeline-kit: expand-step FILE`
# (`#` in Python and Ruby; FILE as the record names it, relative to the project). The migrations
# gate lets it through once every environment runs a release whose signed record has FILE.
EXPAND_STEP = re.compile(r"(?:--|#)\s*pipeline-kit:\s*expand-step\s+(\S+)")


@dataclass(frozen=True)
class Checked:
    findings: list[Finding]  # every statement, file by file in the order they apply
    expand_steps: dict[str, str]  # each file that declares the expand step it follows -> that step


def check_migrations(paths: Sequence[Path], dialect: str = "postgres", base: Path | None = None) -> Checked:
    """Every statement of the migrations in `paths`, and the expand steps they declare, each file
    read once and named relative to `base` when under it."""
    if dialect not in DIALECTS:
        raise UsageError(f"unknown dialect {dialect!r}; known: {', '.join(DIALECTS)}")
    classifier = DIALECTS[dialect]()
    findings: list[Finding] = []
    steps = {}
    for path in migration_files(paths):
        name = _named(path, base)
        text = read_text(path)
        findings.extend(classify_file(path, text, classifier, name))
        declared = EXPAND_STEP.search(text)
        if declared:
            steps[name] = declared.group(1)
    return Checked(findings, steps)


def check_paths(paths: Sequence[Path], dialect: str = "postgres", base: Path | None = None) -> list[Finding]:
    """Every statement of the migrations in `paths`, each file named relative to `base` when under it."""
    return check_migrations(paths, dialect, base).findings


def record_migrations(config: MigrationsConfig, evidence: EvidenceDir, release: Release, workdir: Path) -> Release:
    """Classify the release's migration files into `migrations.json` (each file's path relative to
    the project and sha256, every statement's finding); provenance then signs its digest."""
    from pipeline_kit.digest import sha256_bytes
    from pipeline_kit.evidence import MIGRATIONS_FILE

    files = migration_files([workdir / path for path in config.paths])
    classifier = DIALECTS[config.dialect]()
    record: dict[str, Any] = {"dialect": config.dialect, "files": [], "statements": []}
    for path in files:
        text = read_text(path)
        name = path.relative_to(workdir).as_posix()
        record["files"].append({"path": name, "sha256": sha256_bytes(text.encode())})
        record["statements"] += [finding.as_dict() for finding in classify_file(path, text, classifier, name)]
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
    """The release's migration record ({} when it has none); one that is not a record is exit 1."""
    from pipeline_kit.evidence import MIGRATIONS_FILE

    data, why = evidence.read_checked(MIGRATIONS_FILE)
    if data is None:
        if why == "file missing":
            return {}
        raise VerificationError(f"{evidence.path(MIGRATIONS_FILE)}: {why}")
    try:
        record = json.loads(data)
    except ValueError:
        record = None
    if not isinstance(record, dict):
        raise VerificationError(f"{evidence.path(MIGRATIONS_FILE)}: not a migration record")
    return record
