"""Commands that read evidence: show."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from pipeline_kit.cli._render import emit_json, heading, printable, subjects_table, table
from pipeline_kit.cli._session import Session, evidence_options, pass_session

if TYPE_CHECKING:
    from pipeline_kit.summary import Summary


@click.command()
@evidence_options
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@pass_session
def show(session: Session, as_json: bool) -> None:
    """Summarize an evidence dir: subjects, SBOM, provenance, which files exist.

    A summary, not a verification; exits 1 when a file changed after release.json recorded
    its digest or describes other subjects.
    """
    from pipeline_kit.errors import EXIT_DENIED
    from pipeline_kit.summary import summarize

    summary = summarize(session.evidence())
    if as_json:
        emit_json(summary.as_dict())
    else:
        render_summary(summary)
    if summary.problems:
        raise click.exceptions.Exit(EXIT_DENIED)


def render_summary(summary: Summary) -> None:
    release = summary.release
    source = release["source"]
    named = printable(f"{release['name']} {release['version'] or ''}".rstrip())
    click.echo(heading(f"release {release['id']}") + f"  {named}")
    where = f"{source['repository'] or '(unknown)'} @ {source['commit'] or '?'} {source['ref'] or ''}"
    click.echo(f"  source   {printable(where)}")
    click.echo(f"  built by {printable(release['builder'])} ({release['platform']})")
    click.echo()
    click.echo(subjects_table((s["name"], s["sha256"], s["size"]) for s in release["subjects"]))
    click.echo()
    click.echo(table(["evidence file", "state"], [(f.name, f.state) for f in summary.files]))
    if summary.sbom:
        s = summary.sbom
        click.echo()
        described = (
            "the artifact alone (no dependency source)"
            if not s.sources and not s.components
            else f"{s.components} component{'' if s.components == 1 else 's'} from "
            f"{', '.join(s.sources) or '(unknown sources)'}"
        )
        click.echo(
            f"SBOM        CycloneDX {s.spec_version}, {described}; subjects "
            f"{'match' if s.subjects_match else 'DO NOT MATCH'}"
        )
    if summary.provenance:
        p = summary.provenance
        click.echo(f"provenance  {p.predicate_type}, builder {p.builder_id}")
        click.echo(
            f"            source {p.source or '(unknown)'}; subjects {'match' if p.subjects_match else 'DO NOT MATCH'}"
        )
    if summary.bundles:
        click.echo(f"signed      {len(summary.bundles)} Sigstore bundle(s) (check them with `pipeline-kit verify`)")
    for promotion in summary.promotions:
        click.echo(
            f"promotion   {promotion.environment}: {promotion.verdict} at {promotion.time}"
            + ("" if promotion.signed else " (no VSA)")
        )
    for problem in summary.problems:
        click.echo(click.style(f"problem: {problem}", fg="red"), err=True)
