"""Where the identity token for keyless signing comes from, in order:

1. the environment: `SIGSTORE_IDENTITY_TOKEN` or `PIPELINE_KIT_IDENTITY_TOKEN` (never argv);
2. ambient CI credentials: GitHub Actions OIDC (`id-token: write`), GitLab's `SIGSTORE_ID_TOKEN`
   ID token, and the other providers the `id` package knows;
3. the interactive browser sign-in, only when a person is at a terminal (or it is asked for).
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Any

from pipeline_kit.errors import EnvironmentFailure

TOKEN_VARIABLES = ("SIGSTORE_IDENTITY_TOKEN", "PIPELINE_KIT_IDENTITY_TOKEN")
# Every variable that carries signing power: the tokens above, GitLab's ID token, and the pair
# with which any process of a GitHub job granted `id-token: write` mints one. No child sees them,
# and no config may name one as a value the kit sends to a server (a header, a bearer token).
SIGNING_CREDENTIALS = frozenset(
    {*TOKEN_VARIABLES, "SIGSTORE_ID_TOKEN", "ACTIONS_ID_TOKEN_REQUEST_TOKEN", "ACTIONS_ID_TOKEN_REQUEST_URL"}
)
# The issuer of a person's interactive sign-in on public-good Sigstore (Dex federating GitHub,
# Google and Microsoft accounts): what a locally made signature's certificate names.
PUBLIC_GOOD_ISSUER = "https://oauth2.sigstore.dev/auth"


def raw_token(
    env: Mapping[str, str], trust_config: Any, *, interactive: bool | None = None, interactive_flag: str | None = None
) -> tuple[str, str]:
    """The JWT and a description of where it came from. `interactive_flag`: the caller's option
    that asks for a browser sign-in, named in the hint when there is no token."""
    for name in TOKEN_VARIABLES:
        if env.get(name):
            return env[name].strip(), f"${name}"
    import id as ambient

    try:
        detected = ambient.detect_credential(audience="sigstore")
    except ambient.IdentityError as exc:
        raise EnvironmentFailure(
            f"ambient CI credentials were found but could not be used: {exc}",
            hint="on GitHub grant `permissions: id-token: write`; on GitLab add "
            "`id_tokens: SIGSTORE_ID_TOKEN: aud: sigstore`",
        ) from exc
    if detected:
        return detected, "ambient CI credentials"
    if interactive is None:
        interactive = sys.stdin.isatty() and sys.stdout.isatty()
    if not interactive:
        raise EnvironmentFailure(
            "no identity token: set SIGSTORE_IDENTITY_TOKEN, or run in CI with OIDC enabled",
            hint=(f"locally, pass {interactive_flag} to sign in with a browser; in CI, " if interactive_flag else "")
            + "on GitHub grant `permissions: id-token: write`; on GitLab add "
            "`id_tokens: SIGSTORE_ID_TOKEN: aud: sigstore`",
        )
    from sigstore.oidc import IdentityError, Issuer

    try:
        token = Issuer(trust_config.signing_config.get_oidc_url()).identity_token()
    except IdentityError as exc:
        raise EnvironmentFailure(f"interactive sign-in failed: {exc}") from exc
    return str(token), "interactive sign-in"
