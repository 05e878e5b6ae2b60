"""`pipeline-kit flags kill|restore`: the kill switches by hand, recorded in the ledger."""

from __future__ import annotations

import click

from pipeline_kit.cli._session import Session, evidence_options, pass_session


@click.group()
def flags() -> None:
    """Turn kill switches (feature flags in `flags:`) off and back on, recorded in the ledger."""


def _switch(session: Session, flag: str, environment: str, reason: str, restore: bool) -> None:
    from pipeline_kit.promotion.model import require_environment
    from pipeline_kit.promotion.remediation import switch_flag

    config = require_environment(session.config(required=True))
    what = switch_flag(
        config, session.workdir, session.ledger(), session.actor(), flag, environment, reason, restore=restore
    )
    click.echo(what)


@flags.command("kill")
@click.argument("flag")
@click.option("--env", "environment", required=True, help="The environment to turn it off in.")
@click.option("--reason", required=True, help="Why (recorded).")
@evidence_options
@pass_session
def kill(session: Session, flag: str, environment: str, reason: str) -> None:
    """Turn FLAG off in ENV: every evaluation gets its off variant (flagd) or it is switched off (Unleash)."""
    _switch(session, flag, environment, reason, restore=False)


@flags.command("restore")
@click.argument("flag")
@click.option("--env", "environment", required=True, help="The environment to turn it back on in.")
@click.option("--reason", required=True, help="Why (recorded).")
@evidence_options
@pass_session
def restore(session: Session, flag: str, environment: str, reason: str) -> None:
    """Undo a kill of FLAG in ENV: flagd gets its saved variant and targeting back; Unleash switches it on
    (only a flag the kit turned off: tagged pipeline-kit-off:ENV)."""
    _switch(session, flag, environment, reason, restore=True)
