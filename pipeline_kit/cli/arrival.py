"""The isolated layout's last step: arrive (docs/signing-layouts.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import click

from pipeline_kit.cli._session import Session, pass_session
from pipeline_kit.cli._trust import identity_token, project_for, signer_trust
from pipeline_kit.cli.promotion import finish_promotion, promotion_options
from pipeline_kit.cli.rollout import show_measurement


@click.command()
@click.option("--to", "environment", required=True, envvar="PIPELINE_KIT_ARRIVE_TO", help="Target environment.")
@click.option(
    "--deploy-result",
    required=True,
    type=click.Choice(["success", "failure", "cancelled", "skipped"]),
    envvar="PIPELINE_KIT_ARRIVE_DEPLOY_RESULT",
    help="How the deploy job ended (GitHub's needs.<job>.result; GitLab: success or failure).",
)
@click.option(
    "--release",
    "expected",
    envvar="PIPELINE_KIT_ARRIVE_RELEASE",
    help="The release id the deciding job decided (its output): the evidence handed over must be that release.",
)
@click.option("--reason", help="Why (recorded in the decision, the VSA and the ledger).")
@click.option(
    "--break-glass",
    is_flag=True,
    allow_from_autoenv=False,
    help="Arrive despite denying policy gates (never failed integrity); needs --reason. Command line only.",
)
@promotion_options(signing=True)
@pass_session
def arrive(
    session: Session,
    /,
    environment: str,
    deploy_result: Literal["success", "failure", "cancelled", "skipped"],
    expected: str | None,
    reason: str | None,
    break_glass: bool,
    interactive: bool,
    rekor_version: str | None,
    junit: Path | None,
    as_json: bool,
    **trust: Any,
) -> None:
    """Complete a promotion another job deployed: judge it again, analyse, sign its VSA.

    The isolated layout's last step (docs/signing-layouts.md): `promote --deploy-elsewhere`
    decided and recorded it, a job without signing power deployed it, and this job, which runs
    no program the project names, judges the release again from the signed evidence, runs the
    environment's analysis and signs the VSA. A deploy that did not succeed is recorded (exit 3,
    as for a deploy command that failed); a release that no longer passes is recorded (exit 1).
    """
    from pipeline_kit.promotion.elsewhere import arrive as run_arrival

    trusted = signer_trust(session, trust, rekor_version)
    result = run_arrival(
        project_for(session, trusted),
        environment,
        deploy_result=deploy_result,
        expected=expected,
        reason=reason,
        break_glass=break_glass,
        token=lambda: identity_token(session, trusted.load(), interactive),
        on_progress=show_measurement,
    )
    finish_promotion(session, environment, result, junit, as_json)
