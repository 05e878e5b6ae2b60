"""Whom the evidence must be signed by, and how a command signs: the trust, policy and signer
options the signing, promotion, rollout, release and contracts commands share, the identity policy
they resolve to, and the Trust and Project a command builds from them."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from pipeline_kit.cli._session import Session
from pipeline_kit.errors import PipelineKitError, UsageError

if TYPE_CHECKING:
    from pipeline_kit.identity import IdentityPolicy
    from pipeline_kit.promotion.model import Project
    from pipeline_kit.trust import Trust
    from pipeline_kit.verify import SourceExpectation


def trust_options(function: Any) -> Any:
    function = click.option(
        "--offline", is_flag=True, help="Never refresh the public-good trust root over the network."
    )(function)
    return click.option(
        "--trust-config",
        type=click.Path(path_type=Path, dir_okay=False, exists=True),
        envvar="PIPELINE_KIT_TRUST_CONFIG",
        help="Sigstore client trust config of a private instance. [default: public-good Sigstore] "
        "[env: PIPELINE_KIT_TRUST_CONFIG]",
    )(function)


def policy_options(function: Any) -> Any:
    for decorator in reversed(
        (
            click.option("--cert-identity", help="Exact signer identity (SAN). Overrides signing.identity."),
            click.option("--cert-identity-regex", help="Signer identity pattern (full match)."),
            click.option("--cert-oidc-issuer", help="OIDC issuer of the signer."),
            click.option("--repository", help="Source repository the provenance must name."),
            click.option("--ref", help="Source ref the provenance must name (e.g. refs/tags/v1.0.0)."),
        )
    ):
        function = decorator(function)
    return function


def resolve_policy(
    session: Session,
    identity: str | None,
    identity_regex: str | None,
    issuer: str | None,
    repository: str | None,
    ref: str | None,
) -> tuple[IdentityPolicy, SourceExpectation]:
    """Flags win over `signing.identity` from the config; without either there is no policy
    (NoIdentityPolicy); contradictory flags are a usage error."""
    config = session.config(required=False)
    configured = config.signing.identity if config else None
    if not (identity or identity_regex or issuer or configured):  # checked first: nothing more to load
        raise NoIdentityPolicy(
            "no identity policy: who must have signed this evidence?",
            hint="set signing.identity in pipeline-kit.yml, or pass --cert-identity (or "
            "--cert-identity-regex) and --cert-oidc-issuer",
        )
    from pipeline_kit.identity import IdentityPolicy
    from pipeline_kit.verify import SourceExpectation

    if identity and identity_regex:
        raise UsageError("give --cert-identity or --cert-identity-regex, not both")
    # the workflow that ran the signing, as the config says, unless flags name another signer
    caller = configured.caller_regex if configured and not (identity or identity_regex) else None
    if identity or identity_regex or issuer:
        issuer = issuer or (configured.issuer if configured else None)
        if not issuer:
            raise UsageError("--cert-oidc-issuer is required with --cert-identity/--cert-identity-regex")
        if not (identity or identity_regex):
            if configured is None:
                raise UsageError("--cert-identity or --cert-identity-regex is required")
            identity, identity_regex = configured.san, configured.san_regex
    else:
        assert configured is not None  # by the check above
        issuer, identity, identity_regex = configured.issuer, configured.san, configured.san_regex
    source = SourceExpectation(
        repository=repository or (configured.repository if configured else None),
        ref=ref or (configured.ref if configured else None),
    )
    # a workflow certificate must have signed for the repository the provenance names
    policy = IdentityPolicy(issuer, identity, identity_regex, source=source.repository, caller_regex=caller)
    return policy.bound(), source


class NoIdentityPolicy(UsageError):
    """Neither flags nor the config say who must have signed the evidence."""


def identity_token(session: Session, trust_config: Any, interactive: bool) -> tuple[str, str]:
    """The signing token (masked in CI logs before anything else happens)."""
    import os

    from pipeline_kit.oidc import raw_token

    token, source = raw_token(
        os.environ, trust_config, interactive=True if interactive else None, interactive_flag="--interactive"
    )
    session.mask(token)
    return token, source


def signer_options(function: Any) -> Any:
    """--rekor-version and --interactive, for every command that signs."""
    function = click.option("--interactive", is_flag=True, help="Sign in with a browser even when not at a terminal.")(
        function
    )
    return click.option("--rekor-version", type=click.Choice(["1", "2"]), help="Transparency log version to use.")(
        function
    )


def trust_for(
    session: Session,
    trust_config: Path | None,
    offline: bool,
    identity: str | None,
    identity_regex: str | None,
    issuer: str | None,
    repository: str | None,
    ref: str | None,
    rekor_version: int | None = None,
) -> Trust:
    from pipeline_kit.trust import Trust, load_trust_config

    try:
        policy, source = resolve_policy(session, identity, identity_regex, issuer, repository, ref)
    except NoIdentityPolicy:
        policy, source = None, None  # the evidence gates will deny, saying why
    loaded: list[Any] = []  # the trust root, or the error that loading it raised
    once = threading.Lock()  # `run` loads it in a thread while the build runs

    def load() -> Any:
        with once:
            if not loaded:
                try:
                    loaded.append(load_trust_config(trust_config, rekor_version=rekor_version, offline=offline))
                except PipelineKitError as exc:
                    loaded.append(exc)
        if isinstance(loaded[0], PipelineKitError):
            raise loaded[0]
        return loaded[0]

    return Trust(policy, load, source.repository if source else None, source.ref if source else None)


def project_for(session: Session, trust: Trust) -> Project:
    import os

    from pipeline_kit.forge import open_forge
    from pipeline_kit.promotion.model import Project, require_environment

    config = require_environment(session.config(required=True))
    forge = open_forge(config.forge, os.environ)
    ledger = session.ledger()
    if config.annotations is not None:  # the Pushgateway's client loads only for a config that has one
        from pipeline_kit.promotion.announcing import announcing

        ledger = announcing(ledger, config.annotations, os.environ, lambda line: warn(session, line))
    return Project(config, session.evidence(), session.workdir, ledger, trust, session.actor(), forge)


def warn(session: Session, line: str) -> None:
    """What did not stop the command but must be seen: a warning line, and in the job summary."""
    from pipeline_kit.cli._render import markdown_text, printable

    click.echo(f"warning: {printable(line)}", err=True)
    session.publish({}, f"> **warning:** {markdown_text(line)}")


# what the trust and policy options are called -> trust_for's parameter each one fills
TRUST_OPTIONS = {
    "trust_config": "trust_config",
    "offline": "offline",
    "cert_identity": "identity",
    "cert_identity_regex": "identity_regex",
    "cert_oidc_issuer": "issuer",
    "repository": "repository",
    "ref": "ref",
}


def trust_args(values: dict[str, Any]) -> dict[str, Any]:
    return {parameter: values[option] for option, parameter in TRUST_OPTIONS.items()}


def signer_trust(session: Session, values: dict[str, Any], rekor_version: str | None) -> Trust:
    """The trust of a command that signs: its trust and policy options (`values`, as click
    gave them) and its --rekor-version."""
    return trust_for(session, **trust_args(values), rekor_version=int(rekor_version) if rekor_version else None)
