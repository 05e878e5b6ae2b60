"""The `pipeline-kit` command: a thin click layer over the library.

Each command parses its options, calls one library function and renders the result. Library
modules are imported inside the commands, so `pipeline-kit --help` loads click and nothing
heavy. Every PipelineKitError becomes one `error:` line (plus a hint) and its exit code.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

import click

from pipeline_kit import __version__
from pipeline_kit.cli import artifact, evidence, flags, migrations, project, promotion, release, signing
from pipeline_kit.cli._session import Session
from pipeline_kit.errors import EXIT_ENVIRONMENT, EXIT_USAGE, PipelineKitError


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="pipeline-kit")
@click.option(
    "-C",
    "--directory",
    "workdir",
    type=click.Path(path_type=Path, file_okay=False, exists=True),
    default=".",
    show_default=True,
    help="Run as if started in this directory.",
)
@click.option("-v", "--verbose", is_flag=True, help="Show the underlying cause of errors.")
@click.pass_context
def cli(ctx: click.Context, workdir: Path, verbose: bool) -> None:
    """Build once, describe and sign the artifact, promote the same digest.

    \b
    Exit codes: 0 ok, 1 denied or verification failed,
                2 usage or configuration error, 3 environment or backend failure.
    """
    ctx.obj = Session(workdir=workdir.absolute(), verbose=verbose)
    _VERBOSE.append(verbose)


for command in (
    project.init,
    artifact.build,
    artifact.sbom,
    artifact.provenance,
    signing.sign,
    signing.attest,
    signing.verify,
    signing.identity,
    promotion.plan,
    promotion.promote,
    promotion.rollback,
    promotion.ledger,
    promotion.rollout,
    flags.flags,
    migrations.migrations,
    release.release,
    evidence.show,
    project.run,
):
    cli.add_command(command)


_VERBOSE: list[bool] = []  # set by the group's callback once click has parsed -v


def _report_error(exc: PipelineKitError) -> None:
    """One error line (a file annotation on GitHub Actions), then the hint if there is one."""
    import os

    from pipeline_kit.ci import reporter
    from pipeline_kit.errors import InputError

    file = exc.path if isinstance(exc, InputError) else None
    click.echo(reporter(os.environ, Path.cwd()).error_line(exc.message, file), err=True)
    if exc.hint:
        click.echo(f"hint: {exc.hint}", err=True)


def main(argv: Sequence[str] | None = None) -> None:
    try:
        # Every option can also come from PIPELINE_KIT_<COMMAND>_<OPTION> (e.g. PIPELINE_KIT_PROMOTE_TO):
        # the composite actions pass their inputs that way, never on a command line they build.
        result = cli.main(args=argv, prog_name="pipeline-kit", standalone_mode=False, auto_envvar_prefix="PIPELINE_KIT")
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(EXIT_USAGE if exc.exit_code == 2 else exc.exit_code)
    except click.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except PipelineKitError as exc:
        # -v as parsed by click (not any "-v" in argv, which may belong to a build command);
        # verbose shows the cause and keeps the documented exit code
        if _VERBOSE and _VERBOSE[-1]:
            import traceback

            traceback.print_exception(exc, file=sys.stderr)
        _report_error(exc)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as exc:  # a bug, not the user's doing: one line, never a traceback unless -v
        if _VERBOSE and _VERBOSE[-1]:
            raise
        click.echo(f"error: internal error: {type(exc).__name__}: {str(exc)[:200]}", err=True)
        click.echo("hint: run again with -v for the cause, and please report it", err=True)
        sys.exit(EXIT_ENVIRONMENT)
    sys.exit(result if isinstance(result, int) else 0)
