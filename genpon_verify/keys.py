"""Key ids and Ed25519 signatures (standard library + ``cryptography``).

The one copy of these rules: the server signs and names its keys with them
(``genpon.core.signing``), the offline verifier checks with them. A key id is the first 16 hex
digits of the SHA-256 of the raw public key, so anybody holding a public key can compute it; a
signature covers :func:`genpon_verify.canonical.signed_bytes` of the signed object.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from genpon_verify.canonical import signed_bytes

SIGNATURE_ALG = "Ed25519"


def key_id_of(key: Ed25519PublicKey) -> str:
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def load_public_key(pem: str | bytes) -> Ed25519PublicKey:
    key = serialization.load_pem_public_key(pem.encode() if isinstance(pem, str) else pem)
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError("not an Ed25519 public key")
    return key


def check_signature(obj: Mapping[str, Any], keys: Mapping[str, Ed25519PublicKey]) -> str | None:
    """None when ``obj`` carries a valid Ed25519 signature by one of ``keys``, else the reason."""
    sig = obj.get("signature")
    if not isinstance(sig, Mapping) or sig.get("alg") != SIGNATURE_ALG:
        return "署名がありません"
    key = keys.get(str(sig.get("key_id")))
    if key is None:
        return f"署名鍵 {sig.get('key_id')} の公開鍵がありません"
    try:
        key.verify(base64.b64decode(str(sig.get("value")), validate=True), signed_bytes(obj))
    except (InvalidSignature, ValueError):
        return f"署名が正しくありません（鍵 {sig.get('key_id')}）"
    return None


def rotation_statement(details: Mapping[str, Any]) -> dict[str, Any]:
    """What the old key signs when it hands over to the new one (``endorsement``)."""
    return {
        "format": "genpon-key-rotation/1",
        "old_key_id": details.get("old_key_id"),
        "new_key_id": details.get("new_key_id"),
        "new_public_key": details.get("new_public_key"),
    }
