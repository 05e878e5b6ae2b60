"""Signer identities: who CI will sign as, and whether the configured policy accepts that."""

from __future__ import annotations

import re

from pipeline_kit.ci import SignerIdentity
from pipeline_kit.config import IdentityConfig


def policy_accepts(policy: IdentityConfig, signer: SignerIdentity) -> tuple[bool, str]:
    """Whether a certificate for `signer` would satisfy `policy`, and why not when it would not."""
    if policy.issuer != signer.issuer:
        return False, f"issuer {signer.issuer} is not the expected {policy.issuer}"
    if policy.san is not None and policy.san != signer.san:
        return False, f"identity {signer.san} is not the expected {policy.san}"
    if policy.san_regex is not None and not re.fullmatch(policy.san_regex, signer.san):
        return False, f"identity {signer.san} does not match {policy.san_regex}"
    return True, "the configured identity policy accepts this signer"
