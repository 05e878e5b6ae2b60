"""`pipeline-kit contracts verify`: a consumer's contracts verified against this release, signed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from pipeline_kit.cli._session import Session, evidence_options, pass_session
from pipeline_kit.cli._trust import (
    identity_token,
    policy_options,
    signer_options,
    signer_trust,
    trust_options,
)


@click.group()
def contracts() -> None:
    """Consumer-driven contracts (Pact) as signed evidence: verify, and the contracts gate."""


@contracts.command("verify")
@click.option(
    "--consumer",
    "consumer_dir",
    required=True,
    type=click.Path(path_type=Path, file_okay=False),
    help="The consumer's project directory (or its evidence dir): its signed contracts are verified.",
)
@click.option("--provider-url", required=True, help="Where this release runs for the verifier (http://host:port).")
@click.option("--state-change-url", help="The provider's state change endpoint, for pacts with provider states.")
@evidence_options
@trust_options
@signer_options
@policy_options
@pass_session
def contracts_verify(
    session: Session,
    /,
    consumer_dir: Path,
    provider_url: str,
    state_change_url: str | None,
    interactive: bool,
    rekor_version: str | None,
    **trust: Any,
) -> None:
    """Run the Pact verifier on the consumer's contracts with this service (taken from its signed
    evidence) against this release at --provider-url, and sign each that passes about this
    release (contracts/<consumer>.<pact>.sigstore.json). Exit 1 when a contract fails."""
    from pipeline_kit.contracts import consumer_evidence, verify_consumer
    from pipeline_kit.errors import EXIT_DENIED, UsageError

    config = session.config(required=True)
    assert config is not None
    if config.contracts is None:
        raise UsageError("no contracts: section in pipeline-kit.yml (this service's name in the contracts)")
    trusted = signer_trust(session, trust, rekor_version)
    if trusted.policy is None:
        raise UsageError("no identity policy: who must have signed the consumer's contracts?")
    directory = session.resolve(consumer_dir)
    if not directory.is_dir():
        raise UsageError(f"--consumer {consumer_dir}: no such directory")
    consumer = consumer_evidence(directory)
    release, results = verify_consumer(
        session.evidence(),
        config.contracts.name,
        consumer,
        trusted.policy,
        trusted.load(),
        provider_url,
        state_change_url,
        lambda: identity_token(session, trusted.load(), interactive),
        session.ledger(),
        session.actor(),
        config.secret_variables,
    )
    for result in results:
        verdict = "verified, signed" if result.passed else "FAILED"
        click.echo(f"{result.pact.consumer} -> {result.pact.provider}: {result.pact.path}: {verdict}")
        if not result.passed:
            click.echo(result.output[-3000:], err=True)
    failed = [r for r in results if not r.passed]
    click.echo(f"release {release.id}: {len(results) - len(failed)} of {len(results)} contract(s) verified")
    if failed:
        raise click.exceptions.Exit(EXIT_DENIED)
