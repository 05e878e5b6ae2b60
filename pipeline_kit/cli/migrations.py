"""`pipeline-kit migrations check`: classify migration files statement by statement."""

from __future__ import annotations

import json
from pathlib import Path

import click

from pipeline_kit.cli._render import table
from pipeline_kit.cli._session import Session, pass_session


@click.group()
def migrations() -> None:
    """Migration safety: expand / migrate / contract, lock risk, safe alternatives."""


@migrations.command("check")
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option(
    "--dialect",
    type=click.Choice(["postgres", "mysql", "sqlite"]),
    default=None,
    help="The database the migrations run on: how statements parse and which lock rules apply "
    "[default: the config's migrations.dialect, else postgres].",
)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@pass_session
def check(session: Session, paths: tuple[Path, ...], dialect: str | None, as_json: bool) -> None:
    """Label every statement of the migration files in PATHS (files, or directories of SQL,
    Alembic, Django or Rails migrations, in the order they apply; by default the config's
    migrations.paths), read as --dialect (by default the config's): phase, lock risk, rule, message
    and the safe alternative. Exit 1 when a statement needs attention (contract, review, or a lock
    that blocks) and no inline waiver (`-- pipeline-kit: allow RULE because WHY` just before it;
    `#` in Python and Ruby) covers it; exit 2 naming the file and line when a statement cannot be
    read (nested too deep, or over 1 MiB)."""
    from pipeline_kit.errors import EXIT_DENIED
    from pipeline_kit.migrations import check_migrations

    paths, dialect = _what_to_check(session, paths, dialect)
    checked = check_migrations([session.workdir / path for path in paths], dialect, base=session.workdir)
    findings, expand_steps = checked.findings, checked.expand_steps
    attention = [f for f in findings if f.needs_attention]
    if as_json:
        # {"statements": [...], "attention": N, "expand_steps": {...}}: the statements written
        # by each finding (most of the output), the rest by json. JSON escapes every control
        # character, so there is no colour to strip (color=True: click's search for it is skipped)
        rest = json.dumps({"attention": len(attention), "expand_steps": expand_steps})
        click.echo(f'{{"statements": [{", ".join(f.as_json() for f in findings)}], {rest[1:]}', color=True)
    else:
        rows = [
            (
                "!" if f.needs_attention else "",
                f"{f.file}:{f.line}",
                f.phase,
                f.lock,
                f.rule,
                f.message + (f" (waived: {f.waived})" if f.waived else ""),
                f.fix,
            )
            for f in findings
        ]
        click.echo(table(["!", "statement", "phase", "lock", "rule", "what", "safe way"], rows))
        for file, expand in expand_steps.items():
            click.echo(
                f"{file}: contract step after {expand} (declared; the migrations gate lets its contract "
                f"statements through once every environment runs {expand})"
            )
        click.echo(f"{len(findings)} statement finding(s), {len(attention)} needing attention (marked !)")
    if attention:
        raise click.exceptions.Exit(EXIT_DENIED)


def _what_to_check(session: Session, paths: tuple[Path, ...], dialect: str | None) -> tuple[tuple[Path, ...], str]:
    """PATHS and --dialect as given, else the config's `migrations:` section's (the config is read
    only when one of them is missing); with no paths from either, exit 2 saying what to give."""
    from pipeline_kit.errors import UsageError

    config = session.config(required=False) if not paths or dialect is None else None
    section = config.migrations if config is not None else None
    if not paths:
        if section is None:
            raise UsageError(
                "no migrations to check: name files or directories (`migrations check PATHS...`), "
                "or set `migrations: {paths: [...]}` in pipeline-kit.yml"
            )
        paths = tuple(Path(path) for path in section.paths)
    return paths, dialect or (section.dialect if section is not None else "postgres")
