"""`pipeline-kit report`: the release report (one self-contained HTML file) and `report dora`
(the numbers of delivery), both from the verified history."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import click

from pipeline_kit.cli._render import emit_json, markdown_table, table
from pipeline_kit.cli._session import Session, evidence_options, pass_session
from pipeline_kit.cli._trust import policy_options, project_for, trust_args, trust_for, trust_options


def _when(value: str | None, option: str) -> datetime | None:
    from pipeline_kit.errors import UsageError

    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise UsageError(f"{option}: not an ISO 8601 time: {value!r}") from None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=timezone.utc)


@click.group(invoke_without_command=True)
@click.option("--env", "environment", help="A report of this environment (default: of every environment).")
@click.option("--release", "release", help="A report of this release id (default: every release).")
@click.option(
    "--output",
    "-o",
    type=click.Path(path_type=Path, dir_okay=False),
    default=Path("pipeline-kit-report.html"),
    show_default=True,
    help="Where to write the HTML file.",
)
@click.option("--limit", type=click.IntRange(1), default=1000, show_default=True, help="Newest entries shown.")
@click.option(
    "--plan",
    "plan_file",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Also draw this release plan's runs (its services' graph, each step's state and verified arrival).",
)
@evidence_options
@trust_options
@policy_options
@pass_session
@click.pass_context
def report(
    ctx: click.Context,
    session: Session,
    /,
    environment: str | None,
    release: str | None,
    output: Path,
    limit: int,
    plan_file: Path | None,
    **trust: Any,
) -> None:
    """Write the release report: one self-contained HTML file, from verified evidence only.

    Subjects, SBOM and provenance of each release, its chain of custody through every
    environment, each analysis and rollout step, kill switches, rollbacks and holds, release
    plans. Every signed record is verified first; what does not verify is shown as such.
    """
    if ctx.invoked_subcommand is not None:
        ctx.meta[_TRUST] = trust  # the subcommand takes these too; its own win
        return
    from pipeline_kit._internal.fs import atomic_write
    from pipeline_kit.promotion.model import check_environment
    from pipeline_kit.report.page import render

    project = project_for(session, trust_for(session, **trust_args(trust)))
    if environment is not None:
        check_environment(project.config, environment)
    history = _history(project)
    runs = _plan_runs(session, plan_file, trust) if plan_file is not None else []
    page = render(history, environment=environment, release=release, limit=limit, plans=runs)
    target = session.resolve(output)
    atomic_write(target, page.encode())
    refused = len(history.refused())
    session.publish(
        {"report": str(target)},
        f"### pipeline-kit: release report\n\n{len(history.events)} ledger entries, {refused} refused: "
        f"see the `pipeline-kit-report` artifact ({target.name})",
    )
    click.echo(f"wrote {target} ({len(history.events)} ledger entries, {refused} whose signed records were refused)")


def _history(project: Any) -> Any:
    """The verified history; an empty ledger is refused (exit 2): it shows nothing was deployed
    only in that it was not brought (a CI job without the ledger's artifact or ref)."""
    from pipeline_kit.errors import UsageError
    from pipeline_kit.report.history import load_history

    history = load_history(project)
    if not history.events:
        raise UsageError(
            f"{project.ledger.nothing_here()}: nothing to report",
            hint="nothing promoted here yet; in CI, bring the ledger (the last promotion job's artifact, "
            "or the git ledger's ref)",
        )
    return history


def _plan_runs(session: Session, plan_file: Path, trust: dict[str, Any]) -> list[Any]:
    """The plan's runs, each service verified in its own project (as `release` does)."""
    from pipeline_kit.release_plan import load_plan
    from pipeline_kit.report.plans import plan_runs

    def project(directory: Path) -> Any:
        service = Session(workdir=directory.resolve(), verbose=session.verbose)
        return project_for(service, trust_for(service, **trust_args(trust)))

    return plan_runs(load_plan(session.resolve(plan_file)), project)


_TRUST = "pipeline_kit.report.trust"


@report.command("dora")
@click.option("--env", "environments", multiple=True, help="Only this environment (repeatable).")
@click.option("--since", help="Start of the window, ISO 8601. [default: --days before --until]")
@click.option("--until", help="End of the window, ISO 8601. [default: now]")
@click.option("--days", type=click.IntRange(1), default=30, show_default=True, help="Window length.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@evidence_options
@trust_options
@policy_options
@pass_session
@click.pass_context
def dora(
    ctx: click.Context,
    session: Session,
    /,
    environments: tuple[str, ...],
    since: str | None,
    until: str | None,
    days: int,
    as_json: bool,
    **own: Any,
) -> None:
    """The numbers of delivery per environment: deployment frequency, lead time for changes,
    change failure rate, time to restore, time to deploy, failing measurement to stable."""
    from pipeline_kit.promotion.model import check_environment
    from pipeline_kit.report.dora import delivery

    given = ctx.meta.get(_TRUST, {})
    trust = {key: value if value not in (None, False) else given.get(key, value) for key, value in own.items()}
    project = project_for(session, trust_for(session, **trust_args(trust)))
    for environment in environments:
        check_environment(project.config, environment)
    end = _when(until, "--until") or datetime.now(timezone.utc)
    start = _when(since, "--since") or end - timedelta(days=days)
    figures = delivery(_history(project), start, end, environments)
    if as_json:
        emit_json(figures.as_dict())
        return
    rows = [
        (
            f.environment,
            f.deployments,
            f"{f.per_day:.2f}/day",
            _duration(f.lead_time.median),
            "-" if f.change_failure_rate is None else f"{f.change_failure_rate:.0%} ({f.failures}/{f.deployments})",
            _duration(f.time_to_restore.median),
            _duration(f.time_to_deploy.median),
            _duration(f.failure_to_stable.median),
        )
        for f in figures.environments
    ]
    headers = ["env", "deploys", "frequency", "lead time", "failure rate", "restore", "deploy", "fail->stable"]
    click.echo(f"{start:%Y-%m-%d %H:%M}Z .. {end:%Y-%m-%d %H:%M}Z (medians; from signed records only)")
    click.echo(table(headers, rows))
    for line in figures.counted_out:
        click.echo(f"counted out: {line}")
    session.publish({}, "### pipeline-kit: delivery\n\n" + markdown_table(headers, rows))


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    minutes = round(seconds / 60)
    return f"{minutes // 60}h{minutes % 60:02d}m" if minutes >= 60 else f"{minutes}m"
