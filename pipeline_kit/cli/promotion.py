"""Commands that move a release between environments: plan, promote, ledger."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from pipeline_kit._internal.text import counted
from pipeline_kit.cli._render import emit_json, markdown_table, markdown_text, printable, table
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
from pipeline_kit.cli.rollout import finish_rollout, show_measurement

if TYPE_CHECKING:
    from pipeline_kit.analysis import Analysis
    from pipeline_kit.promotion.arriving import Promotion
    from pipeline_kit.promotion.deciding import Plan

MARK = {"passed": "pass", "denied": "DENY", "error": "ERROR"}


def render_plan(item: Plan, projected: bool = False, decided: bool = False) -> None:
    """One environment's verdict and a row per gate, in one vocabulary: what `plan` says would
    happen, a dry run's view of CI (`projected`), or what a promotion decided (`decided`)."""
    if projected:
        verdict = "would pass in CI" if item.passed else "would be DENIED in CI too"
    elif decided:
        verdict = "passed its gates" if item.passed else "was DENIED"
    else:
        verdict = "would pass" if item.passed else "would be DENIED"
    click.echo(f"{item.environment}: release {item.release.id} {verdict}")
    rows = [
        (r.gate, "in CI", r.reason.removeprefix("in CI: "))
        if r.evidence.get("deferred")
        else (r.gate, MARK[r.verdict], r.reason)
        for r in item.results
    ]
    click.echo(table(["gate", "verdict", "reason"], rows))
    for entry in item.unfinished:
        click.echo(
            f"note: the promotion of {entry.release} to {item.environment} at {entry.time:%Y-%m-%d %H:%MZ} "
            f"(ledger seq {entry.seq}) never finished deploying: it does not count as arrived"
        )


def render_promotion(result: Promotion) -> None:
    render_plan(result.plan, decided=True)
    click.echo(
        f"decision: {result.decision.verdict} (ledger seq {result.entry.seq})"
        + ("; deployed" if result.deployed else "")
    )
    if result.analysis is not None:
        click.echo(f"analysis: {result.analysis.verdict}: {result.analysis.reason}")
        for step in result.aftermath:
            click.echo(f"  then: {step}")


def promotion_dict(result: Promotion) -> dict[str, Any]:
    """`promote --json`: the plan, the decision, the deploy, the analysis (a rollout's last step's)
    and the rollout's steps."""
    outcome = result.rollout
    rollout = None
    if outcome is not None:
        rollout = {
            **outcome.rollout.as_dict(),
            "verdict": outcome.verdict,
            "reason": outcome.reason,
            "analyses": [{"step": index + 1, **analysis.as_dict()} for index, analysis in outcome.analyses],
            "aftermath": list(outcome.aftermath),
        }
    return {
        **plan_dict(result.plan),
        "verdict": result.decision.verdict,
        "ledger_seq": result.entry.seq,
        "deployed": result.deployed,
        "analysis": result.analysis.as_dict() if result.analysis else None,
        "aftermath": list(result.aftermath),
        "rollout": rollout,
    }


def publish_analysis(session: Session, environment: str, analysis: Analysis, aftermath: Sequence[str]) -> None:
    """The analysis as an output and a job summary table: one row per measurement."""
    rows = [(r.time.strftime("%H:%M:%S"), r.check, r.verdict, r.detail) for r in analysis.results]
    after = "".join(f"\n- {step}" for step in aftermath)
    session.publish(
        {"analysis": analysis.verdict},
        f"### pipeline-kit: analysis in {environment} {analysis.verdict}\n\n{analysis.reason}{after}\n\n"
        + markdown_table(["time", "check", "verdict", "measurement"], rows),
    )


def publish_plan(session: Session, item: Plan, verdict: str, promotion: Promotion | None = None) -> None:
    """The verdict as outputs, and a job summary: the environments drawn with this job's verdict
    (and what it did after the gates, or would do), then a row per gate."""
    from pipeline_kit.report.pictures import after_gates, environments_chart

    config = session.config(required=True)
    assert config is not None
    rows = [(r.gate, r.verdict, r.reason, f"{r.duration_ms} ms") for r in item.results]
    upcoming = ""
    if promotion is None:
        upcoming = "**after the gates:**\n" + "".join(
            f"- {markdown_text(line)}\n" for line in after_gates(config, item.environment)
        )
    session.publish(
        {
            "verdict": verdict,
            "environment": item.environment,
            "release-id": item.release.id,
            "digest": f"sha256:{item.release.subjects[0].sha256}",
        },
        f"### pipeline-kit: {item.environment} {verdict} for release `{item.release.id}`\n\n"
        + environments_chart(config, item, promotion).markdown()
        + f"\n{upcoming}\n"
        + markdown_table(["gate", "verdict", "reason", "time"], rows),
    )


def render_after_gates(session: Session, environment: str) -> None:
    """What `plan` and a dry run add under a passing environment: what happens after its gates."""
    from pipeline_kit.report.pictures import after_gates

    config = session.config(required=True)
    assert config is not None
    click.echo("after the gates:")
    for line in after_gates(config, environment):
        click.echo(f"  {printable(line)}")


def plan_dict(item: Plan) -> dict[str, Any]:
    return {
        "environment": item.environment,
        "release": item.release.id,
        "passed": item.passed,
        "unfinished": [{"release": e.release, "seq": e.seq, "time": e.time.isoformat()} for e in item.unfinished],
        "gates": [
            {
                "gate": r.gate,
                "verdict": r.verdict,
                "reason": r.reason,
                "evidence": r.evidence,
                "duration_ms": r.duration_ms,
            }
            for r in item.results
        ],
    }


def promotion_options(signing: bool = False) -> Callable[[Any], Any]:
    """The options of plan and promote, in the order every command lists them: evidence, trust,
    signer (when the command signs), policy, output."""

    def apply(function: Any) -> Any:
        function = click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")(function)
        function = click.option(
            "--junit", type=click.Path(path_type=Path, dir_okay=False), help="Also write the gate results as JUnit XML."
        )(function)
        function = policy_options(function)
        if signing:
            function = signer_options(function)
        return evidence_options(trust_options(function))

    return apply


@click.command()
@click.option("--to", "environment", required=True, envvar="PIPELINE_KIT_PLAN_TO", help="Target environment.")
@promotion_options()
@pass_session
def plan(session: Session, /, environment: str, junit: Path | None, as_json: bool, **trust: Any) -> None:
    """Dry-run a promotion: verify the evidence and explain every gate's verdict.

    Nothing is recorded or deployed. Exit 0 if the promotion would pass, 1 if not, 2 when
    nothing is signed yet (sign first, or bring CI's evidence).
    """
    from pipeline_kit.errors import EXIT_DENIED
    from pipeline_kit.promotion.deciding import plan as plan_promotion
    from pipeline_kit.promotion.junit import write_junit
    from pipeline_kit.verify import BUNDLE_MISSING, SIGN_FIRST, require_signed

    project = project_for(session, trust_for(session, **trust_args(trust)))
    require_signed(project.evidence)  # nothing signed: say so (exit 2), before any trust root is loaded
    result = plan_promotion(project, environment)
    if junit:
        write_junit([result], session.resolve(junit))
    publish_plan(session, result, "would pass" if result.passed else "would be denied")
    if as_json:
        from pipeline_kit.report.pictures import after_gates

        config = session.config(required=True)
        assert config is not None
        emit_json({**plan_dict(result), "after_gates": after_gates(config, environment)})
    else:
        render_plan(result)
        render_after_gates(session, environment)
    if not result.passed:
        if any(r.reason.endswith(BUNDLE_MISSING) for r in result.results):
            click.echo(f"hint: {SIGN_FIRST}", err=True)
        raise click.exceptions.Exit(EXIT_DENIED)


@click.command(context_settings={"ignore_unknown_options": False})
@click.option("--to", "environment", required=True, envvar="PIPELINE_KIT_PROMOTE_TO", help="Target environment.")
@click.option("--reason", help="Why (recorded in the decision, the VSA and the ledger).")
@click.option(
    "--break-glass",
    is_flag=True,
    allow_from_autoenv=False,  # a waiver is typed, never inherited from an environment a step could set
    help="Promote despite denying policy gates (never failed integrity); needs --reason; recorded. Command line only.",
)
@click.option(
    "--step",
    "step_mode",
    is_flag=True,
    envvar="PIPELINE_KIT_PROMOTE_STEP",
    help="With a rollout strategy: run at most one step, then stop. [env: PIPELINE_KIT_PROMOTE_STEP]",
)
@click.option(
    "--deploy-elsewhere",
    is_flag=True,
    envvar="PIPELINE_KIT_PROMOTE_DEPLOY_ELSEWHERE",
    help="Decide and record only (nothing signed, no deploy): another job deploys, then `arrive` "
    "completes the promotion. The isolated layout (docs/signing-layouts.md).",
)
@promotion_options(signing=True)
@click.argument("deploy", nargs=-1, type=click.UNPROCESSED)
@pass_session
def promote(
    session: Session,
    /,
    environment: str,
    reason: str | None,
    break_glass: bool,
    step_mode: bool,
    deploy_elsewhere: bool,
    interactive: bool,
    rekor_version: str | None,
    junit: Path | None,
    as_json: bool,
    deploy: tuple[str, ...],
    **trust: Any,
) -> None:
    """Promote the current release to ENV, then run DEPLOY (after `--`) or environments.ENV.deploy.

    Verifies the evidence, evaluates every gate, writes promotions/ENV.decision.json and appends
    it to the ledger, deploys, and once the release arrived signs a SLSA VSA
    (promotions/ENV.vsa.sigstore.json). A denial is recorded too and exits 1.
    """
    from pipeline_kit.promotion.arriving import promote as run_promotion

    trusted = signer_trust(session, trust, rekor_version)
    result = run_promotion(
        project_for(session, trusted),
        environment,
        reason=reason,
        break_glass=break_glass,
        deploy=list(deploy) or None,
        token=lambda: identity_token(session, trusted.load(), interactive),
        on_output=lambda line: click.echo(f"  | {line}", err=True),
        on_progress=show_measurement,
        on_step=lambda line: click.echo(line, err=True),
        step_mode=step_mode,
        deploy_elsewhere=deploy_elsewhere,
    )
    finish_promotion(session, environment, result, junit, as_json)
    if deploy_elsewhere and not as_json:
        click.echo(
            f"next: deploy release {result.plan.release.id} in a job of its own, then "
            f"`pipeline-kit arrive --to {environment} --deploy-result <that job's result>`"
        )


def finish_promotion(session: Session, environment: str, result: Promotion, junit: Path | None, as_json: bool) -> None:
    """What promote and arrive do with a promotion: report it, publish it, exit 1 if denied or
    its analysis did not pass."""
    from pipeline_kit.errors import EXIT_DENIED
    from pipeline_kit.promotion.junit import write_junit

    if junit:
        write_junit([result.plan], session.resolve(junit), result.analysis)
    publish_plan(session, result.plan, result.decision.verdict, result)
    if result.analysis is not None:
        publish_analysis(session, environment, result.analysis, result.aftermath)
    if as_json:
        emit_json(promotion_dict(result))
    else:
        render_promotion(result)
    if result.break_glass_refused:
        click.echo(f"error: --break-glass {result.break_glass_refused}", err=True)
    line = next((r for r in result.plan.results if r.gate == "stop-the-line"), None)
    if result.decision.verdict == "waived" and line is not None and line.verdict != "passed":
        # said loudly: a promotion past an org line nobody could read
        click.echo(
            f"warning: BREAK GLASS: {environment} promoted while the org's line could not be read ({line.reason}); "
            f"recorded in {result.entry.kind} entry seq {result.entry.seq} of the project's ledger",
            err=True,
        )
    if result.decision.verdict == "denied":
        raise click.exceptions.Exit(EXIT_DENIED)
    if result.rollout is not None:
        finish_rollout(session, environment, result.rollout, quiet=as_json)
    if result.analysis is not None and not result.analysis.passed:
        click.echo(
            f"error: the analysis in {environment} {result.analysis.verdict}: {result.analysis.reason}", err=True
        )
        raise click.exceptions.Exit(EXIT_DENIED)


@click.group()
def ledger() -> None:
    """Read, verify and annotate the promotion ledger."""


@ledger.command("show")
@click.option("--env", "environment", help="Only this environment.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@evidence_options
@pass_session
def ledger_show(session: Session, environment: str | None, as_json: bool) -> None:
    """List ledger entries, oldest first."""
    entries = [e for e in session.ledger().entries() if environment in (None, e.environment)]
    if as_json:
        click.echo(json.dumps([e.model_dump(mode="json") for e in entries], indent=2))
        return
    click.echo(
        table(
            ["seq", "time", "kind", "env", "release", "details", "actor", "reason"],
            [
                (
                    *(e.seq, f"{e.time:%Y-%m-%d %H:%M:%SZ}", e.kind, e.environment, e.release or ""),
                    *(entry_details(e.kind, e.details), e.actor, e.reason or ""),
                )
                for e in entries
            ],
        )
    )


def entry_details(kind: str, details: dict[str, Any]) -> str:
    """What a row says besides its release: a rollout's state, step and weight (the step counted
    from 1, as `rollout status` shows it), a rollback's `from -> to`, a drift's answers."""
    if kind == "rollout":
        step, weight = details.get("step"), details.get("weight")
        at = f"step {step + 1}, " if type(step) is int and step >= 0 else ""
        return f"{details.get('state', '?')}: {at}weight {weight if type(weight) is int else '?'}%"
    if kind == "rolled-back":
        return f"{details.get('from') or '?'} -> {details.get('to') or '?'}"
    if kind == "drift":  # what the probe found (each slot's answer, quoted when recorded)
        findings = [f for f in details.get("findings") or [] if isinstance(f, dict)]
        found = ", ".join(str(f.get("answer") or "no answer") for f in findings)
        return f"{details.get('state', '?')}: found {found or 'nothing'}"
    return ""


@ledger.command("verify")
@evidence_options
@trust_options
@policy_options
@pass_session
def ledger_verify(session: Session, /, **trust: Any) -> None:
    """Check the hash chain and the signed decisions it must agree with.

    Exit 1 names the first edited, dropped, inserted or moved entry, and any signed VSA that was
    decided on a ledger head this ledger no longer has (truncated or rewritten). Without an
    identity policy only the chain is checked, and the output says so.
    """
    from pipeline_kit.errors import VerificationError

    store = session.ledger()
    trusted = trust_for(session, **trust_args(trust))
    if trusted.policy is None:
        count, _ = store.check()
        click.echo(
            f"{store.describe()}: {counted(count, 'entry', 'entries')}, chain intact; "
            "signed decisions not checked (no identity policy)"
        )
        return
    from pipeline_kit.promotion.audit import audit

    entries, problems = audit(store, session.evidence(), trusted)
    if problems:
        raise VerificationError(f"{store.describe()}: {problems[0]}", hint="; ".join(problems[1:]) or None)
    click.echo(
        f"{store.describe()}: {counted(len(entries), 'entry', 'entries')}, chain intact, "
        "agrees with every signed decision found"
    )


@ledger.command("annotate")
@click.option("--env", "environment", required=True, help="Environment whose last rollback this explains.")
@click.option("--root-cause", required=True, help="A URL or text: why the rolled-back release failed.")
@evidence_options
@trust_options
@signer_options
@policy_options
@pass_session
def ledger_annotate(
    session: Session, /, environment: str, root_cause: str, interactive: bool, rekor_version: str | None, **trust: Any
) -> None:
    """Sign the root cause of the last rollback in ENV, lifting its hold.

    The root cause is a signed statement about the rolled-back release for ENV (like the rollback
    itself, it needs an identity token): a line in the ledger alone lifts no signed hold.
    """
    from pipeline_kit.promotion.rolling_back import annotate

    trusted = signer_trust(session, trust, rekor_version)
    entry = annotate(
        project_for(session, trusted),
        environment,
        root_cause,
        token=lambda: identity_token(session, trusted.load(), interactive),
    )
    click.echo(f"{environment}: root cause of {entry.release} signed (ledger seq {entry.seq}); its hold is lifted")
