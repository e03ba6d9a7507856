"""Canonical form of an audit event and of signed statements (standard library only).

Vendored copy of ``records/audit_format.py`` (event hash) and of the signing canonical form of
``core/signing.py`` so this package runs without the server code. An event's hash is the SHA-256
of ``json.dumps(event_without_hash, sort_keys=True, separators=(",", ":"), ensure_ascii=False)``
in UTF-8; a signature covers the same encoding of the object without its ``signature`` field.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

GENESIS_HASH = "0" * 64


def canonical_bytes(event: dict[str, Any]) -> bytes:
    body = {k: v for k, v in event.items() if k != "hash"}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def event_hash(event: dict[str, Any]) -> str:
    return hashlib.sha256(canonical_bytes(event)).hexdigest()


def signed_bytes(obj: dict[str, Any]) -> bytes:
    """The bytes an Ed25519 signature covers: canonical JSON without ``signature``."""
    body = {k: v for k, v in obj.items() if k != "signature"}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
