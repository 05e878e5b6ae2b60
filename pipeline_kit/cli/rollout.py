"""Commands that follow a progressive rollout: rollout status, resume, abort (and how a rollout's
outcome is shown, by promote too)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from pipeline_kit.cli._render import emit_json, markdown_table, markdown_text
from pipeline_kit.cli._session import Session, evidence_options, pass_session
from pipeline_kit.cli._trust import (
    identity_token,
    policy_options,
    project_for,
    signer_options,
    signer_trust,
    trust_args,
    trust_for,
    trust_options,
)

if TYPE_CHECKING:
    from pipeline_kit.analysis import Result
    from pipeline_kit.promotion.rollout_record import Outcome as RolloutOutcome


def show_measurement(tick: int, measured: Result) -> None:
    click.echo(f"  analysis {tick}: {measured.check} {measured.detail} [{measured.verdict}]", err=True)


def finish_rollout(session: Session, environment: str, outcome: RolloutOutcome, quiet: bool = False) -> None:
    """Outputs, the job summary (a row per analysed step) and the exit code of a rollout;
    `quiet`: nothing on stdout (`--json` printed it all)."""
    from pipeline_kit.errors import EXIT_DENIED
    from pipeline_kit.report.pictures import rollout_chart

    config = session.config(required=True)
    assert config is not None
    rollout = outcome.rollout
    rows = [(index + 1, analysis.verdict, analysis.reason) for index, analysis in outcome.analyses]
    session.publish(
        {"rollout": outcome.verdict, "step": str(rollout.step + 1), "weight": str(rollout.weight)},
        f"### pipeline-kit: rollout of `{rollout.release}` in {environment}: {outcome.verdict}\n\n"
        f"{markdown_text(outcome.reason)}\n\n"
        + rollout_chart(config, environment, outcome).markdown()
        + "\n"
        + markdown_table(["step", "analysis", "measurements"], rows),
    )
    if not quiet:
        click.echo(f"rollout: {outcome.verdict}: {outcome.reason}")
        for step in outcome.aftermath:
            click.echo(f"  then: {step}")
    if outcome.verdict in ("failed", "stopped"):  # stopped: paused where it stands, refused while the line is
        click.echo(f"error: the rollout in {environment} {outcome.verdict}: {outcome.reason}", err=True)
        raise click.exceptions.Exit(EXIT_DENIED)


@click.group()
def rollout() -> None:
    """Follow, resume or abort a progressive rollout (an environment with a `strategy:`)."""


@rollout.command("status")
@click.option("--env", "environment", required=True, help="The environment.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@evidence_options
@pass_session
def rollout_status(session: Session, environment: str, as_json: bool) -> None:
    """The newest rollout of ENV: its release, state, step and weight (from the ledger)."""
    from pipeline_kit.promotion.rollout_record import current

    state = current(list(session.ledger().entries()), environment)
    if as_json:
        emit_json(state.as_dict() if state else None)
        return
    if state is None:
        click.echo(f"no rollout in {environment}")
        return
    click.echo(
        f"{environment}: rollout of {state.release} {state.state}, step {state.step + 1}, "
        f"{state.weight}% to {state.canary_slot} (stable {state.stable_slot}: {state.stable_release or 'none'}), "
        f"started {state.started.time:%Y-%m-%d %H:%M:%SZ}"
    )


@rollout.command("resume")
@click.option("--env", "environment", required=True, help="The environment.")
@click.option("--step", "step_mode", is_flag=True, help="Run at most one step, then stop.")
@evidence_options
@trust_options
@signer_options
@policy_options
@pass_session
def rollout_resume(
    session: Session, /, environment: str, step_mode: bool, interactive: bool, rekor_version: str | None, **trust: Any
) -> None:
    """Go on with the rollout in ENV: after a manual pause from the next step, else from the start
    of the step it was in (its weight set and its analysis run again, never skipped)."""
    from pipeline_kit.promotion.rollout import resume

    trusted = signer_trust(session, trust, rekor_version)
    outcome = resume(
        project_for(session, trusted),
        environment,
        lambda: identity_token(session, trusted.load(), interactive),
        step_mode=step_mode,
        on_progress=lambda line: click.echo(line, err=True),
        on_result=show_measurement,
    )
    finish_rollout(session, environment, outcome)


@rollout.command("abort")
@click.option("--env", "environment", required=True, help="The environment.")
@click.option("--reason", required=True, help="Why (recorded).")
@evidence_options
@trust_options
@policy_options
@pass_session
def rollout_abort(session: Session, /, environment: str, reason: str, **trust: Any) -> None:
    """Send all traffic back to the stable slot and end the rollout in ENV; the job running it stops
    at its next step (or during a pause) and signs nothing more."""
    from pipeline_kit.promotion.rollout import abort

    # the identity policy shows the live slot from the signed record (a ledger line cannot send the
    # traffic to an empty slot); without one, or offline, the rollout's line says where it goes
    outcome = abort(project_for(session, trust_for(session, **trust_args(trust))), environment, reason)
    finish_rollout(session, environment, outcome)
