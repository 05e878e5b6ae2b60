"""Commands that sign and verify: sign, verify, identity."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from pipeline_kit.cli._render import emit_json, markdown_table, table
from pipeline_kit.cli._session import Session, evidence_options, pass_session
from pipeline_kit.cli._trust import identity_token, policy_options, resolve_policy, signer_options, trust_options


def signing_setup(
    session: Session, trust_config: Path | None, offline: bool, rekor_version: str | None, interactive: bool
) -> tuple[Any, str, str]:
    """The trust config, and an identity token with where it came from."""
    from pipeline_kit.trust import load_trust_config

    config = load_trust_config(
        trust_config, rekor_version=int(rekor_version) if rekor_version else None, offline=offline
    )
    token, source = identity_token(session, config, interactive)
    return config, token, source


@click.command()
@evidence_options
@trust_options
@signer_options
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@pass_session
def sign(
    session: Session,
    trust_config: Path | None,
    offline: bool,
    rekor_version: str | None,
    interactive: bool,
    as_json: bool,
) -> None:
    """Sign every subject and attest the provenance and SBOM with Sigstore.

    Keyless: the identity token comes from SIGSTORE_IDENTITY_TOKEN or PIPELINE_KIT_IDENTITY_TOKEN,
    else ambient CI credentials (GitHub `id-token: write`, GitLab `SIGSTORE_ID_TOKEN`), else a
    browser sign-in. Writes bundles/<subject>.sigstore.json, bundles/provenance.sigstore.json
    and bundles/sbom.sigstore.json, each verified before it is written.
    """

    from pipeline_kit.signing import sign_release

    config, token, source = signing_setup(session, trust_config, offline, rekor_version, interactive)
    signed = sign_release(session.evidence(), session.workdir, config, token, source)
    session.publish(
        {
            "bundles": "\n".join(str(session.evidence().path(b)) for b in signed.bundles),
            "identity": signed.identity,
            "issuer": signed.issuer or "",
        }
    )
    if as_json:
        emit_json(
            {
                "release": signed.release.id,
                "identity": signed.identity,
                "issuer": signed.issuer,
                "token": signed.token_source,
                "bundles": list(signed.bundles),
            }
        )
        return
    click.echo(f"signed release {signed.release.id} as {signed.identity} ({signed.issuer}); token from {source}")
    for bundle in signed.bundles:
        click.echo(f"  {session.evidence().path(bundle)}")


@click.command()
@click.option(
    "--junit",
    "patterns",
    multiple=True,
    required=True,
    help="JUnit XML report glob, relative to the working directory (repeatable).",
)
@click.option("--url", help="Where the test run can be seen (recorded in the attestation).")
@evidence_options
@trust_options
@signer_options
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@pass_session
def attest(
    session: Session,
    patterns: tuple[str, ...],
    url: str | None,
    trust_config: Path | None,
    offline: bool,
    rekor_version: str | None,
    interactive: bool,
    as_json: bool,
) -> None:
    """Sign the release's test results (in-toto test-result attestation about its subjects).

    Reads the JUnit reports and writes bundles/test-result.sigstore.json, which the checks gate
    reads: a report file alone is bound to nothing. Failed tests are attested as failed.
    """
    from pipeline_kit.signing import attest_test_results

    config, token, source = signing_setup(session, trust_config, offline, rekor_version, interactive)
    signed, passed, failed = attest_test_results(
        session.evidence(), session.workdir, config, token, source, list(patterns), url
    )
    bundle = session.evidence().path(signed.bundles[0])
    session.publish({"bundles": str(bundle), "identity": signed.identity, "issuer": signed.issuer or ""})
    if as_json:
        emit_json({"release": signed.release.id, "bundle": str(bundle), "passed": passed, "failed": failed})
        return
    click.echo(f"attested {passed} passed and {failed} failed test(s) of release {signed.release.id}: {bundle}")


@click.command()
@evidence_options
@trust_options
@policy_options
@click.option(
    "--env",
    "environment",
    envvar="PIPELINE_KIT_VERIFY_ENV",
    help="Also check the chain of custody up to this environment.",
)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@pass_session
def verify(
    session: Session,
    trust_config: Path | None,
    offline: bool,
    cert_identity: str | None,
    cert_identity_regex: str | None,
    cert_oidc_issuer: str | None,
    repository: str | None,
    ref: str | None,
    environment: str | None,
    as_json: bool,
) -> None:
    """Verify the evidence dir against an identity policy.

    Checks each subject's digest and signature, the provenance and SBOM attestations (signed by
    an accepted identity, about exactly release.json's subjects, identical to the files here),
    and the provenance's source repository and ref. With --env, also the chain of custody: a
    signed PASSED promotion VSA for ENV and every environment before it. Exit 1 names the first
    failure.
    """
    from pipeline_kit.errors import VerificationError
    from pipeline_kit.trust import load_trust_config
    from pipeline_kit.verify import BUNDLE_MISSING, SIGN_FIRST, require_signed, verify_release

    policy, source = resolve_policy(session, cert_identity, cert_identity_regex, cert_oidc_issuer, repository, ref)
    require_signed(session.evidence())
    custody = None
    if environment is not None:
        from pipeline_kit.cli._trust import project_for, trust_for
        from pipeline_kit.promotion.finding import custody as custody_for

        trusted = trust_for(
            session, trust_config, offline, cert_identity, cert_identity_regex, cert_oidc_issuer, repository, ref
        )
        custody = custody_for(project_for(session, trusted), environment)
    config = load_trust_config(trust_config, offline=offline)
    result = verify_release(session.evidence(), session.workdir, policy, config, source, custody)
    rows = [(c.target, c.check, "ok" if c.ok else "FAILED", c.detail) for c in result.checks]
    session.publish(
        {"verified": "true" if result.ok else "false", "release-id": result.release.id},
        f"### pipeline-kit verify: {'verified' if result.ok else 'FAILED'}\n\n"
        + markdown_table(["file", "check", "result", "detail"], rows),
    )
    if as_json:
        emit_json(result.as_dict())
    else:
        click.echo(f"release {result.release.id}: policy {policy.describe()}")
        click.echo(
            table(
                ["file", "check", "result", "detail"],
                [(c.target, c.check, "ok" if c.ok else "FAILED", c.detail) for c in result.checks],
            )
        )
    if not result.ok:
        first = result.failures[0]
        raise VerificationError(
            f"{first.target}: {first.check} failed: {first.detail}"
            + (f" (and {len(result.failures) - 1} more)" if len(result.failures) > 1 else ""),
            hint=SIGN_FIRST if any(f.detail == BUNDLE_MISSING for f in result.failures) else None,
        )


@click.command()
@evidence_options
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@pass_session
def identity(session: Session, as_json: bool) -> None:
    """Print the identity CI signs as here, and the verify command that accepts it."""
    import shlex

    ci = session.ci()
    signer = ci.signer
    from pipeline_kit.identity import IdentityPolicy
    from pipeline_kit.oidc import PUBLIC_GOOD_ISSUER

    config = session.config(required=False)
    policy = config.signing.identity if config else None
    if signer is None:
        # a person signs as the account they sign in with; CI will sign as its workflow, which is
        # what the config's policy (if any) accepts
        you = ["pipeline-kit", "verify", "--cert-identity", "YOU@EXAMPLE.COM", "--cert-oidc-issuer", PUBLIC_GOOD_ISSUER]
        message = {
            "platform": ci.platform,
            "identity": None,
            "issuer": PUBLIC_GOOD_ISSUER,
            "note": "run by a person: a signature carries whatever identity you sign in with; "
            "CI signs as its workflow (GitHub) or CI config (GitLab)",
            "verify": shlex.join(you),
            "policy": IdentityPolicy.from_config(policy).describe() if policy else None,
            "verify_ci": "pipeline-kit verify" if policy else None,
        }
        if as_json:
            emit_json(message)
            return
        click.echo(f"platform  {ci.platform}")
        click.echo(f"identity  the account you sign in with (issuer {PUBLIC_GOOD_ISSUER})")
        click.echo(f"note      {message['note']}")
        click.echo(f"verify    {message['verify']}    # evidence you signed here")
        if policy:
            click.echo(f"policy    signing.identity: {message['policy']}")
            click.echo("verify    pipeline-kit verify    # evidence CI signed, by that policy")
        else:
            from pipeline_kit.identity import IDENTITY_GUIDE

            click.echo(f"policy    none: nothing is accepted until signing.identity is set (see {IDENTITY_GUIDE})")
        return
    command = ["pipeline-kit", "verify", "--cert-identity", signer.san, "--cert-oidc-issuer", signer.issuer]
    if ci.repository:
        command += ["--repository", ci.repository]
    sigstore_command = [
        "sigstore",
        "verify",
        "identity",
        "--cert-identity",
        signer.san,
        "--cert-oidc-issuer",
        signer.issuer,
        "--bundle",
        "FILE.sigstore.json",
        "FILE",
    ]
    if as_json:
        emit_json(
            {
                "platform": ci.platform,
                "identity": signer.san,
                "issuer": signer.issuer,
                "token": signer.token_source,
                "note": signer.note,
                "verify": shlex.join(command),
                "sigstore": shlex.join(sigstore_command),
            }
        )
        return
    click.echo(f"platform  {ci.platform}")
    click.echo(f"identity  {signer.san}")
    click.echo(f"issuer    {signer.issuer}")
    click.echo(f"token     {signer.token_source}")
    if signer.note:
        click.echo(f"note      {signer.note}")
    click.echo(f"verify    {shlex.join(command)}")
    click.echo(f"sigstore  {shlex.join(sigstore_command)}")
