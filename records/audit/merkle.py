"""The audit log as an RFC 6962 Merkle tree, read from the database.

The hashing and proof algorithms are :mod:`genpon_verify.merkle` (standard library only, shared
with the offline verifier so both sides compute the same bytes); this module feeds them the
event hashes stored in ``audit_event``.

Proofs need the leaves of the whole tree they refer to; they are read in one ordered scan of
the ``hash`` column (about 1 s per million events on SQLite).
"""

from __future__ import annotations

from genpon.records.models import AuditEvent
from sqlalchemy import func
from sqlmodel import Session, col, select

from genpon_verify.merkle import (
    EMPTY_ROOT,
    Frontier,
    consistency_path,
    inclusion_path,
    leaf_hash,
    node_hash,
    root_of,
    verify_consistency,
    verify_inclusion,
)

__all__ = [
    "EMPTY_ROOT",
    "Frontier",
    "consistency_path",
    "event_hashes",
    "inclusion_path",
    "leaf_hash",
    "leaf_hashes",
    "log_size",
    "node_hash",
    "root_of",
    "verify_consistency",
    "verify_inclusion",
]

_BATCH = 20_000


def log_size(session: Session) -> int:
    """Number of events in the log (the highest sequence number)."""
    return int(session.exec(select(func.coalesce(func.max(AuditEvent.seq), 0))).one())


def event_hashes(session: Session, first_seq: int, last_seq: int) -> list[tuple[int, str]]:
    """(seq, hash) of events ``first_seq..last_seq`` in order, read in batches."""
    out: list[tuple[int, str]] = []
    lo = first_seq
    while lo <= last_seq:
        hi = min(last_seq, lo + _BATCH - 1)
        rows = session.exec(
            select(AuditEvent.seq, AuditEvent.hash)
            .where(col(AuditEvent.seq) >= lo, col(AuditEvent.seq) <= hi)
            .order_by(col(AuditEvent.seq))
        ).all()
        out.extend((int(s), str(h)) for s, h in rows)
        lo = hi + 1
    return out


def leaf_hashes(session: Session, tree_size: int) -> list[bytes]:
    """Leaf hashes of the first ``tree_size`` events; ValueError if the log has a gap."""
    rows = event_hashes(session, 1, tree_size)
    if len(rows) != tree_size or (rows and rows[-1][0] != tree_size):
        raise ValueError(f"the audit log does not hold events 1..{tree_size}")
    return [leaf_hash(h) for _, h in rows]
