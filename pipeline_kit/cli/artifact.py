"""Commands that produce evidence: build, sbom, provenance."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from pipeline_kit.cli._render import emit_json, markdown_table, sources_table, subjects_table
from pipeline_kit.cli._session import Session, evidence_options, pass_session

if TYPE_CHECKING:
    from pipeline_kit.sbom import SourceSpec


@click.command(context_settings={"ignore_unknown_options": False})
@evidence_options
@click.option(
    "--output",
    "-o",
    "outputs",
    envvar="PIPELINE_KIT_BUILD_OUTPUT",
    multiple=True,
    metavar="GLOB",
    help="Output glob (repeatable); replaces artifact.outputs from the config.",
)
@click.option(
    "--subjects",
    "subject_files",
    envvar="PIPELINE_KIT_BUILD_SUBJECTS",
    multiple=True,
    metavar="FILE",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Add the subjects of a SHA256SUMS file written by another job (repeatable).",
)
@click.option("--name", help="Release name. [default: artifact.name, else the directory name]")
@click.option(
    "--release-version",
    "version",
    envvar="PIPELINE_KIT_BUILD_RELEASE_VERSION",
    help="Release version. [default: artifact.version]",
)
@click.option("--json", "as_json", is_flag=True, help="Print release.json instead of a table.")
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
@pass_session
def build(
    session: Session,
    outputs: tuple[str, ...],
    subject_files: tuple[Path, ...],
    name: str | None,
    version: str | None,
    as_json: bool,
    command: tuple[str, ...],
) -> None:
    """Run the build once and record its outputs by digest.

    Runs `artifact.build` (or COMMAND given after `--`), hashes every file matched by the
    output globs, and writes release.json and SHA256SUMS to the evidence dir. With --subjects
    only, nothing is built: the release is made of the checksum files' subjects.

    \b
    Examples:
      pipeline-kit build
      pipeline-kit build -o 'dist/*.whl' -- python -m build --wheel
      pipeline-kit build --subjects linux/SHA256SUMS --subjects macos/SHA256SUMS
    """
    from pipeline_kit.build import BuildRequest
    from pipeline_kit.build import build as run_build

    config = session.config(required=not (subject_files or outputs))
    artifact = config.artifact if config else None
    build_command: str | list[str] | None = list(command) if command else None
    if build_command is None and artifact is not None and not subject_files:
        build_command = artifact.build
    request = BuildRequest(
        workdir=session.workdir,
        name=name or (artifact.name if artifact else session.workdir.name),
        version=version or (artifact.version if artifact else None),
        command=build_command,
        outputs=outputs or (tuple(artifact.outputs) if artifact and not subject_files else ()),
        subject_files=[session.resolve(p) for p in subject_files],
        pass_env=tuple(artifact.pass_env) if artifact else (),
        secrets=config.secret_variables if config else frozenset(),
        on_output=lambda line: click.echo(line, err=True),
    )
    evidence = session.evidence()
    release = run_build(request, evidence, session.ci())
    session.publish(
        {
            "release-id": release.id,
            "digest": f"sha256:{release.subjects[0].sha256}",
            "subjects": "".join(f"{s.sha256}  {s.name}\n" for s in release.subjects).rstrip("\n"),
            "evidence-dir": str(evidence.root),
        },
        f"### pipeline-kit build: release `{release.id}`\n\n"
        + markdown_table(["subject", "sha256", "size"], [(s.name, s.sha256, s.size) for s in release.subjects]),
    )
    if as_json:
        click.echo(release.to_json().decode(), nl=False)
        return
    click.echo(f"release {release.id}  {release.name} {release.version or ''}".rstrip())
    click.echo(subjects_table((s.name, s.sha256, s.size) for s in release.subjects))
    click.echo(f"wrote {evidence.path('release.json')} and SHA256SUMS")


@click.command()
@evidence_options
@click.option(
    "--source",
    "-s",
    "sources",
    envvar="PIPELINE_KIT_SBOM_SOURCE",
    multiple=True,
    metavar="[TYPE:]PATH",
    help="Dependency record to read (repeatable); TYPE when the name does not tell.",
)
@click.option(
    "--python",
    "python",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Also describe the packages installed for this Python interpreter.",
)
@click.option("--json", "as_json", is_flag=True, help="Print what each source contributed as JSON.")
@pass_session
def sbom(session: Session, sources: tuple[str, ...], python: Path | None, as_json: bool) -> None:
    """Write a CycloneDX 1.6 SBOM of the current release (sbom.cdx.json).

    Sources: --source/--python, else sbom.sources from the config, else every lockfile found
    here (requirements*.txt, poetry.lock, uv.lock, Pipfile.lock, pylock.toml,
    package-lock.json, go.sum, Cargo.lock). The SBOM is schema-validated before it is written.
    """
    from pipeline_kit import sbom as sbom_lib

    specs = _source_specs(session, sources, python)
    evidence = session.evidence()
    release = evidence.load_release()
    release, results = sbom_lib.write_sbom(evidence, release, specs)
    session.publish(
        {"sbom": str(evidence.path("sbom.cdx.json")), "components": str(sum(len(r.packages) for r in results))}
    )
    if as_json:
        emit_json([{"source": r.source, "kind": r.kind, "packages": len(r.packages)} for r in results])
        return
    click.echo(sources_table(results))
    click.echo(f"wrote {evidence.path('sbom.cdx.json')} (CycloneDX 1.6, validated)")


def _source_specs(session: Session, sources: tuple[str, ...], python: Path | None) -> list[SourceSpec]:
    from pipeline_kit import sbom as sbom_lib

    workdir = session.workdir
    specs = []
    for text in sources:
        kind, sep, path = text.partition(":")
        if sep and kind in sbom_lib.SOURCES:
            specs.append(sbom_lib.spec_for(workdir, path, kind))
        else:
            specs.append(sbom_lib.spec_for(workdir, text, None))
    if python is not None:
        specs.append(sbom_lib.spec_for(workdir, str(python), "environment"))
    if specs:
        return specs
    config = session.config(required=False)
    configured = config.sbom.entries() if config else None
    if configured is not None:
        return [sbom_lib.spec_for(workdir, entry.path, entry.type) for entry in configured]
    return sbom_lib.detect(workdir)


@click.command()
@evidence_options
@pass_session
def provenance(session: Session) -> None:
    """Write SLSA provenance v1 for the current release (provenance.intoto.json).

    Filled from the CI context: GitHub Actions (GITHUB_*), GitLab CI (CI_*), or a local git
    checkout, which is marked as a local, unsigned build.
    """
    from pipeline_kit.provenance import write_provenance

    evidence = session.evidence()
    release = evidence.load_release()
    ci = session.ci()
    config = session.config(required=False)
    write_provenance(release, ci, evidence, session.workdir, config)
    session.publish({"provenance": str(evidence.path("provenance.intoto.json"))})
    click.echo(
        f"wrote {evidence.path('provenance.intoto.json')} ({ci.platform} build, "
        f"{len(release.subjects)} subject{'s' if len(release.subjects) != 1 else ''})"
    )
