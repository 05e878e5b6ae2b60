"""`pipeline-kit release plan|apply|status|rollback`: a multi-service release plan as a saga."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from pipeline_kit.cli._render import emit_json, markdown_table, table
from pipeline_kit.cli._session import Session, pass_session
from pipeline_kit.cli.promotion import MARK, project_for, trust_args, trust_for
from pipeline_kit.cli.signing import identity_token, policy_options, signer_options, trust_options

if TYPE_CHECKING:
    from pipeline_kit.saga import Applier, Outcome


@click.group()
def release() -> None:
    """Release several services together by a release plan (release-plan.yml): in dependency
    order, each a normal promotion; on a failure, the completed ones compensated newest first."""


def plan_options(function: Any) -> Any:
    function = click.option("--to", "environment", required=True, help="Target environment.")(function)
    return click.option(
        "-f",
        "--file",
        "plan_file",
        type=click.Path(path_type=Path, dir_okay=False),
        default=Path("release-plan.yml"),
        show_default=True,
        help="The release plan.",
    )(function)


def _applier(
    session: Session, plan_file: Path, environment: str, interactive: bool, rekor_version: str | None, trust: Any
) -> Applier:
    from pipeline_kit.saga import Applier, load_plan

    loaded = load_plan(plan_file if plan_file.is_absolute() else session.workdir / plan_file)
    trust_values = trust_args(trust)
    rekor = int(rekor_version) if rekor_version else None

    def project(directory: Path) -> Any:
        service = Session(workdir=directory.resolve(), verbose=session.verbose)
        return project_for(service, trust_for(service, **trust_values, rekor_version=rekor))

    first = Session(workdir=loaded.directory(loaded.plan.steps[0]).resolve(), verbose=session.verbose)
    token_trust = trust_for(first, **trust_values, rekor_version=rekor)
    return Applier(
        loaded,
        environment,
        project,
        lambda: identity_token(session, token_trust.load(), interactive),
        session.actor(),
        lambda line: click.echo(line, err=True),
    )


def _finish(session: Session, outcome: Outcome, environment: str) -> None:
    from pipeline_kit.errors import EXIT_DENIED

    saga = outcome.saga
    rows = [
        (service, saga.releases.get(service, ""), "compensated" if service in saga.compensated else "promoted")
        for service in saga.done
    ]
    session.publish(
        {"release-plan": outcome.verdict},
        f"### pipeline-kit: release plan to {environment}: {outcome.verdict}\n\n{outcome.reason}\n\n"
        + markdown_table(["service", "release", "state"], rows),
    )
    for line in outcome.steps:
        click.echo(line)
    click.echo(f"release plan: {outcome.verdict}: {outcome.reason}")
    if outcome.verdict == "failed":
        raise click.exceptions.Exit(EXIT_DENIED)


@release.command("plan")
@plan_options
@trust_options
@policy_options
@pass_session
def release_plan(session: Session, /, plan_file: Path, environment: str, **trust: Any) -> None:
    """Every step's gates and verdicts, in order; changes nothing. Exit 1 if a step would be denied."""
    from pipeline_kit.errors import EXIT_DENIED

    applier = _applier(session, plan_file, environment, False, None, trust)
    denied = False
    for service, planned in applier.plan():
        verdict = "would pass" if planned.passed else "would be DENIED"
        denied = denied or not planned.passed
        click.echo(f"{service}: release {planned.release.id} {verdict}")
        click.echo(table(["gate", "verdict", "reason"], [(r.gate, MARK[r.verdict], r.reason) for r in planned.results]))
    if denied:
        raise click.exceptions.Exit(EXIT_DENIED)


@release.command("apply")
@plan_options
@trust_options
@signer_options
@policy_options
@pass_session
def release_apply(
    session: Session, /, plan_file: Path, environment: str, interactive: bool, rekor_version: str | None, **trust: Any
) -> None:
    """Promote every service in dependency order; on a failure compensate the completed ones,
    newest first, and exit 1. A killed apply resumes from the plan's ledger."""
    applier = _applier(session, plan_file, environment, interactive, rekor_version, trust)
    _finish(session, applier.apply(), environment)


@release.command("status")
@plan_options
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@pass_session
def release_status(session: Session, plan_file: Path, environment: str, as_json: bool) -> None:
    """Where the plan stands in ENV (from the plan's ledger)."""
    from pipeline_kit.promote import history
    from pipeline_kit.saga import load_plan, saga_state

    loaded = load_plan(plan_file if plan_file.is_absolute() else session.workdir / plan_file)
    saga = saga_state(history(loaded.ledger()), environment, loaded.digest)
    if as_json:
        emit_json(saga.as_dict())
        return
    if saga.started is None:
        click.echo(f"this plan never ran to {environment}")
        return
    click.echo(
        f"{environment}: {saga.outcome or 'in progress'}; done: {', '.join(saga.done) or 'none'}; "
        f"failed: {saga.failed or 'none'}; compensated: {', '.join(saga.compensated) or 'none'}"
    )


@release.command("rollback")
@plan_options
@trust_options
@signer_options
@policy_options
@pass_session
def release_rollback(
    session: Session, /, plan_file: Path, environment: str, interactive: bool, rekor_version: str | None, **trust: Any
) -> None:
    """Compensate a finished plan by hand: every step, newest first."""
    applier = _applier(session, plan_file, environment, interactive, rekor_version, trust)
    _finish(session, applier.rollback(), environment)
