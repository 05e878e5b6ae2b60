"""The `pipeline-kit` command: a thin click layer over the library.

Each command parses its options, calls one library function and renders the result. Library
modules are imported inside the commands, and a command's module only when that command runs, so
`pipeline-kit --help` loads click and nothing else. Every PipelineKitError becomes one `error:` line
(plus a hint) and its exit code.
"""

from __future__ import annotations

import atexit
import gc
import importlib
import os
import sys
from collections.abc import Sequence

import click

from pipeline_kit import __version__
from pipeline_kit.errors import EXIT_ENVIRONMENT, EXIT_USAGE, PipelineKitError

# Each command: the module under pipeline_kit.cli that defines it, and the line `--help` shows for
# it (the start of its docstring; a test keeps the two in step), so listing imports none of them.
COMMANDS: dict[str, tuple[str, str]] = {
    "init": ("project", "Write a commented starter pipeline-kit.yml for the project..."),
    "build": ("artifact", "Run the build once and record its outputs by digest."),
    "sbom": ("artifact", "Write a CycloneDX 1.6 SBOM of the current release..."),
    "provenance": ("artifact", "Write SLSA provenance v1 for the current release..."),
    "sign": ("signing", "Sign every subject and attest the provenance and SBOM with..."),
    "attest": ("signing", "Sign the release's test results (in-toto test-result..."),
    "verify": ("signing", "Verify the evidence dir against an identity policy."),
    "identity": ("signing", "Print the identity CI signs as here, and the verify command..."),
    "plan": ("promotion", "Dry-run a promotion: verify the evidence and explain every..."),
    "promote": ("promotion", "Promote the current release to ENV, then run DEPLOY (after..."),
    "arrive": ("arrival", "Complete a promotion another job deployed: judge it again,..."),
    "rollback": ("rolling_back", "Roll ENV back to the previous good release, re-verified,..."),
    "drift": ("drift", "Ask ENV what it runs and compare with the signed release it..."),
    "ledger": ("promotion", "Read, verify and annotate the promotion ledger."),
    "rollout": ("rollout", "Follow, resume or abort a progressive rollout (an..."),
    "flags": ("flags", "Turn kill switches (feature flags in `flags:`) off and back..."),
    "migrations": ("migrations", "Migration safety: expand / migrate / contract, lock risk,..."),
    "contracts": ("contracts", "Consumer-driven contracts (Pact) as signed evidence: verify,..."),
    "release": ("release", "Release several services together by a release plan..."),
    "report": ("report", "Write the release report: one self-contained HTML file, from..."),
    "stop-the-line": ("line", "Stop every project's promotions: sign a stop into the org..."),
    "resume-the-line": ("line", "Lift every standing stop of the org's line: sign a resume..."),
    "show": ("evidence", "Summarize an evidence dir: subjects, SBOM, provenance,..."),
    "run": ("project", "Run the pipeline: build, SBOM, provenance, sign, then..."),
}


def load(name: str) -> click.Command:
    """The command `name`, importing the module that defines it."""
    module = importlib.import_module(f"pipeline_kit.cli.{COMMANDS[name][0]}")
    command: click.Command = getattr(module, name.replace("-", "_"))
    return command


class _Context(click.Context):
    def make_formatter(self) -> click.HelpFormatter:
        """click's formatter at click's width, the terminal's columns asked of os: click asks
        shutil, whose import (with zlib, bz2 and lzma) is a twentieth of `pipeline-kit --help`."""
        return click.HelpFormatter(width=self.terminal_width or _help_width(self.max_content_width or 80))


def _help_width(max_width: int) -> int:
    """What click.HelpFormatter computes when given no width (shutil.get_terminal_size's answer:
    $COLUMNS, else the terminal's, else 80), bounded by max_width and 50 as click does."""
    from click import formatting

    if formatting.FORCED_WIDTH is not None:
        return formatting.FORCED_WIDTH
    return max(min(terminal_columns() or 80, max_width) - 2, 50)


def terminal_columns() -> int | None:
    """$COLUMNS when set, else the width of the terminal standard output is; None for anything
    else (a log, a pipe). Here, not in a module of its own: `--help` loads no more than this."""
    import os

    try:
        columns = int(os.environ.get("COLUMNS", ""))
    except ValueError:
        columns = 0
    if columns > 0:
        return columns
    try:
        return os.get_terminal_size(sys.__stdout__.fileno()).columns or None  # type: ignore[union-attr]
    except (AttributeError, ValueError, OSError):
        return None


class _Commands(click.Group):
    """A group whose commands are imported when one runs, not to list them."""

    context_class = _Context

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        return load(cmd_name) if cmd_name in COMMANDS else None

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        with formatter.section("Commands"):
            # a longer name goes on a line of its own, so every description keeps its one line
            formatter.write_dl([(name, COMMANDS[name][1]) for name in self.list_commands(ctx)], col_max=10)


@click.group(cls=_Commands, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="pipeline-kit")
@click.option(
    "-C",
    "--directory",
    "workdir",
    type=click.Path(file_okay=False, exists=True),  # a str: pathlib loads with the command
    default=".",
    show_default=True,
    help="Run as if started in this directory.",
)
@click.option("-v", "--verbose", is_flag=True, help="Show the underlying cause of errors.")
@click.pass_context
def cli(ctx: click.Context, workdir: str, verbose: bool) -> None:
    """Build once, describe and sign the artifact, promote the same digest.

    \b
    Exit codes: 0 ok, 1 denied or verification failed,
                2 usage or configuration error, 3 environment or backend failure.
    """
    import os
    from pathlib import Path

    from pipeline_kit._internal.proc import APART_VARIABLE, run_apart
    from pipeline_kit.cli._session import Session

    if _PROGRAM:  # a command runs in the program itself (not `--help`, not a caller's process)
        import signal

        signal.signal(signal.SIGTERM, _terminated)
    # the kit's signing jobs say so: nothing the project names runs in them (see docs/signing-layouts.md)
    apart = os.environ.get(APART_VARIABLE, "").strip().lower() in ("1", "true")
    run_apart(f"{APART_VARIABLE} is set: this job signs apart from user code" if apart else None)
    ctx.obj = Session(workdir=Path(workdir).absolute(), verbose=verbose)
    _VERBOSE.append(verbose)


_VERBOSE: list[bool] = []  # set by the group's callback once click has parsed -v
_PROGRAM: list[bool] = []  # set by main when it is the program, not a call in a caller's process


def _report_error(exc: PipelineKitError) -> None:
    """One error line (a file annotation on GitHub Actions), then the hint if there is one."""
    import os
    from pathlib import Path

    from pipeline_kit.ci import reporter
    from pipeline_kit.errors import InputError

    file = exc.path if isinstance(exc, InputError) else None
    click.echo(reporter(os.environ, Path.cwd()).error_line(exc.message, file), err=True)
    if exc.hint:
        click.echo(f"hint: {exc.hint}", err=True)


def _terminated(signum: int, frame: object) -> None:
    """SIGTERM (a cancelled CI job): exit through the exit handlers, which kill the bounded
    commands still running (each in its own session, which the runner's signal does not reach)."""
    sys.exit(128 + signum)


def _line_buffered() -> None:
    """Every line out as it is written when stdout or stderr is a pipe or a file (a CI log reads
    both): results on stdout and progress on stderr then reach it in the order they were written.
    click.echo flushes each call; this covers anything else that writes to them (a library's print)."""
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        try:
            if reconfigure is not None and not stream.isatty():
                reconfigure(line_buffering=True)
        except (OSError, ValueError):  # closed, or not a real stream: leave it
            pass


def main(argv: Sequence[str] | None = None) -> None:
    if argv is None:  # the program itself, not a caller in its own process
        _PROGRAM.append(True)
        _line_buffered()
        # pydantic looks for plugins (entry points of every installed package) before its first
        # validation, importing importlib.metadata to do so; the kit's models want none. (The
        # build, command gates and deploys never see it: they get no PYDANTIC_ variable.)
        os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
        # Importing the Sigstore client and pydantic's models makes a few hundred thousand
        # objects that live as long as the process: a young generation of 700 meant some 160
        # collections (60 ms) in `run`; 10,000 leaves a tenth of them and still collects through
        # a long rollout. The interpreter's last collections at exit walk them all again (0.1 s
        # after signing): the process ends with them, so they are frozen out of the collector's
        # sight; nothing the kit writes waits on a collection (every file is closed where written).
        gc.set_threshold(10_000, *gc.get_threshold()[1:])
        atexit.register(gc.freeze)
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
