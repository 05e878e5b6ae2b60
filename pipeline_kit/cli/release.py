"""`pipeline-kit release plan|apply|status|rollback`: a multi-service release plan as a saga."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import click

from pipeline_kit._internal.text import counted
from pipeline_kit.cli._render import emit_json, markdown_table, markdown_text, table
from pipeline_kit.cli._session import Session, pass_session
from pipeline_kit.cli._trust import (
    TRUST_OPTIONS,
    identity_token,
    policy_options,
    project_for,
    signer_options,
    signer_trust,
    trust_options,
)
from pipeline_kit.cli.promotion import MARK

if TYPE_CHECKING:
    from pipeline_kit.saga import Applier, Outcome, Saga


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
    from pipeline_kit.release_plan import load_plan
    from pipeline_kit.saga import Applier

    loaded = load_plan(session.resolve(plan_file))

    def project(directory: Path) -> Any:
        service = Session(workdir=directory.resolve(), verbose=session.verbose)
        return project_for(service, signer_trust(service, trust, rekor_version))

    first = Session(workdir=loaded.directory(loaded.plan.steps[0]).resolve(), verbose=session.verbose)
    token_trust = signer_trust(first, trust, rekor_version)
    return Applier(
        loaded,
        environment,
        project,
        lambda: identity_token(session, token_trust.load(), interactive),
        session.actor(),
        lambda line: click.echo(line, err=True),
    )


def _publish(session: Session, applier: Applier, outcome: Outcome) -> None:
    """The saga so far as the job's outputs and summary: the plan's DAG with each step's state,
    and a table (every job of an emitted pipeline shows where the plan stands)."""
    from pipeline_kit.report.pictures import plan_chart

    saga = outcome.saga
    rows = [(service, saga.releases.get(service, ""), _state(saga, service)) for service in saga.done]
    states = {service: _drawn(saga, service) for service in applier.steps}
    session.publish(
        {"release-plan": outcome.verdict},
        f"### pipeline-kit: release plan to {applier.environment}: {outcome.verdict}\n\n"
        f"{markdown_text(outcome.reason)}\n\n"
        + plan_chart(applier.loaded.plan, states).markdown()
        + "\n"
        + markdown_table(["service", "release", "state"], rows),
    )


def _state(saga: Saga, service: str) -> str:
    return "compensated" if service in saga.compensated else "promoted"


def _drawn(saga: Saga, service: str) -> tuple[str, str]:
    """(state, words) of a step in the plan's picture."""
    if service in saga.compensated:
        return "compensated", f"compensated {saga.releases.get(service, '')[:12]}".rstrip()
    if service in saga.done:
        return "passed", f"promoted {saga.releases[service][:12]}"
    if service == saga.failed:
        return "failed", "failed"
    return "waiting", "pending" if saga.open else "not run"


def _finish(session: Session, applier: Applier, outcome: Outcome) -> None:
    from pipeline_kit.errors import EXIT_DENIED

    _publish(session, applier, outcome)
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
    from pipeline_kit.report.pictures import plan_chart

    applier = _applier(session, plan_file, environment, False, None, trust)
    steps, denied, states = 0, [], {}
    for service, planned in applier.plan():
        verdict = "would pass" if planned.passed else "would be DENIED"
        steps += 1
        states[service] = ("passed", verdict) if planned.passed else ("failed", verdict)
        if not planned.passed:
            denied.append(service)
        click.echo(f"{service}: release {planned.release.id} {verdict}")
        click.echo(table(["gate", "verdict", "reason"], [(r.gate, MARK[r.verdict], r.reason) for r in planned.results]))
    summary = f"release plan to {environment}: {steps - len(denied)} of {counted(steps, 'step')} would pass"
    click.echo(summary + (f"; would be DENIED: {', '.join(denied)}" if denied else ""))
    session.publish(
        {"release-plan": "would be denied" if denied else "would pass"},
        f"### pipeline-kit: {summary}\n\n" + plan_chart(applier.loaded.plan, states).markdown(),
    )
    if denied:
        raise click.exceptions.Exit(EXIT_DENIED)


def applier_command(function: Callable[..., None]) -> Callable[..., None]:
    """A command over the plan's Applier: `-f/--to` and the trust, signer and policy options are
    turned into the Applier the command gets, with the session and the environment."""

    @functools.wraps(function)
    def command(
        session: Session,
        /,
        plan_file: Path,
        environment: str,
        interactive: bool,
        rekor_version: str | None,
        **options: Any,
    ) -> None:
        trust = {name: options.pop(name) for name in TRUST_OPTIONS}
        applier = _applier(session, plan_file, environment, interactive, rekor_version, trust)
        function(applier, session, environment, **options)

    decorated: Any = command
    for option in (pass_session, policy_options, signer_options, trust_options, plan_options):
        decorated = option(decorated)
    return decorated  # type: ignore[no-any-return]


@release.command("apply")
@applier_command
def release_apply(applier: Applier, session: Session, environment: str) -> None:
    """Promote every service in dependency order; on a failure compensate the completed ones,
    newest first, and exit 1. A killed apply resumes from the plan's ledger."""
    _finish(session, applier, applier.apply())


@release.command("status")
@plan_options
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@pass_session
def release_status(session: Session, plan_file: Path, environment: str, as_json: bool) -> None:
    """Where the plan stands in ENV (from the plan's ledger)."""
    from pipeline_kit.promotion.model import history
    from pipeline_kit.release_plan import load_plan
    from pipeline_kit.saga import saga_state

    loaded = load_plan(session.resolve(plan_file))
    services = [step.service for step in loaded.plan.steps]
    saga = saga_state(history(loaded.ledger()), environment, loaded.digest, services)
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
    rows = [(service, saga.releases.get(service, ""), _state(saga, service)) for service in saga.done]
    if saga.failed and saga.failed not in saga.done:
        rows.append((saga.failed, "", "failed"))
    if rows:
        click.echo(table(["service", "release", "state"], rows))


@release.command("rollback")
@applier_command
def release_rollback(applier: Applier, session: Session, environment: str) -> None:
    """Compensate a finished plan by hand: every step, newest first."""
    _finish(session, applier, applier.rollback())


# -- the plan as the CI platform's own DAG: one job per part ----------------------------------------


@release.command("start")
@plan_options
@trust_options
@policy_options
@pass_session
def release_start(session: Session, /, plan_file: Path, environment: str, **trust: Any) -> None:
    """Open the saga in the plan's ledger (the first job of an emitted pipeline)."""
    applier = _applier(session, plan_file, environment, False, None, trust)
    click.echo(applier.start())


@release.command("step")
@click.argument("service")
@applier_command
def release_step(applier: Applier, session: Session, environment: str, service: str) -> None:
    """Promote SERVICE as one step of the open saga; exit 1 when it fails (a step done already
    is not run again)."""
    _finish(session, applier, applier.step(service))


@release.command("compensate")
@click.argument("service")
@applier_command
def release_compensate(applier: Applier, session: Session, environment: str, service: str) -> None:
    """Undo SERVICE's completed step (its `compensate:` command, else its signed rollback), once
    every step that needs it is undone; nothing when it never completed."""
    _finish(session, applier, applier.compensate_service(service))


@release.command("finish")
@applier_command
def release_finish(applier: Applier, session: Session, environment: str) -> None:
    """Close the saga (finished, or failed after the compensations) and sign its summary; exit 1
    when it failed."""
    _finish(session, applier, applier.finish())


@release.command("emit")
@plan_options
@click.option("--gitlab", "to_gitlab", is_flag=True, help="A GitLab child pipeline (trigger: include: artifact:).")
@click.option("--github", "to_github", is_flag=True, help="A GitHub workflow (workflow_dispatch, and workflow_call).")
@click.option(
    "--job-environment",
    default="{environment}",
    show_default=True,
    help="Each step's deployment environment; {environment} and {service} are filled in.",
)
@click.option("--install", help="GitLab: the kit pinned to exact code, as the templates' install input.")
@click.option("--requirements", help="GitLab: the kit's hash-pinned lock, as the templates' requirements input.")
@click.option("--python", help="GitLab: an interpreter that has the kit, as the templates' python input.")
@click.option("--templates", help="GitLab: the kit's templates in this project (default: the kit's project).")
@click.option("--kit-commit", help="GitHub: the kit's release commit (40 hex) its setup action is pinned to.")
@click.option(
    "--ledger-in-repository",
    is_flag=True,
    help="GitHub: jobs push the ledger refs with their own token (contents: write), passed in each ledger's "
    "token-variable.",
)
@click.option(
    "--evidence-artifact",
    default="evidence-{service}",
    show_default=True,
    help="GitHub: the artifact holding each service's evidence directory ({service} filled in).",
)
@click.option(
    "--evidence-job",
    default="{service}-sign",
    show_default=True,
    help="GitLab: the parent pipeline's job whose artifacts hold each service's evidence ({service} filled in).",
)
@click.option(
    "--evidence-committed",
    is_flag=True,
    help="The evidence is committed on the ref the pipeline runs from: take nothing.",
)
@click.option("-o", "--output", type=click.Path(path_type=Path, dir_okay=False), help="Write here, not to stdout.")
@pass_session
def release_emit(
    session: Session,
    /,
    plan_file: Path,
    environment: str,
    to_gitlab: bool,
    to_github: bool,
    job_environment: str,
    output: Path | None,
    kit_commit: str | None,
    ledger_in_repository: bool,
    evidence_artifact: str,
    evidence_job: str,
    evidence_committed: bool,
    **gitlab: str | None,
) -> None:
    """Compile the plan into the CI platform's own DAG: one job per step under its environment,
    compensation jobs that run on failure, a last job that closes the saga."""
    from pipeline_kit._internal.fs import atomic_write
    from pipeline_kit.errors import UsageError
    from pipeline_kit.release_plan import load_plan
    from pipeline_kit.saga_pipelines import (
        COMMITTED,
        EvidenceSource,
        github_workflow,
        gitlab_pipeline,
        require_environment,
        require_shared_ledgers,
    )

    if to_gitlab == to_github:
        raise UsageError("say which platform: --gitlab or --github (one of them)")
    platform: Literal["github", "gitlab"] = "gitlab" if to_gitlab else "github"
    loaded = load_plan(session.resolve(plan_file))
    require_environment(loaded, environment)
    if "{" in job_environment.replace("{environment}", "").replace("{service}", ""):
        raise UsageError("--job-environment may use {environment} and {service} only")
    for option, pattern in (("--evidence-artifact", evidence_artifact), ("--evidence-job", evidence_job)):
        if "{service}" not in pattern or "{" in pattern.replace("{service}", ""):
            raise UsageError(f"{option} {pattern!r}: name each service's with {{service}}, and nothing else in braces")
    evidence = COMMITTED if evidence_committed else EvidenceSource(evidence_artifact, evidence_job)
    token_variables = require_shared_ledgers(loaded, platform, in_repository=ledger_in_repository)
    name = plan_file.as_posix()
    if platform == "gitlab":
        text = gitlab_pipeline(
            loaded.plan, environment, name, job_environment=job_environment, evidence=evidence, **gitlab
        )
    else:
        if not kit_commit:
            raise UsageError("--github needs --kit-commit: the kit's release commit its setup action is pinned to")
        text = github_workflow(
            loaded.plan,
            environment,
            name,
            kit_commit=kit_commit,
            job_environment=job_environment,
            ledger_in_repository=ledger_in_repository,
            token_variables=token_variables,
            evidence=evidence,
        )
    if output is None:
        click.echo(text, nl=False)
    else:
        atomic_write(session.resolve(output), text.encode())
