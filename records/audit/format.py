"""Canonical form of an audit event (監査ログ), shared by the server and the offline verifier.

An event is a flat JSON object. Its hash is the SHA-256 of its canonical JSON without the
``hash`` field: ``json.dumps(event, sort_keys=True, separators=(",", ":"), ensure_ascii=False)``
in UTF-8. Every event carries ``prev_hash`` (the previous event's hash, or :data:`GENESIS_HASH`
for the first), so the log is a hash chain. Times are UTC, microsecond precision, ``Z`` suffix.
Only the standard library is used, so ``genpon-verify`` can import this file as is.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

GENESIS_HASH = "0" * 64


def format_time(dt: datetime) -> str:
    """UTC timestamp in the one textual form that goes into event hashes."""
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def canonical_bytes(event: dict[str, Any]) -> bytes:
    body = {k: v for k, v in event.items() if k != "hash"}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def event_hash(event: dict[str, Any]) -> str:
    return hashlib.sha256(canonical_bytes(event)).hexdigest()
