"""What every command needs: the working directory, the evidence dir, the config, the CI context.

Resolved lazily so a command only pays for what it uses (no config parse for `show`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from pipeline_kit.ci import CIContext
    from pipeline_kit.config import Config
    from pipeline_kit.evidence import EvidenceDir
    from pipeline_kit.ledger import Ledger


@dataclass
class Session:
    workdir: Path
    verbose: bool = False
    evidence_dir: Path | None = None
    config_path: Path | None = None
    _config: Any = field(default=None, repr=False)
    _ci: Any = field(default=None, repr=False)

    def resolve(self, path: Path) -> Path:
        """A path the user gave, as if the kit were started in `-C DIR` (absolute ones unchanged)."""
        return self.workdir / path

    def evidence(self) -> EvidenceDir:
        from pipeline_kit.evidence import DEFAULT_DIR_NAME, EvidenceDir

        return EvidenceDir(self.resolve(self.evidence_dir or Path(DEFAULT_DIR_NAME)))

    def config(self, *, required: bool) -> Config | None:
        """The project's config: the one named by --config, else pipeline-kit.yml here."""
        from pipeline_kit._internal.files import find_config
        from pipeline_kit.errors import ConfigError

        if self._config is None:
            path = self.config_path or find_config(self.workdir)
            if path is None:
                if required:
                    raise ConfigError(
                        self.workdir / "pipeline-kit.yml",
                        None,
                        "file not found",
                        hint="run `pipeline-kit init` to write a starter config",
                    )
                return None
            from pipeline_kit.config import load_config

            self._config = load_config(self.resolve(path))
            from pipeline_kit.gates import compile_gates

            for environment in self._config.environments:  # gate options too, whatever the command
                compile_gates(self._config, environment)
        config: Config = self._config
        return config

    def ci(self) -> CIContext:
        """The run's CI context, read once (locally, four git calls) as the command starts."""
        from pipeline_kit.ci import detect

        if self._ci is None:
            self._ci = detect(os.environ, self.workdir)
        ci: CIContext = self._ci
        return ci

    def publish(self, outputs: dict[str, str], summary: str | None = None) -> None:
        """Step outputs and a job summary, the way the CI platform takes them (nothing locally)."""
        from pipeline_kit.ci import reporter

        report = reporter(os.environ, self.workdir)
        report.outputs(outputs)
        if summary:
            report.summary(summary)

    def mask(self, secret: str) -> None:
        """Ask the CI platform to hide `secret` in its logs (before anything could print it).

        The runner reads workflow commands from stderr as from stdout, so the mask goes there:
        stdout stays pure (--json), and a stderr redirected to a file (which a runner does not
        read) never receives the secret. The kit itself never prints a token; this is for
        anything else that might.
        """
        import stat
        import sys

        from pipeline_kit.ci import reporter

        line = reporter(os.environ, self.workdir).mask(secret)
        try:
            to_file = stat.S_ISREG(os.fstat(sys.stderr.fileno()).st_mode)
        except (OSError, ValueError, AttributeError):
            to_file = True  # not a real stream: say nothing
        if line and not to_file:
            click.echo(line, err=True)

    def ledger(self) -> Ledger:
        from pipeline_kit.ledger import default_ledger, open_ledger

        config = self.config(required=False)
        return open_ledger(config.ledger, self.workdir) if config else default_ledger(self.workdir)

    def actor(self) -> str:
        """Who acts: the CI actor, else the local user."""
        import getpass

        ci = self.ci()
        if ci.actor:
            return f"{ci.platform}:{ci.actor}"
        try:
            return f"local:{getpass.getuser()}"
        except (KeyError, OSError):
            return "local:unknown"


pass_session = click.make_pass_decorator(Session)


def evidence_options(function: Any) -> Any:
    """--evidence-dir and --config, accepted by every command that reads or writes evidence."""
    function = click.option(
        "--config",
        "-c",
        "config_path",
        type=click.Path(path_type=Path, dir_okay=False),
        envvar="PIPELINE_KIT_CONFIG",
        help="Config file. [default: ./pipeline-kit.yml] [env: PIPELINE_KIT_CONFIG]",
        expose_value=False,
        callback=_store("config_path"),
    )(function)
    return click.option(
        "--evidence-dir",
        type=click.Path(path_type=Path, file_okay=False),
        envvar="PIPELINE_KIT_EVIDENCE_DIR",
        help="Evidence directory. [default: ./.pipeline-kit] [env: PIPELINE_KIT_EVIDENCE_DIR]",
        expose_value=False,
        callback=_store("evidence_dir"),
    )(function)


def _store(attribute: str) -> Any:
    def callback(ctx: click.Context, _param: click.Parameter, value: Path | None) -> Path | None:
        if value is not None:
            setattr(ctx.ensure_object(Session), attribute, value)
        return value

    return callback
