"""Append to the hash-chained audit log (監査ログ) inside the caller's transaction.

Every state change and every content read calls :func:`record` in the same transaction as the
change itself, so an event exists exactly when its change committed. Appenders serialize on the
single ``audit_head`` row (``SELECT … FOR UPDATE`` on PostgreSQL; SQLite transactions are already
serialized by ``BEGIN IMMEDIATE``), which keeps one unbroken chain under concurrent writers.

The head is locked only for the moment of appending, not for the whole transaction: :func:`record`
and :func:`record_many` buffer their events in the session, and they are appended as the last
statements before the commit (a ``before_commit`` hook), so the lock is held from there to the
end of the commit. Events recorded inside a savepoint that rolls back are dropped with it. A
transaction that reads the log (any ORM query of ``audit_event`` or ``audit_head``: checkpoints,
timelines) appends its buffered events first, so it sees its own events as before; a caller that
needs an event's ``seq`` or ``hash`` before the commit calls :func:`append_pending`.
There is deliberately no function here that updates or deletes an event.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, cast

from genpon.core.clock import utcnow
from genpon.records.audit.format import event_hash, format_time
from genpon.records.models import AuditEvent, AuditHead
from sqlalchemy import event as sa_event
from sqlalchemy import insert, update
from sqlalchemy.orm import ORMExecuteState, SessionTransaction
from sqlalchemy.orm import Session as OrmSession
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.util import identity_key
from sqlalchemy.sql.elements import ClauseElement
from sqlalchemy.sql.util import find_tables
from sqlmodel import Session, select

_BUFFER = "genpon.audit.buffer"  # key in Session.info
_AUDIT_TABLES = frozenset({AuditEvent.__tablename__, AuditHead.__tablename__})
# events written in one statement with the head's update; a larger batch (an import) is
# written by executemany (PostgreSQL binds at most 65,535 parameters in one statement)
_ONE_STATEMENT_ROWS = 500


@dataclass
class _Pending:
    """Events of one :func:`record` / :func:`record_many` call, not yet in the chain."""

    owner: SessionTransaction | None  # innermost savepoint when recorded; None: the transaction
    bodies: list[dict[str, Any]]  # event fields without seq, at, prev_hash, hash
    event: AuditEvent | None = None  # record(): the returned object, completed when appended
    hashes: list[str] | None = None  # record_many(): the returned list, filled when appended


@dataclass
class _Buffer:
    pending: list[_Pending] = field(default_factory=list)
    # appended before the commit, with the savepoint that was innermost then: a rollback of
    # that savepoint takes them out of the database again
    appended: list[tuple[_Pending, SessionTransaction | None]] = field(default_factory=list)


def _buffer(session: OrmSession) -> _Buffer:
    buf = session.info.get(_BUFFER)
    if buf is None:
        buf = session.info[_BUFFER] = _Buffer()
    return buf


def _body(
    actor: str,
    action: str,
    target_type: str,
    target_id: str | int,
    case_id: str | None,
    details: dict[str, Any] | None,
) -> dict[str, Any]:
    return {
        "actor": actor,
        "action": action,
        "target_type": target_type,
        "target_id": str(target_id),
        "case_id": case_id,
        "details": details or {},
    }


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
    """Add one event to this transaction; it commits with it.

    The returned event gets its ``seq``, ``at``, ``prev_hash`` and ``hash`` when it is appended
    to the chain (at the commit, or earlier: see the module docstring)."""
    body = _body(actor, action, target_type, target_id, case_id, details)
    event = AuditEvent(**body)
    _buffer(session).pending.append(_Pending(session.get_nested_transaction(), [body], event=event))
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
    """Add ``events`` to this transaction, in order, to be appended with one executemany.

    Each event is a dict with ``action``, ``target_type``, ``target_id`` and optionally
    ``case_id``, ``details`` and ``actor`` (default: the ``actor`` argument). The canonical form
    and hash chain are exactly those of :func:`record`. Returns the list that receives their
    hashes when they are appended (at the commit, or earlier: see the module docstring)."""
    hashes: list[str] = []
    if not events:
        return hashes
    bodies = [
        _body(
            ev.get("actor") or actor,
            ev["action"],
            ev["target_type"],
            ev["target_id"],
            ev.get("case_id"),
            ev.get("details"),
        )
        for ev in events
    ]
    _buffer(session).pending.append(
        _Pending(session.get_nested_transaction(), bodies, hashes=hashes)
    )
    return hashes


def append_pending(session: OrmSession) -> None:
    """Append this transaction's buffered events to the chain now, under the head lock.

    Called by the commit hook (the lock is then held only until the commit ends) and before
    the transaction reads the log; callers that need the ``seq`` of an event before the commit
    call it themselves (the lock is then held from here to the commit)."""
    buf = session.info.get(_BUFFER)
    if buf is None or not buf.pending:
        return
    pending, buf.pending = buf.pending, []
    session.flush()  # the transaction's own changes first: a failing flush never takes the lock
    # Core statements while the lock is held: no ORM unit of work between lock and commit
    seq, prev = session.execute(
        select(AuditHead.seq, AuditHead.hash).where(AuditHead.id == 1).with_for_update()
    ).one()
    rows: list[dict[str, Any]] = []
    for item in pending:
        first = len(rows)
        for fields in item.bodies:
            seq += 1
            body = {"seq": seq, "at": format_time(utcnow()), **fields, "prev_hash": prev}
            prev = event_hash(body)
            rows.append({**body, "hash": prev})
        if item.event is not None:
            row = rows[first]
            item.event.seq, item.event.at = row["seq"], row["at"]
            item.event.prev_hash, item.event.hash = row["prev_hash"], row["hash"]
        if item.hashes is not None:
            item.hashes[:] = [r["hash"] for r in rows[first:]]
    _write_events(session, rows, seq, prev)
    loaded = session.identity_map.get(identity_key(AuditHead, 1))
    if loaded is not None:  # keep a head object this session already holds current
        set_committed_value(loaded, "seq", seq)
        set_committed_value(loaded, "hash", prev)
    where = session.get_nested_transaction()
    buf.appended.extend((item, where) for item in pending)


def _write_events(session: OrmSession, rows: list[dict[str, Any]], seq: int, head: str) -> None:
    """Insert the events and move the head. On PostgreSQL in one statement (the insert as a
    data-modifying CTE of the head's update): every round trip made while the head is locked
    lengthens the lock for all writers, by the network and, in a busy server, by the wait for
    the GIL when the answer comes back."""
    move = (
        update(AuditHead.__table__)  # type: ignore[attr-defined]
        .where(AuditHead.__table__.c.id == 1)  # type: ignore[attr-defined]
        .values(seq=seq, hash=head)
    )
    events = insert(AuditEvent.__table__)  # type: ignore[attr-defined]
    if session.get_bind().dialect.name == "postgresql" and len(rows) <= _ONE_STATEMENT_ROWS:
        session.execute(move.add_cte(events.values(rows).cte("appended")))
        return
    session.execute(events, rows)
    session.execute(move)


def _within(txn: SessionTransaction | None, boundary: SessionTransaction) -> bool:
    while txn is not None:
        if txn is boundary:
            return True
        txn = txn.parent
    return False


@sa_event.listens_for(OrmSession, "before_commit")
def _append_before_commit(session: OrmSession) -> None:
    if not session.in_nested_transaction():  # a savepoint's release is not the commit
        append_pending(session)


@sa_event.listens_for(OrmSession, "after_soft_rollback")
def _drop_rolled_back(session: OrmSession, previous: SessionTransaction) -> None:
    buf = session.info.get(_BUFFER)
    if buf is None:
        return
    boundary: SessionTransaction | None = previous  # what the database rolled back
    while boundary is not None and not boundary.nested and boundary.parent is not None:
        boundary = boundary.parent
    if boundary is None or not boundary.nested:
        session.info.pop(_BUFFER, None)
        return
    undone = [item for item, where in buf.appended if _within(where, boundary)]
    if not undone and not buf.pending:
        return
    buf.appended = [(i, w) for i, w in buf.appended if not _within(w, boundary)]
    loaded = session.identity_map.get(identity_key(AuditHead, 1))
    if undone and loaded is not None:  # its values were set without making it dirty
        session.expire(loaded)
    # appended inside the savepoint but recorded outside it: pending again, ahead of the rest
    again = [item for item in undone if not _within(item.owner, boundary)]
    buf.pending = again + [p for p in buf.pending if not _within(p.owner, boundary)]


@sa_event.listens_for(OrmSession, "after_transaction_end")
def _forget(session: OrmSession, transaction: SessionTransaction) -> None:
    if transaction.parent is None:
        session.info.pop(_BUFFER, None)


@sa_event.listens_for(OrmSession, "do_orm_execute")
def _append_before_reading_the_log(state: ORMExecuteState) -> None:
    buf = state.session.info.get(_BUFFER)
    if buf is None or not buf.pending or not state.is_select:
        return
    # A plain walk over the statement's tables (subqueries included). Not
    # ``Select.get_final_froms()``: that compiles the whole statement on every call, uncached —
    # it was the largest single cost of answering a deposit (each SELECT after ``record``).
    # (the walk goes through joins and aliases to their tables; a column outside any table,
    # e.g. a label, has none)
    found = find_tables(cast(ClauseElement, state.statement), check_columns=True)
    tables = {getattr(t, "name", None) for t in found if t is not None}
    if tables & _AUDIT_TABLES:
        append_pending(state.session)
