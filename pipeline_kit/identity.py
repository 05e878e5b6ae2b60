"""Signer identities: who CI signs as, who a verifier accepts, and the policy between them.

`IdentityPolicy` is the one cross-forge description of an acceptable signer (issuer, exact SAN or
SAN pattern, and the source repository a workflow signed for); it comes from `signing.identity`
in the config or from verify flags, and compiles to a sigstore-python verification policy.
sigstore is imported only when a policy is compiled.

A workflow identity (a URI SAN) names the workflow file that signed, and a reusable workflow
(the kit's own signing workflows) signs as itself for every repository that calls it: only the
certificate's Source Repository URI tells whose release it signed. So with a `source`, every
workflow certificate must name it there; a certificate without that extension is refused.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pipeline_kit.ci import SignerIdentity
from pipeline_kit.config import IdentityConfig
from pipeline_kit.errors import UsageError

if TYPE_CHECKING:
    from cryptography.x509 import Certificate

# The kit's own repository on GitHub, and its reusable workflows that sign (the isolated layout,
# docs/signing-layouts.md): a certificate naming one of them at a full commit, for your repository
# as its source, is what a policy for that layout accepts.
KIT_REPOSITORY = "pipeline-kit/pipeline-kit"
KIT_SIGNING_WORKFLOWS = ("sign-release", "arrive", "rollback")
KIT_WORKFLOWS_SAN_REGEX = (
    rf"^https://github\.com/{KIT_REPOSITORY}/\.github/workflows/"  # (no character of the name needs escaping)
    rf"({'|'.join(KIT_SIGNING_WORKFLOWS)})\.yml@[0-9a-f]{{40}}$"
)


# Where a user reads what to write in signing.identity when `init` could not derive it.
IDENTITY_GUIDE = "README.md#use-it-from-github-actions, or #use-it-from-gitlab-ci"
# What nothing accepted means: unknown denies, so without a policy no signature counts.
NO_POLICY = "no identity policy (signing.identity): no signer is accepted"


def kit_workflows_san_regex(commit: str | None) -> str:
    """The kit's signing workflows at exactly `commit`, or at any commit (None). Any commit also
    matches one of a fork that GitHub serves under the kit's name (an imposter commit): pin one."""
    return KIT_WORKFLOWS_SAN_REGEX.replace("[0-9a-f]{40}", commit) if commit else KIT_WORKFLOWS_SAN_REGEX


# What the kit's workflows' certificates may name, for `bound`: each workflow at a commit, a tag, a branch
_KIT_SANS = tuple(
    f"https://github.com/{KIT_REPOSITORY}/.github/workflows/{name}.yml@{ref}"
    for name in KIT_SIGNING_WORKFLOWS
    for ref in ("0" * 40, "refs/tags/v1.0.0", "refs/heads/main")
)

ISSUER_V1_OID = "1.3.6.1.4.1.57264.1.1"
ISSUER_V2_OID = "1.3.6.1.4.1.57264.1.8"
SOURCE_REPOSITORY_OID = "1.3.6.1.4.1.57264.1.12"  # Fulcio's Source Repository URI (DER UTF8String)
BUILD_CONFIG_OID = "1.3.6.1.4.1.57264.1.18"  # Fulcio's Build Config URI: the top-level workflow, at its ref


@dataclass(frozen=True)
class IdentityPolicy:
    issuer: str
    san: str | None = None
    san_regex: str | None = None
    source: str | None = None  # the repository a workflow certificate must name as its source
    caller_regex: str | None = None  # what a workflow certificate's Build Config URI must fully match

    def __post_init__(self) -> None:
        if (self.san is None) == (self.san_regex is None):
            raise UsageError("an identity policy needs exactly one of an exact identity or an identity regex")
        for pattern in (self.san_regex, self.caller_regex):
            if pattern is not None:
                try:
                    re.compile(pattern)
                except re.error as exc:
                    raise UsageError(f"identity regex {pattern!r} does not compile: {exc}") from None

    @classmethod
    def from_config(cls, config: IdentityConfig) -> IdentityPolicy:
        return cls(
            issuer=config.issuer,
            san=config.san,
            san_regex=config.san_regex,
            source=config.repository,
            caller_regex=config.caller_regex,
        ).bound()

    @classmethod
    def of_certificate(cls, certificate: Certificate) -> IdentityPolicy:
        """The policy accepting exactly this certificate's signer: its issuer, SAN and source."""
        san, issuer = certificate_identity(certificate)
        return cls(issuer=issuer or "", san=san, source=_utf8_extension(certificate, SOURCE_REPOSITORY_OID))

    def bound(self) -> IdentityPolicy:
        """This policy, refused when it accepts the kit's own signing workflows for any repository:
        they sign for every caller, so without a `source` anyone's release would pass."""
        unbound = dataclasses.replace(self, caller_regex=None)  # whichever workflow of theirs calls
        if self.source is None and any(unbound.accepts(san, self.issuer, None)[0] for san in _KIT_SANS):
            raise UsageError(
                "the identity policy accepts the kit's signing workflows, which sign for every repository "
                "that calls them: name yours",
                hint="set signing.identity.repository in pipeline-kit.yml (or pass --repository)",
            )
        return self

    def describe(self) -> str:
        who = self.san if self.san is not None else f"~ {self.san_regex}"
        return f"identity {who} from issuer {self.issuer}" + (f" for {self.source}" if self.source else "")

    def accepts(self, san: str, issuer: str, source: str | None, caller: str | None = None) -> tuple[bool, str]:
        """Whether a certificate naming `san` from `issuer`, signed for the source repository
        `source` by the workflow `caller` (its Build Config URI; None: the certificate names
        none), satisfies the policy, and why not. A workflow that is not the one that ran (a
        reusable workflow: `san` is not `caller`) signs for every repository that calls it: it
        counts only for a repository the policy names."""
        if issuer != self.issuer:
            return False, f"issuer {issuer} is not the expected {self.issuer}"
        if self.san is not None and san != self.san:
            return False, f"identity {san} is not the expected {self.san}"
        if self.san_regex is not None and not re.fullmatch(self.san_regex, san):
            return False, f"identity {san} does not match {self.san_regex}"
        if self.source is None and caller is not None and caller != san:
            return False, f"identity {san} is a workflow run by another ({caller}): name the repository to sign for"
        if self.source is not None and "://" in san:  # a workflow's identity, not a person's
            if source is None:
                return False, f"identity {san} names no source repository (the policy wants {self.source})"
            if source.rstrip("/") != self.source.rstrip("/"):
                return False, f"identity {san} signed for {source}, not {self.source}"
        if self.caller_regex is not None and "://" in san:
            if caller is None:
                return False, f"identity {san} names no calling workflow (the policy wants {self.caller_regex})"
            if not re.fullmatch(self.caller_regex, caller):
                return False, f"identity {san} was run by {caller}, which does not match {self.caller_regex}"
        return True, "the identity policy accepts this signer"

    def accepts_certificate(self, certificate: Certificate) -> tuple[bool, str]:
        san, issuer = certificate_identity(certificate)
        return self.accepts(
            san,
            issuer or "(no issuer extension)",
            _utf8_extension(certificate, SOURCE_REPOSITORY_OID),
            _utf8_extension(certificate, BUILD_CONFIG_OID),
        )

    def sigstore_policy(self) -> Any:
        """The equivalent sigstore-python verification policy."""
        return _CertificatePolicy(self)


def policy_accepts(policy: IdentityConfig, signer: SignerIdentity) -> tuple[bool, str]:
    return IdentityPolicy.from_config(policy).accepts(signer.san, signer.issuer, signer.source, signer.caller)


def certificate_identity(certificate: Certificate) -> tuple[str, str | None]:
    """(SAN, issuer) of a Fulcio certificate: the email or URI, and the OIDC issuer extension."""
    from cryptography import x509

    san_ext = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    sans = san_ext.get_values_for_type(x509.RFC822Name) + san_ext.get_values_for_type(x509.UniformResourceIdentifier)
    issuer = None
    for extension in certificate.extensions:
        if extension.oid.dotted_string == ISSUER_V2_OID:
            issuer = _der_utf8(extension.value.value)
            break
        if extension.oid.dotted_string == ISSUER_V1_OID:
            issuer = extension.value.value.decode()
    return (sans[0] if sans else ""), issuer


def _utf8_extension(certificate: Certificate, oid: str) -> str | None:
    """A Fulcio extension of a CI workflow's certificate (a DER UTF8String), if it has one."""
    for extension in certificate.extensions:
        if extension.oid.dotted_string == oid:
            return _der_utf8(extension.value.value)
    return None


def _der_utf8(data: bytes) -> str:
    # A short DER UTF8String: tag 0x0c, a length (short or long form), the bytes.
    if data[1] < 0x80:
        return data[2:].decode()
    size = data[1] & 0x7F
    return data[2 + size :].decode()


class _CertificatePolicy:
    """A sigstore VerificationPolicy checking the SAN (exact or pattern) and the issuer."""

    def __init__(self, policy: IdentityPolicy) -> None:
        self.policy = policy

    def verify(self, cert: Certificate) -> None:
        from sigstore.errors import VerificationError

        accepted, why = self.policy.accepts_certificate(cert)
        if not accepted:
            raise VerificationError(f"signer not accepted: {why}")
