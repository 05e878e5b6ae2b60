"""Commands about the project as a whole: init, run."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from pipeline_kit.cli._render import heading, sources_table, subjects_table, table
from pipeline_kit.cli._session import Session, evidence_options, pass_session

if TYPE_CHECKING:
    from pipeline_kit.pipeline import DryRun


@click.command()
@click.option("--force", is_flag=True, help="Overwrite an existing pipeline-kit.yml.")
@pass_session
def init(session: Session, force: bool) -> None:
    """Write a commented starter pipeline-kit.yml for the project here.

    Detects the build system, the lockfiles and the git remote (for the signing identity).
    """
    from pipeline_kit.scaffold import write_starter_config

    path = write_starter_config(session.workdir, force=force)
    click.echo(f"wrote {path}; review artifact.build and artifact.outputs, then run `pipeline-kit run --dry-run`")


@click.command()
@evidence_options
@click.option("--dry-run", is_flag=True, help="Build and describe locally; sign nothing.")
@pass_session
def run(session: Session, dry_run: bool) -> None:
    """Run the pipeline: build, SBOM, provenance, then show what CI would sign.

    With --dry-run everything happens locally and nothing is signed or published; the
    summary says which identity CI would sign as and whether the configured policy accepts it.
    """
    from pipeline_kit.build import BuildRequest
    from pipeline_kit.errors import UsageError
    from pipeline_kit.pipeline import dry_run as run_dry
    from pipeline_kit.sbom import detect, spec_for

    if not dry_run:
        raise UsageError(
            "`pipeline-kit run` needs --dry-run in this version: signing is not available yet",
            hint="run `pipeline-kit run --dry-run` to see what CI would do",
        )
    config = session.config(required=True)
    assert config is not None
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
        on_output=lambda line: click.echo(f"  | {line}", err=True),
    )
    click.echo(heading("build") + f"  {config.artifact.build or '(no build command)'}", err=True)
    result = run_dry(
        request, specs, config, session.ci(), session.evidence(), session.workdir, session.ledger(), session.actor()
    )
    _render(result, session)


def _render(result: DryRun, session: Session) -> None:
    release, ci, plan = result.release, result.ci, result.signing
    evidence = session.evidence()
    click.echo(heading(f"release {release.id}") + f"  {release.name} {release.version or ''}".rstrip())
    click.echo(subjects_table((s.name, s.sha256, s.size) for s in release.subjects))
    click.echo()
    click.echo(heading("sbom") + f"  {evidence.path('sbom.cdx.json')}")
    click.echo(sources_table(result.sources))
    click.echo()
    click.echo(heading("provenance") + f"  {evidence.path('provenance.intoto.json')}")
    click.echo(f"  builder  {release.build.builder_id}")
    click.echo(f"  source   {release.source.repository or '(no git remote)'} @ {release.source.commit or '?'}")
    for note in ci.notes:
        click.echo(f"  note     {note}")
    click.echo()
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
    for item in result.plans:
        click.echo()
        click.echo(heading(f"plan {item.environment}") + ("  would pass" if item.passed else "  would be blocked"))
        click.echo(table(["gate", "verdict", "reason"], [(r.gate, r.verdict, r.reason) for r in item.results]))
