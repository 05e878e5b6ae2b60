"""`pipeline-kit drift`: what an environment runs against what signed evidence says it should."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from pipeline_kit.cli._render import emit_json, markdown_table, table
from pipeline_kit.cli._session import Session, evidence_options, pass_session
from pipeline_kit.cli._trust import (
    identity_token,
    policy_options,
    project_for,
    signer_options,
    signer_trust,
    trust_options,
)

if TYPE_CHECKING:
    from pipeline_kit.drift import Report
    from pipeline_kit.promotion.arriving import Promotion


def exit_code(report: Report) -> int:
    """0 in sync, 1 a drift, 3 unknown (the environment did not answer, or said nothing a signed
    release can be held to: the kit's code for an environment's failure; 2 stays usage/config)."""
    from pipeline_kit.errors import EXIT_DENIED, EXIT_ENVIRONMENT, EXIT_OK

    return {"in-sync": EXIT_OK, "drift": EXIT_DENIED}.get(report.state, EXIT_ENVIRONMENT)


def rows(report: Report) -> list[tuple[object, ...]]:
    expected = report.expected
    wanted = f"{expected.release} (signed {expected.since:%Y-%m-%d %H:%MZ})" if expected else f"unknown: {report.why}"
    since = f"{report.since:%Y-%m-%d %H:%MZ}" if report.since and report.state != "in-sync" else ""
    return [
        (
            f.slot or report.environment,
            "" if f.weight is None else f"{f.weight}%",
            wanted,
            f.answer if f.answer is not None else "(no answer)",
            f.state,
            since if f.state in ("drift", "unknown") else "",
            f.why,
        )
        for f in report.findings
    ]


HEADERS = ["where", "weight", "expected", "found", "state", "since", "why"]


def show(session: Session, report: Report, as_json: bool) -> None:
    session.publish(
        {"drift": report.state, "environment": report.environment},
        f"### pipeline-kit: {report.environment} {report.state}\n\n" + markdown_table(HEADERS, rows(report)),
    )
    if as_json:
        emit_json(report.as_dict())
        return
    click.echo(report.summary() + (f" (ledger seq {report.entry.seq})" if report.entry else ""))
    click.echo(table(HEADERS, rows(report)))


def show_reconcile(result: Promotion, err: bool) -> bool:
    """One line for the reconcile's promotion (on stderr beside --json); whether the release arrived."""
    analysis = f"; analysis {result.analysis.verdict}" if result.analysis is not None else ""
    arrived = result.decision.verdict != "denied" and result.deployed is not False
    arrived = arrived and (result.analysis is None or result.analysis.passed)
    if result.rollout is not None:
        arrived = result.rollout.verdict == "finished"
    click.echo(
        f"reconcile: {result.decision.verdict} (ledger seq {result.entry.seq})"
        + ("; deployed" if result.deployed else "")
        + analysis
        + "".join(f"; {b.gate}: {b.reason}" for b in result.plan.blocking()),
        err=err,
    )
    return arrived


@click.command()
@click.option("--env", "environment", required=True, envvar="PIPELINE_KIT_DRIFT_ENV", help="Environment to check.")
@click.option(
    "--reconcile",
    is_flag=True,
    envvar="PIPELINE_KIT_DRIFT_RECONCILE",
    help="On a drift, promote the signed release there again (gates, deploy, analysis, records), then check again.",
)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@evidence_options
@trust_options
@signer_options
@policy_options
@click.argument("deploy", nargs=-1, type=click.UNPROCESSED)
@pass_session
def drift(
    session: Session,
    /,
    environment: str,
    reconcile: bool,
    as_json: bool,
    interactive: bool,
    rekor_version: str | None,
    deploy: tuple[str, ...],
    **trust: Any,
) -> None:
    """Ask ENV what it runs and compare with the signed release it should run (its `probe:`).

    The expected release is the one the signed record leaves there (a signed PASSED VSA, no
    signed rollback since), its evidence verified; ledger lines never name it. Exit 0 in sync,
    1 drift (recorded in the ledger), 3 unknown: a probe failed, timed out or answered nothing
    usable (recorded too). `--reconcile` puts the signed release back through a normal promotion.

    DEPLOY (after `--`, only with `--reconcile`) is the deploy command the reconcile runs instead
    of environments.ENV.deploy, as `pipeline-kit promote` takes it.
    """
    from pipeline_kit.drift import check
    from pipeline_kit.drift import reconcile as run_reconcile

    trusted = signer_trust(session, trust, rekor_version)
    project = project_for(session, trusted)
    report = check(project, environment)
    if reconcile and report.state == "drift":
        if not as_json:  # --json: only the check after the reconcile, one document
            show(session, report, False)
        result = run_reconcile(
            project,
            report,
            deploy=list(deploy) or None,
            token=lambda: identity_token(session, trusted.load(), interactive),
            on_output=lambda line: click.echo(f"  | {line}", err=True),
            on_step=lambda line: click.echo(line, err=True),
        )
        if not show_reconcile(result, err=as_json):
            raise click.exceptions.Exit(1)
        report = check(project, environment)
    show(session, report, as_json)
    raise click.exceptions.Exit(exit_code(report))
