"""`pipeline-kit rollback`: back to the previous good release, the hold signed first; with
--deploy-elsewhere, signed and recorded here and deployed by a job of yours (docs/signing-layouts.md)."""

from __future__ import annotations

import json
from typing import Any

import click

from pipeline_kit.cli._render import emit_json
from pipeline_kit.cli._session import Session, evidence_options, pass_session
from pipeline_kit.cli._trust import (
    identity_token,
    policy_options,
    project_for,
    signer_options,
    signer_trust,
    trust_options,
)


@click.command()
@click.option(
    "--env", "environment", required=True, envvar="PIPELINE_KIT_ROLLBACK_ENV", help="Environment to roll back."
)
@click.option(
    "--to",
    "target",
    envvar="PIPELINE_KIT_ROLLBACK_TO",
    help="Release id to go back to. [default: the previous good one]",
)
@click.option(
    "--from",
    "named",
    envvar="PIPELINE_KIT_ROLLBACK_FROM",
    help="Release id to take out, when one deployed without a signed decision runs there. "
    "[default: the one the signed record shows]",
)
@click.option("--reason", required=True, help="Why (recorded).")
@click.option(
    "--deploy-elsewhere",
    is_flag=True,
    envvar="PIPELINE_KIT_ROLLBACK_DEPLOY_ELSEWHERE",
    help="Sign the hold and record the rollback only (no deploy here): a job of yours deploys the "
    "release it goes back to. The isolated layout (docs/signing-layouts.md).",
)
@evidence_options
@trust_options
@signer_options
@policy_options
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.argument("deploy", nargs=-1, type=click.UNPROCESSED)
@pass_session
def rollback(
    session: Session,
    /,
    environment: str,
    target: str | None,
    named: str | None,
    reason: str,
    deploy_elsewhere: bool,
    as_json: bool,
    interactive: bool,
    rekor_version: str | None,
    deploy: tuple[str, ...],
    **trust: Any,
) -> None:
    """Roll ENV back to the previous good release, re-verified, and hold the bad one out.

    The rollback is signed (a FAILED VSA about the bad release, for ENV) before the deploy, so
    the hold survives edits to the ledger.

    The rolled-back release cannot be promoted to ENV again until
    `pipeline-kit ledger annotate --env ENV --root-cause ...` records why it failed.

    DEPLOY (after `--`) is the command that deploys the previous release, instead of
    environments.ENV.deploy, as `pipeline-kit promote` takes it. With --deploy-elsewhere none
    runs: the outputs (release-id, digest, subjects) tell a job of yours what to deploy.
    """
    from pipeline_kit.promotion.rolling_back import rollback as run_rollback

    trusted = signer_trust(session, trust, rekor_version)
    came_from, went_to, entry = run_rollback(
        project_for(session, trusted),
        environment,
        to=target,
        reason=reason,
        deploy=list(deploy) or None,
        token=lambda: identity_token(session, trusted.load(), interactive),
        on_output=lambda line: click.echo(f"  | {line}", err=True),
        named=named,
        deploy_elsewhere=deploy_elsewhere,
    )
    subjects = {name: f"sha256:{digest}" for name, digest in entry.subjects.items()}
    outputs = {"from": came_from, "to": went_to, "environment": environment}
    if deploy_elsewhere:  # what the deploy job needs: the release and its signed digests
        first = next(iter(subjects.values()))
        outputs |= {"release-id": went_to, "digest": first, "subjects": json.dumps(subjects, separators=(",", ":"))}
    session.publish(outputs)
    if as_json:
        where = "elsewhere" if deploy_elsewhere else "here"
        emit_json(
            {"environment": environment, "from": came_from, "to": went_to, "ledger_seq": entry.seq}
            | {"deploy": where, "subjects": subjects}
        )
        return
    click.echo(
        f"{environment}: rolled back from {came_from} to {went_to} (ledger seq {entry.seq}); "
        f"{came_from} is held out of {environment} until a root cause is recorded"
    )
    if deploy_elsewhere:
        click.echo(f"next: deploy release {went_to} ({first}) to {environment} in a job of its own")
