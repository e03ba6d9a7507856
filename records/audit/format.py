"""Canonical form of an audit event (監査ログ), shared by the server and the offline verifier.

An event is a flat JSON object. Its hash is the SHA-256 of its canonical JSON without the
``hash`` field (:mod:`genpon_verify.canonical`, the one copy of that rule, which ``genpon-verify``
runs as is). Every event carries ``prev_hash`` (the previous event's hash, or
:data:`GENESIS_HASH` for the first), so the log is a hash chain. Times are UTC, microsecond
precision, ``Z`` suffix.
"""

from __future__ import annotations

from datetime import UTC, datetime

from genpon_verify.canonical import GENESIS_HASH, canonical_bytes, event_hash

__all__ = ["GENESIS_HASH", "canonical_bytes", "event_hash", "format_time"]


def format_time(dt: datetime) -> str:
    """UTC timestamp in the one textual form that goes into event hashes."""
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
