"""Canonical JSON for hashing and signing (standard library only).

The one copy of this rule: the server (``genpon.records.audit.format``, ``genpon.core.signing``,
``genpon.retention.certificate``) imports it from here, so the offline verifier and the service
cannot drift apart. An event's hash is the SHA-256 of
``json.dumps(event_without_hash, sort_keys=True, separators=(",", ":"), ensure_ascii=False)``
in UTF-8; a signature covers the same encoding of the object without its ``signature`` field.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

GENESIS_HASH = "0" * 64


def _canonical(obj: Mapping[str, Any], without: str) -> bytes:
    body = {k: v for k, v in obj.items() if k != without}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def canonical_bytes(event: Mapping[str, Any]) -> bytes:
    """The bytes an event's hash covers: canonical JSON without ``hash``."""
    return _canonical(event, "hash")


def event_hash(event: Mapping[str, Any]) -> str:
    return hashlib.sha256(canonical_bytes(event)).hexdigest()


def signed_bytes(obj: Mapping[str, Any]) -> bytes:
    """The bytes an Ed25519 signature covers: canonical JSON without ``signature``."""
    return _canonical(obj, "signature")
