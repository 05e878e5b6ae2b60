"""An RFC 3161 time-stamping authority: CMS SignedData over a TSTInfo, built with asn1crypto."""

from __future__ import annotations

import hashlib
import itertools

from asn1crypto import algos, cms, tsp
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID

from tests.sigstore_instance import clock
from tests.sigstore_instance.ca import ca_certificate

POLICY_OID = "1.3.6.1.4.1.57264.2"


class TimestampAuthority:
    def __init__(self) -> None:
        self.root_key = ec.generate_private_key(ec.SECP384R1())
        self.root = ca_certificate(self.root_key, "local tsa root")
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.certificate = ca_certificate(
            self.key,
            "local tsa",
            self.root_key,
            self.root.subject,
            extended_usage=[ExtendedKeyUsageOID.TIME_STAMPING],
            ca=False,
        )
        self._serials = itertools.count(1)

    def respond(self, request_der: bytes) -> bytes:
        request = tsp.TimeStampReq.load(request_der)
        now = clock.utcnow().replace(microsecond=0)
        info = {
            "version": "v1",
            "policy": POLICY_OID,
            "message_imprint": request["message_imprint"],
            "serial_number": next(self._serials),
            "gen_time": now,
        }
        if request["nonce"].native is not None:
            info["nonce"] = request["nonce"]
        tst_info = tsp.TSTInfo(info)
        certificate_der = self.certificate.public_bytes(serialization.Encoding.DER)
        attributes = [
            cms.CMSAttribute({"type": "content_type", "values": ["tst_info"]}),
            cms.CMSAttribute({"type": "signing_time", "values": [cms.Time({"utc_time": now})]}),
            cms.CMSAttribute({"type": "message_digest", "values": [hashlib.sha256(tst_info.dump()).digest()]}),
            cms.CMSAttribute(
                {
                    "type": "signing_certificate_v2",
                    "values": [{"certs": [{"cert_hash": hashlib.sha256(certificate_der).digest()}]}],
                }
            ),
        ]
        signature = self.key.sign(cms.CMSAttributes(attributes).dump(), ec.ECDSA(hashes.SHA256()))
        asn1_certificate = asn1_x509.Certificate.load(certificate_der)
        signer = cms.SignerInfo(
            {
                "version": "v1",
                "sid": cms.SignerIdentifier(
                    {
                        "issuer_and_serial_number": cms.IssuerAndSerialNumber(
                            {
                                "issuer": asn1_certificate.issuer,
                                "serial_number": asn1_certificate.serial_number,
                            }
                        )
                    }
                ),
                "digest_algorithm": algos.DigestAlgorithm({"algorithm": "sha256"}),
                "signed_attrs": cms.CMSAttributes(attributes),
                "signature_algorithm": algos.SignedDigestAlgorithm({"algorithm": "sha256_ecdsa"}),
                "signature": signature,
            }
        )
        signed_data = cms.SignedData(
            {
                "version": "v3",
                "digest_algorithms": [algos.DigestAlgorithm({"algorithm": "sha256"})],
                "encap_content_info": {"content_type": "tst_info", "content": tst_info},
                "certificates": [asn1_certificate],
                "signer_infos": [signer],
            }
        )
        token = cms.ContentInfo({"content_type": "signed_data", "content": signed_data})
        response: bytes = tsp.TimeStampResp({"status": {"status": "granted"}, "time_stamp_token": token}).dump()
        return response

    def chain(self) -> list[x509.Certificate]:
        return [self.certificate, self.root]
