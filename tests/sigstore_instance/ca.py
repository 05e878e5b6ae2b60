"""Fulcio: a two-level CA issuing 10-minute code-signing certificates with an embedded SCT.

The SCT is signed by a local CT log key over the RFC 6962 precertificate entry: the TBS of the
final certificate without its SCT extension, which is built first with identical fields.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import struct
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tests.sigstore_instance import clock

SCT_LIST_OID = x509.ObjectIdentifier("1.3.6.1.4.1.11129.2.4.2")
ISSUER_V1_OID = x509.ObjectIdentifier("1.3.6.1.4.1.57264.1.1")
ISSUER_V2_OID = x509.ObjectIdentifier("1.3.6.1.4.1.57264.1.8")
SOURCE_REPOSITORY_OID = x509.ObjectIdentifier("1.3.6.1.4.1.57264.1.12")
# Fulcio's CI extensions (docs/oid-info.md). A token without GitHub's claims carries the
# extensions' values under these names (what mint_workflow_token gives a GitLab token).
WORKFLOW_OIDS = {
    "build_signer_uri": "1.3.6.1.4.1.57264.1.9",
    "runner_environment": "1.3.6.1.4.1.57264.1.11",
    "source_repository_uri": "1.3.6.1.4.1.57264.1.12",
    "source_repository_digest": "1.3.6.1.4.1.57264.1.13",
    "source_repository_ref": "1.3.6.1.4.1.57264.1.14",
    "build_config_uri": "1.3.6.1.4.1.57264.1.18",
}
GITHUB = "https://github.com"
# Fulcio's `github-workflow` CI provider (config/identity/config.yaml): each extension from the
# claims of a GitHub Actions token, `{name}` a claim; the SAN is the build signer URI.
GITHUB_EXTENSIONS = {
    "1.3.6.1.4.1.57264.1.9": GITHUB + "/{job_workflow_ref}",  # Build Signer URI
    "1.3.6.1.4.1.57264.1.10": "{job_workflow_sha}",  # Build Signer Digest
    "1.3.6.1.4.1.57264.1.11": "{runner_environment}",
    "1.3.6.1.4.1.57264.1.12": GITHUB + "/{repository}",  # Source Repository URI
    "1.3.6.1.4.1.57264.1.13": "{sha}",  # Source Repository Digest
    "1.3.6.1.4.1.57264.1.14": "{ref}",  # Source Repository Ref
    "1.3.6.1.4.1.57264.1.15": "{repository_id}",
    "1.3.6.1.4.1.57264.1.16": GITHUB + "/{repository_owner}",  # Source Repository Owner URI
    "1.3.6.1.4.1.57264.1.17": "{repository_owner_id}",
    "1.3.6.1.4.1.57264.1.18": GITHUB + "/{workflow_ref}",  # Build Config URI
    "1.3.6.1.4.1.57264.1.19": "{workflow_sha}",  # Build Config Digest
    "1.3.6.1.4.1.57264.1.20": "{event_name}",  # Build Trigger
    "1.3.6.1.4.1.57264.1.21": GITHUB + "/{repository}/actions/runs/{run_id}/attempts/{run_attempt}",
    "1.3.6.1.4.1.57264.1.22": "{repository_visibility}",
}
# ... and the deprecated GitHub extensions Fulcio still adds (raw bytes, not DER strings)
GITHUB_V1_EXTENSIONS = {
    "1.3.6.1.4.1.57264.1.2": "{event_name}",  # Workflow Trigger
    "1.3.6.1.4.1.57264.1.3": "{sha}",
    "1.3.6.1.4.1.57264.1.4": "{workflow}",  # Workflow Name
    "1.3.6.1.4.1.57264.1.5": "{repository}",
    "1.3.6.1.4.1.57264.1.6": "{ref}",
}
CERT_LIFETIME = dt.timedelta(minutes=10)


def spki_der(key: ec.EllipticCurvePublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def key_id(key: ec.EllipticCurvePublicKey) -> bytes:
    return hashlib.sha256(spki_der(key)).digest()


def der_utf8(value: str) -> bytes:
    data = value.encode()
    return b"\x0c" + der_length(len(data)) + data


def der_length(length: int) -> bytes:
    if length < 0x80:
        return bytes([length])
    encoded = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(encoded)]) + encoded


def ca_certificate(
    key: ec.EllipticCurvePrivateKey,
    name: str,
    issuer_key: ec.EllipticCurvePrivateKey | None = None,
    issuer_name: x509.Name | None = None,
    *,
    extended_usage: list[x509.ObjectIdentifier] | None = None,
    ca: bool = True,
) -> x509.Certificate:
    """A CA (or, with ca=False, a leaf such as the TSA signer) valid from an hour ago."""
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "pipeline-kit tests"),
            x509.NameAttribute(NameOID.COMMON_NAME, name),
        ]
    )
    now = dt.datetime.now(dt.timezone.utc)
    signer = issuer_key or key
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_name or subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=not ca,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=ca,
                crl_sign=ca,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(signer.public_key()), critical=False)
    )
    if extended_usage:
        builder = builder.add_extension(x509.ExtendedKeyUsage(extended_usage), critical=True)
    return builder.sign(signer, hashes.SHA256())


@dataclass
class Fulcio:
    root_key: ec.EllipticCurvePrivateKey
    root: x509.Certificate
    intermediate_key: ec.EllipticCurvePrivateKey
    intermediate: x509.Certificate
    ct_key: ec.EllipticCurvePrivateKey

    @classmethod
    def create(cls) -> Fulcio:
        root_key = ec.generate_private_key(ec.SECP384R1())
        root = ca_certificate(root_key, "local fulcio root")
        intermediate_key = ec.generate_private_key(ec.SECP256R1())
        intermediate = ca_certificate(intermediate_key, "local fulcio intermediate", root_key, root.subject)
        return cls(root_key, root, intermediate_key, intermediate, ec.generate_private_key(ec.SECP256R1()))

    def issue(self, public_key: ec.EllipticCurvePublicKey, claims: dict[str, object]) -> x509.Certificate:
        """A leaf for the identity in the (already verified) OIDC claims."""
        issuer = str(claims["iss"])
        subject = str(claims["sub"])
        email = claims.get("email")
        workflow = workflow_identity(claims)
        if isinstance(email, str):
            san: x509.GeneralName = x509.RFC822Name(email)
        else:
            san = x509.UniformResourceIdentifier(workflow or subject)
        now = clock.utcnow().replace(microsecond=0)
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([]))
            .issuer_name(self.intermediate.subject)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now)
            .not_valid_after(now + CERT_LIFETIME)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=False,
                    crl_sign=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.intermediate_key.public_key()),
                critical=False,
            )
            .add_extension(x509.SubjectAlternativeName([san]), critical=True)
            .add_extension(x509.UnrecognizedExtension(ISSUER_V1_OID, issuer.encode()), critical=False)
            .add_extension(x509.UnrecognizedExtension(ISSUER_V2_OID, der_utf8(issuer)), critical=False)
        )
        for oid, value in ci_extensions(claims).items():
            builder = builder.add_extension(
                x509.UnrecognizedExtension(x509.ObjectIdentifier(oid), value), critical=False
            )
        # Precertificate TBS: everything but the SCT list, which goes last in the final cert.
        precert = builder.sign(self.intermediate_key, hashes.SHA256())
        sct = self._sct(precert.tbs_certificate_bytes, int(now.timestamp() * 1000))
        tls_list = struct.pack("!H", len(sct) + 2) + struct.pack("!H", len(sct)) + sct
        extension_value = b"\x04" + der_length(len(tls_list)) + tls_list
        builder = builder.add_extension(x509.UnrecognizedExtension(SCT_LIST_OID, extension_value), critical=False)
        return builder.sign(self.intermediate_key, hashes.SHA256())

    def _sct(self, tbs: bytes, timestamp_ms: int) -> bytes:
        issuer_key_hash = key_id(self.intermediate_key.public_key())
        signed = (
            struct.pack("!BBQH", 0, 0, timestamp_ms, 1)  # v1, certificate_timestamp, time, precert_entry
            + issuer_key_hash
            + len(tbs).to_bytes(3, "big")
            + tbs
            + struct.pack("!H", 0)  # no extensions
        )
        signature = self.ct_key.sign(signed, ec.ECDSA(hashes.SHA256()))
        return (
            struct.pack("!B", 0)
            + key_id(self.ct_key.public_key())
            + struct.pack("!QH", timestamp_ms, 0)
            + struct.pack("!BBH", 4, 3, len(signature))  # sha256, ecdsa
            + signature
        )

    def chain_pem(self, leaf: x509.Certificate) -> list[str]:
        return [c.public_bytes(serialization.Encoding.PEM).decode() for c in (leaf, self.intermediate, self.root)]


def _filled(template: str, claims: dict[str, object]) -> str | None:
    """`template` with its claims filled in; None when one is missing (the extension is left out)."""
    values = {name: claims.get(name) for name in re.findall(r"{(\w+)}", template)}
    if not all(isinstance(value, str) and value for value in values.values()):
        return None
    return template.format(**values)


def ci_extensions(claims: dict[str, object]) -> dict[str, bytes]:
    """OID -> extension value (DER) of a CI workflow's certificate: for a GitHub Actions token
    (it has job_workflow_ref) Fulcio's mapping of its claims, else the values the token names.
    (Fulcio chooses the mapping by the token's issuer; this instance has one issuer for all.)"""
    extensions: dict[str, bytes] = {}
    if isinstance(claims.get("job_workflow_ref"), str):
        for oid, template in GITHUB_V1_EXTENSIONS.items():
            if (value := _filled(template, claims)) is not None:
                extensions[oid] = value.encode()
        for oid, template in GITHUB_EXTENSIONS.items():
            if (value := _filled(template, claims)) is not None:
                extensions[oid] = der_utf8(value)
        return extensions
    for claim, oid in WORKFLOW_OIDS.items():
        named = claims.get(claim)
        if isinstance(named, str):
            extensions[oid] = der_utf8(named)
    return extensions


def workflow_identity(claims: dict[str, object]) -> str | None:
    """The URI SAN Fulcio gives a CI workflow's token: GitHub's job_workflow_ref, GitLab's
    ci_config_ref_uri, each on its server; None for other tokens."""
    if isinstance(claims.get("job_workflow_ref"), str):
        return f"{GITHUB}/{claims['job_workflow_ref']}"
    if isinstance(claims.get("ci_config_ref_uri"), str):
        return f"https://{claims['ci_config_ref_uri']}"
    return None
