"""Append to the hash-chained audit log (監査ログ) inside the caller's transaction.

Every state change and every content read calls :func:`record` in the same transaction as the
change itself, so an event exists exactly when its change committed. Appenders serialize on the
single ``audit_head`` row (``SELECT … FOR UPDATE`` on PostgreSQL; SQLite transactions are already
serialized by ``BEGIN IMMEDIATE``), which keeps one unbroken chain under concurrent writers.
There is deliberately no function here that updates or deletes an event.
"""

from __future__ import annotations

from typing import Any

from genpon.core.clock import utcnow
from genpon.records.audit.format import event_hash, format_time
from genpon.records.models import AuditEvent, AuditHead
from sqlalchemy import insert
from sqlmodel import Session, select


def record(
    session: Session,
    *,
    actor: str,
    action: str,
    target_type: str,
    target_id: str | int,
    case_id: str | None = None,
    details: dict[str, Any] | None = None,
) -> AuditEvent:
    head = session.exec(select(AuditHead).where(AuditHead.id == 1).with_for_update()).one()
    body: dict[str, Any] = {
        "seq": head.seq + 1,
        "at": format_time(utcnow()),
        "actor": actor,
        "action": action,
        "target_type": target_type,
        "target_id": str(target_id),
        "case_id": case_id,
        "details": details or {},
        "prev_hash": head.hash,
    }
    digest = event_hash(body)
    event = AuditEvent(**body, hash=digest)
    session.add(event)
    head.seq = body["seq"]
    head.hash = digest
    session.add(head)
    session.flush()
    return event


def case_timeline(session: Session, case_id: str, *, limit: int = 1000) -> list[AuditEvent]:
    """経緯: every event of a case, oldest first."""
    stmt = (
        select(AuditEvent)
        .where(AuditEvent.case_id == case_id)
        .order_by(AuditEvent.seq)  # type: ignore[arg-type]
        .limit(limit)
    )
    return list(session.exec(stmt).all())


def record_many(session: Session, *, actor: str, events: list[dict[str, Any]]) -> list[str]:
    """Append ``events`` to the chain under one head lock, in order; returns their hashes.

    Each event is a dict with ``action``, ``target_type``, ``target_id`` and optionally
    ``case_id``, ``details`` and ``actor`` (default: the ``actor`` argument). The canonical form
    and hash chain are exactly those of :func:`record`; the rows go in with one executemany."""
    if not events:
        return []
    head = session.exec(select(AuditHead).where(AuditHead.id == 1).with_for_update()).one()
    seq, prev = head.seq, head.hash
    rows: list[dict[str, Any]] = []
    for ev in events:
        seq += 1
        body: dict[str, Any] = {
            "seq": seq,
            "at": format_time(utcnow()),
            "actor": ev.get("actor") or actor,
            "action": ev["action"],
            "target_type": ev["target_type"],
            "target_id": str(ev["target_id"]),
            "case_id": ev.get("case_id"),
            "details": ev.get("details") or {},
            "prev_hash": prev,
        }
        prev = event_hash(body)
        body["hash"] = prev
        rows.append(body)
    session.execute(insert(AuditEvent.__table__), rows)  # type: ignore[attr-defined]
    head.seq, head.hash = seq, prev
    session.add(head)
    session.flush()
    return [r["hash"] for r in rows]
