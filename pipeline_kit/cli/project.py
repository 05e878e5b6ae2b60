"""Commands about the project as a whole: init, run."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from pipeline_kit.cli._render import heading, sources_table, subjects_table
from pipeline_kit.cli._session import Session, evidence_options, pass_session
from pipeline_kit.cli._trust import (
    identity_token,
    policy_options,
    project_for,
    signer_options,
    signer_trust,
    trust_options,
)
from pipeline_kit.cli.promotion import publish_plan, render_after_gates, render_plan, render_promotion
from pipeline_kit.cli.rollout import show_measurement

if TYPE_CHECKING:
    from pipeline_kit.build import BuildRequest
    from pipeline_kit.ci import CIContext
    from pipeline_kit.config import Config
    from pipeline_kit.models import Release
    from pipeline_kit.pipeline import DryRun, FullRun
    from pipeline_kit.promotion.deciding import Plan
    from pipeline_kit.promotion.model import Project
    from pipeline_kit.sbom import SourceResult, SourceSpec
    from pipeline_kit.trust import Trust


@click.command()
@click.option("--force", is_flag=True, help="Overwrite an existing pipeline-kit.yml.")
@pass_session
def init(session: Session, force: bool) -> None:
    """Write a commented starter pipeline-kit.yml for the project here.

    Detects the build system, the lockfiles and the git remote (for the signing identity).
    """
    from pipeline_kit.identity import IDENTITY_GUIDE
    from pipeline_kit.scaffold import identity_example, identity_gap, npm_packs_config, write_starter_config

    path, project = write_starter_config(session.workdir, force=force)
    click.echo(f"wrote {path} (build, outputs, SBOM sources, signing identity, dev -> staging -> prod)")
    click.echo("kept the evidence, the ledger and the build outputs out of git and out of packages (.gitignore)")
    if not project.sources:
        click.echo(
            "no lockfile found: the SBOM will list the artifact alone until there is one "
            "(npm install, uv lock, cargo generate-lockfile, go mod tidy) or sbom.sources names one"
        )
    if npm_packs_config(session.workdir):
        click.echo(
            f"npm pack would include {path.name}: list what the package ships in package.json's `files` "
            "(e.g. `npm pkg set 'files[]=index.js'`)"
        )
    gap = identity_gap(project)
    if gap is not None:
        # unknown denies: without a policy every signed-evidence gate would deny, so say it now
        click.echo(f"could not derive signing.identity: {gap}; until it is set, every signed-evidence gate denies")
        click.echo(f"add it under `signing:` in {path.name} (see {IDENTITY_GUIDE}), e.g. for GitHub Actions:")
        for line in identity_example(project.repository).splitlines():
            click.echo(f"    {line}")
        click.echo("next: add signing.identity, review artifact.build, then `pipeline-kit run --dry-run`")
        return
    click.echo("next: review artifact.build and signing.identity, then `pipeline-kit run --dry-run`")


@click.command()
@click.option("--dry-run", is_flag=True, help="Build and describe locally; sign, record and deploy nothing.")
@click.option(
    "--to",
    "environment",
    envvar="PIPELINE_KIT_RUN_TO",
    help="Environment to promote to. [default: the first one in the config]",
)
@click.option("--no-promote", is_flag=True, help="Stop after signing.")
@click.option("--reason", help="Why (recorded with the promotion).")
@evidence_options
@trust_options
@signer_options
@policy_options
@pass_session
def run(
    session: Session,
    /,
    dry_run: bool,
    environment: str | None,
    no_promote: bool,
    reason: str | None,
    rekor_version: str | None,
    interactive: bool,
    **trust: Any,
) -> None:
    """Run the pipeline: build, SBOM, provenance, sign, then promote to the first environment.

    One process and one sign-in for what CI does across jobs; the promotion runs every gate,
    records its decision, VSA and ledger entry, and deploys like `promote`. With --dry-run
    nothing is signed, recorded or deployed: the summary says which identity CI would sign as,
    whether the policy accepts it, and how every environment's gates would judge the release.
    """
    config = session.config(required=True)
    assert config is not None
    request, specs = _build_request(session, config)
    click.echo(heading("build") + f"  {config.artifact.build or '(no build command)'}", err=True)
    if dry_run:
        from pipeline_kit.pipeline import dry_run as run_dry

        dry = run_dry(
            request, specs, config, session.ci(), session.evidence(), session.workdir, session.ledger(), session.actor()
        )
        _render_dry(dry, session)
        return
    from pipeline_kit.errors import UsageError
    from pipeline_kit.pipeline import full_run

    order = config.environment_order()
    target = None if no_promote else environment or (order[0] if order else None)
    if target is not None and target not in order:
        raise UsageError(f"unknown environment {target!r}; the config has: {', '.join(order) or 'none'}")
    trusted = signer_trust(session, trust, rekor_version)
    result = full_run(
        request,
        specs,
        session.ci(),
        _project(session, config, trusted),
        token=lambda: identity_token(session, trusted.load(), interactive),
        environment=target,
        reason=reason,
        on_output=lambda line: click.echo(f"  | {line}", err=True),
        on_progress=show_measurement,  # the same progress as `promote`
        on_step=lambda line: click.echo(line, err=True),
    )
    _render_run(result, session)


def _build_request(session: Session, config: Config) -> tuple[BuildRequest, list[SourceSpec]]:
    """What the build runs and records, and the SBOM's sources (configured, else detected)."""
    from pipeline_kit.build import BuildRequest
    from pipeline_kit.sbom import detect, spec_for

    configured = config.sbom.entries()
    specs = (
        [spec_for(session.workdir, e.path, e.type) for e in configured]
        if configured is not None
        else detect(session.workdir)
    )
    request = BuildRequest(
        workdir=session.workdir,
        name=config.artifact.name,
        version=config.artifact.version,
        command=config.artifact.build,
        outputs=config.artifact.outputs,
        pass_env=tuple(config.artifact.pass_env),
        secrets=config.secret_variables,
        on_output=lambda line: click.echo(f"  | {line}", err=True),
    )
    return request, specs


def _project(session: Session, config: Config, trusted: Trust) -> Project:
    """The project the run signs (and promotes) in."""
    if config.environment_order():
        return project_for(session, trusted)
    # nothing to promote to; signing still needs the evidence and whom to trust
    from pipeline_kit.promotion.model import Project

    return Project(config, session.evidence(), session.workdir, session.ledger(), trusted, session.actor())


def _render_run(result: FullRun, session: Session) -> None:
    """What a run described and signed, and its promotion (exit 1 when denied)."""
    from pipeline_kit.errors import EXIT_DENIED

    _render_description(result.release, result.sources, result.ci, session)
    signed = result.signed
    click.echo(heading("signed") + f"  as {signed.identity} ({signed.issuer}); token from {signed.token_source}")
    for bundle in signed.bundles:
        click.echo(f"  {session.evidence().path(bundle)}")
    outputs = {
        "release-id": signed.release.id,
        "bundles": "\n".join(str(session.evidence().path(b)) for b in signed.bundles),
    }
    session.publish(outputs)
    if result.promotion is None:
        return
    promotion = result.promotion
    click.echo()
    click.echo(heading(f"promote {promotion.plan.environment}"))
    publish_plan(session, promotion.plan, promotion.decision.verdict, promotion)
    render_promotion(promotion)
    if promotion.decision.verdict == "denied":
        raise click.exceptions.Exit(EXIT_DENIED)


def _render_description(
    release: Release, sources: list[SourceResult], ci: CIContext, session: Session, *, kept: bool = False
) -> None:
    """What was built and described; `kept`: the release was signed before, its SBOM kept as it was."""
    evidence = session.evidence()
    click.echo(heading(f"release {release.id}") + f"  {release.name} {release.version or ''}".rstrip())
    click.echo(subjects_table((s.name, s.sha256, s.size) for s in release.subjects))
    click.echo()
    click.echo(heading("sbom") + f"  {evidence.path('sbom.cdx.json')}" + ("  (as signed before)" if kept else ""))
    if not kept:
        click.echo(sources_table(sources))
    click.echo()
    click.echo(heading("provenance") + f"  {evidence.path('provenance.intoto.json')}")
    click.echo(f"  builder  {release.build.builder_id}")
    click.echo(f"  source   {release.source.repository or '(no git remote)'} @ {release.source.commit or '?'}")
    for note in ci.notes:
        click.echo(f"  note     {note}")
    click.echo()


def _render_dry(result: DryRun, session: Session) -> None:
    plan = result.signing
    _render_description(result.release, result.sources, result.ci, session, kept=result.signed_before)
    if result.signed_before:
        archive = session.evidence().archive(result.release.id)
        click.echo(f"note: this release was signed here before: its evidence is shown as signed ({archive})\n")
    click.echo(heading("would sign") + "  (dry run: nothing signed)")
    for bundle, content in plan.bundles:
        click.echo(f"  {bundle}\n      {content}")
    click.echo(f"  as       {plan.signer}")
    if plan.issuer:
        click.echo(f"  issuer   {plan.issuer}")
    click.echo(f"  token    {plan.token_source}")
    click.echo(f"  policy   {plan.policy or '(none configured)'}")
    click.echo(f"  verdict  {plan.verdict}")
    if plan.note:
        click.echo(f"  note     {plan.note}")
    projected = plan.policy is not None  # judged as CI will, once it signs as the policy's identity
    for item in result.plans:
        click.echo()
        render_plan(item, projected)  # the same words as `pipeline-kit plan`
        render_after_gates(session, item.environment)
    click.echo()
    passing = [item.environment for item in result.plans if item.passed]
    where = "in CI" if projected else "now"
    click.echo(
        f"summary: release {result.release.id}; {len(passing)} of {len(result.plans)} environment(s) would pass "
        + where
        + (f" ({', '.join(passing)})" if passing else "")
    )
    foreign = result.foreign_source
    for item in result.plans:
        blocking = item.blocking()
        if blocking:  # every gate that blocks, each with its reason (a freeze says when it ends)
            reasons = []
            for r in blocking:
                reason = r.reason
                if foreign is not None and r.gate == "provenance" and reason.endswith(f", not {foreign.expected}"):
                    reason = (
                        reason.removesuffix(f", not {foreign.expected}") + ", not the policy's repository (why: below)"
                    )
                reasons.append(f"{r.gate}: {reason}")
            click.echo(f"  {item.environment}: blocked by " + "; ".join(reasons))
        else:
            click.echo(f"  {item.environment}: passes")
        click.echo("    " + _gates_summary(item, projected))
    if foreign is not None:
        elsewhere = f"{len(foreign.passing)} of {len(result.plans)} environment(s) would pass in CI" + (
            f" ({', '.join(foreign.passing)})" if foreign.passing else ""
        )
        click.echo(
            f"why: this checkout's origin is {foreign.built_from}, not the policy's repository {foreign.expected} "
            "(signing.identity.repository), and CI denies a release built from any other repository, so this "
            f"clone is judged as a different repository; built from {foreign.expected}, {elsewhere}"
        )
        click.echo(
            "next: in your own project, `pipeline-kit init` (it takes signing.identity from that project's "
            "origin) then `pipeline-kit run --dry-run`; or set signing.identity here to your repository"
        )
    elif any(not item.passed for item in result.plans) and projected:
        click.echo("next: fix what blocks above (CI would hit it too), then commit and let CI sign")
    elif projected:
        click.echo(
            "next: commit pipeline-kit.yml and let CI sign as the policy's identity, or "
            "`pipeline-kit run` to sign here and promote to the first environment"
        )
    else:
        from pipeline_kit.identity import IDENTITY_GUIDE

        click.echo(
            "next: add signing.identity to pipeline-kit.yml: the issuer and san-regex (or san) CI signs as, "
            f"and your repository (see {IDENTITY_GUIDE}; `pipeline-kit identity` in CI prints them), then run again"
        )


def _gates_summary(item: Plan, projected: bool) -> str:
    """Which gates pass here, which only CI decides, which deny: one line per environment."""
    deferred = [r.gate for r in item.results if r.verdict == "passed" and r.evidence.get("deferred")]
    here = [r.gate for r in item.results if r.verdict == "passed" and not r.evidence.get("deferred")]
    denied = [r.gate for r in item.results if r.verdict != "passed"]
    parts = [f"pass: {', '.join(here) or 'none'}"]
    if deferred:
        parts.append(f"{'CI alone decides' if projected else 'deferred'}: {', '.join(deferred)}")
    if denied:
        parts.append(f"deny: {', '.join(denied)}")
    return "; ".join(parts)
