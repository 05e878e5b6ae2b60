"""Rekor v1 and v2: an RFC 6962 Merkle log with inclusion proofs and signed checkpoints."""

from __future__ import annotations

import base64
import hashlib
import json
import threading
import uuid
from typing import Any

import rfc8785
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from tests.sigstore_instance import clock
from tests.sigstore_instance.ca import spki_der


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def merkle_root(leaves: list[bytes]) -> bytes:
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return leaves[0]
    split = 1 << ((len(leaves) - 1).bit_length() - 1)
    return node_hash(merkle_root(leaves[:split]), merkle_root(leaves[split:]))


def inclusion_path(index: int, leaves: list[bytes]) -> list[bytes]:
    """RFC 6962 section 2.1.1 PATH(m, D[n]), leaf to root."""
    if len(leaves) <= 1:
        return []
    split = 1 << ((len(leaves) - 1).bit_length() - 1)
    if index < split:
        return [*inclusion_path(index, leaves[:split]), merkle_root(leaves[split:])]
    return [*inclusion_path(index - split, leaves[split:]), merkle_root(leaves[:split])]


class MerkleLog:
    """An append-only log; `version` 1 signs with ECDSA P-256 and a SET, 2 with Ed25519."""

    def __init__(self, version: int, host: str) -> None:
        self.version = version
        self.host = host
        self.key: ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey = (
            ec.generate_private_key(ec.SECP256R1()) if version == 1 else ed25519.Ed25519PrivateKey.generate()
        )
        public = self.key.public_key()
        self.spki = public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        self.key_id = hashlib.sha256(self.spki).digest()
        self.leaves: list[bytes] = []
        self.lock = threading.Lock()

    def _sign(self, data: bytes) -> bytes:
        if isinstance(self.key, ec.EllipticCurvePrivateKey):
            return self.key.sign(data, ec.ECDSA(hashes.SHA256()))
        return self.key.sign(data)

    def append(self, body: bytes) -> tuple[int, list[bytes], bytes, int, str]:
        """Add a canonical body; returns index, proof, root, tree size and signed checkpoint."""
        with self.lock:
            self.leaves.append(leaf_hash(body))
            index, leaves = len(self.leaves) - 1, list(self.leaves)
        root = merkle_root(leaves)
        note = f"{self.host} - {self.version}\n{len(leaves)}\n{base64.b64encode(root).decode()}\n"
        signature = base64.b64encode(self.key_id[:4] + self._sign(note.encode())).decode()
        checkpoint = f"{note}\n\u2014 {self.host} {signature}\n"
        return index, inclusion_path(index, leaves), root, len(leaves), checkpoint

    def entry_v1(self, request: dict[str, Any]) -> dict[str, Any]:
        """POST /api/v1/log/entries: hashedrekord or dsse 0.0.1, canonicalised as Rekor does."""
        kind = request.get("kind")
        spec = request["spec"]
        if kind == "hashedrekord":
            body = {"apiVersion": "0.0.1", "kind": "hashedrekord", "spec": spec}
        elif kind == "dsse":
            content = spec["proposedContent"]
            envelope_text = content["envelope"]
            envelope = json.loads(envelope_text)
            body = {
                "apiVersion": "0.0.1",
                "kind": "dsse",
                "spec": {
                    "envelopeHash": {
                        "algorithm": "sha256",
                        "value": hashlib.sha256(envelope_text.encode()).hexdigest(),
                    },
                    "payloadHash": {
                        "algorithm": "sha256",
                        "value": hashlib.sha256(base64.b64decode(envelope["payload"])).hexdigest(),
                    },
                    "signatures": [
                        {"signature": sig["sig"], "verifier": content["verifiers"][0]} for sig in envelope["signatures"]
                    ],
                },
            }
        else:
            raise ValueError(f"unsupported entry kind {kind!r}")
        _check_signed_by_certificate(body)
        canonical = rfc8785.dumps(body)
        index, proof, root, size, checkpoint = self.append(canonical)
        integrated = int(clock.now())
        encoded = base64.b64encode(canonical).decode()
        log_id = self.key_id.hex()
        set_payload = rfc8785.dumps({"body": encoded, "integratedTime": integrated, "logID": log_id, "logIndex": index})
        return {
            uuid.uuid4().hex: {
                "body": encoded,
                "integratedTime": integrated,
                "logID": log_id,
                "logIndex": index,
                "verification": {
                    "inclusionProof": {
                        "checkpoint": checkpoint,
                        "hashes": [h.hex() for h in proof],
                        "logIndex": index,
                        "rootHash": root.hex(),
                        "treeSize": size,
                    },
                    "signedEntryTimestamp": base64.b64encode(self._sign(set_payload)).decode(),
                },
            }
        }

    def entry_v2(self, request: dict[str, Any]) -> dict[str, Any]:
        """POST /api/v2/log/entries: a hashedrekord 0.0.2 entry as a TransparencyLogEntry."""
        proposed = request["hashedRekordRequestV002"]
        entry: dict[str, Any] = {
            "kind": "hashedrekord",
            "apiVersion": "0.0.2",
            "spec": {
                "hashedRekordV002": {
                    "data": {"algorithm": "SHA2_256", "digest": proposed["digest"]},
                    "signature": proposed["signature"],
                }
            },
        }
        canonical = rfc8785.dumps(entry)
        index, proof, root, size, checkpoint = self.append(canonical)
        return {
            "logIndex": str(index),
            "logId": {"keyId": base64.b64encode(self.key_id).decode()},
            "kindVersion": {"kind": "hashedrekord", "version": "0.0.2"},
            "inclusionProof": {
                "logIndex": str(index),
                "rootHash": base64.b64encode(root).decode(),
                "treeSize": str(size),
                "hashes": [base64.b64encode(h).decode() for h in proof],
                "checkpoint": {"envelope": checkpoint},
            },
            "canonicalizedBody": base64.b64encode(canonical).decode(),
        }


def _check_signed_by_certificate(body: dict[str, Any]) -> None:
    """Rekor refuses entries whose verifier is not a parseable certificate."""
    spec = body["spec"]
    pem = (
        spec["signature"]["publicKey"]["content"]
        if body["kind"] == "hashedrekord"
        else spec["signatures"][0]["verifier"]
    )
    x509.load_pem_x509_certificate(base64.b64decode(pem))


__all__ = ["MerkleLog", "inclusion_path", "merkle_root", "spki_der"]
