"""`pipeline-kit stop-the-line` and `resume-the-line`: the org's signed switch (docs/stop-the-line.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from pipeline_kit.cli._session import Session, pass_session
from pipeline_kit.cli._trust import identity_token, signer_options, trust_options


def _line_options(function: Any) -> Any:
    function = signer_options(trust_options(function))
    return click.option("--reason", required=True, help="Why (signed into the statement, shown to every project).")(
        function
    )


def _sign(session: Session, action: str, reason: str, trust_config: Path | None, offline: bool, **signer: Any) -> None:
    from pipeline_kit.errors import UsageError
    from pipeline_kit.stopline import sign_line
    from pipeline_kit.trust import Trust, load_trust_config

    config = session.config(required=True)
    assert config is not None
    if config.org is None:
        raise UsageError(
            f"{action}-the-line needs an org: section naming the org ledger and who may stop and resume",
            hint="see docs/stop-the-line.md",
        )
    rekor = int(signer["rekor_version"]) if signer.get("rekor_version") else None
    loaded: list[Any] = []

    def load() -> Any:
        if not loaded:
            loaded.append(load_trust_config(trust_config, rekor_version=rekor, offline=offline))
        return loaded[0]

    mine, after = sign_line(
        config.org,
        session.workdir,
        Trust(None, load),
        "stop" if action == "stop" else "resume",
        reason,
        session.actor(),
        lambda: identity_token(session, load(), bool(signer.get("interactive"))),
    )
    state = "running" if after.running else "stopped"
    verb = "stopped" if action == "stop" else "resumed"
    click.echo(f"the line is {verb}: signed by {mine.describe()}")
    if len(after.standing) > 1 or after.unreadable or (action == "resume" and not after.running):
        click.echo(after.summary(), err=action == "resume")  # what else holds the line
    session.publish(
        {"line": state, "org-ledger-seq": str(mine.seq), "statement": mine.id},
        f"### Stop the line\n\n{verb} by `{mine.signer}` at {mine.signed_at:%Y-%m-%d %H:%M:%SZ}: {mine.reason}\n",
    )


@click.command("stop-the-line")
@_line_options
@pass_session
def stop_the_line(session: Session, /, reason: str, **options: Any) -> None:
    """Stop every project's promotions: sign a stop into the org ledger.

    Every promotion, rollout step and release-plan step of every project whose config names
    the same `org.ledger` is refused until a signed resume lifts it. The signer must satisfy
    `org.stop.identity`. Needs an identity token, as signing does.
    """
    _sign(session, "stop", reason, **options)


@click.command("resume-the-line")
@_line_options
@pass_session
def resume_the_line(session: Session, /, reason: str, **options: Any) -> None:
    """Lift every standing stop of the org's line: sign a resume naming them.

    The signer must satisfy `org.resume.identity`. A resume lifts the stops it names (every
    one standing when it was signed): a stop appended meanwhile stands.
    """
    _sign(session, "resume", reason, **options)
