"""The audit head is locked only while a transaction appends its events, just before commit.

Events are buffered in the session and appended as the transaction's last statements; a savepoint
that rolls back takes its events with it; a transaction that reads the log sees its own events.
"""

from __future__ import annotations

import pytest
from genpon.api.context import AppContext
from genpon.core.db import session_scope
from genpon.records import audit
from genpon.records.audit import format as audit_format
from genpon.records.models import AuditEvent, AuditHead
from sqlalchemy import func, text
from sqlalchemy.orm import aliased
from sqlmodel import Session, col, select

from tests.conftest import BOTH_DBS


def _chain(engine) -> list[AuditEvent]:  # type: ignore[no-untyped-def]
    with Session(engine) as s:
        events = list(s.exec(select(AuditEvent).order_by(col(AuditEvent.seq))).all())
        prev = audit_format.GENESIS_HASH
        for i, ev in enumerate(events, start=1):
            assert ev.seq == i and ev.prev_hash == prev
            assert audit_format.event_hash(ev.model_dump()) == ev.hash
            prev = ev.hash
        head = s.get(AuditHead, 1)
        assert head is not None and head.seq == len(events) and head.hash == prev
        return events


def _record(s: Session, action: str) -> AuditEvent:
    return audit.record(s, actor="a", action=action, target_type="t", target_id=1)


@BOTH_DBS
def test_events_commit_with_the_transaction_in_order(ctx: AppContext) -> None:
    with session_scope(ctx.engine) as s:
        first = _record(s, "x.first")
        hashes = audit.record_many(
            s, actor="b", events=[{"action": "x.many", "target_type": "t", "target_id": 2}]
        )
        assert first.seq is None and hashes == []  # buffered, not yet in the chain
        last = _record(s, "x.last")
    assert (first.seq, last.seq) == (1, 3)
    events = _chain(ctx.engine)
    assert [e.action for e in events] == ["x.first", "x.many", "x.last"]
    assert hashes == [events[1].hash] and last.hash == events[2].hash
    with Session(ctx.engine) as s:
        _record(s, "x.rolled_back")
        s.rollback()
        _record(s, "x.closed_without_commit")
    assert len(_chain(ctx.engine)) == 3


@BOTH_DBS
def test_a_rolled_back_savepoint_takes_its_events_with_it(ctx: AppContext) -> None:
    with session_scope(ctx.engine) as s:
        _record(s, "x.before")
        with pytest.raises(RuntimeError), s.begin_nested():
            _record(s, "x.inside")
            raise RuntimeError
        with s.begin_nested():
            _record(s, "x.kept")
        # appended inside a savepoint (the read), recorded outside it: survives its rollback
        _record(s, "x.outside")
        with pytest.raises(RuntimeError), s.begin_nested():
            _record(s, "x.inside_read")
            assert s.exec(select(AuditHead)).one().seq == 4  # the read appends first
            raise RuntimeError
        with pytest.raises(RuntimeError), s.begin_nested():
            _record(s, "x.inside_read_only_inside")
            assert s.exec(select(AuditHead)).one().seq == 4
            raise RuntimeError
        assert s.exec(select(AuditHead)).one().seq == 3  # not the rolled-back 4
        _record(s, "x.after")
    assert [e.action for e in _chain(ctx.engine)] == [
        "x.before",
        "x.kept",
        "x.outside",
        "x.after",
    ]


@BOTH_DBS
def test_a_transaction_reads_its_own_events(ctx: AppContext) -> None:
    with session_scope(ctx.engine) as s:
        ev = _record(s, "x.read_back")
        rows = s.exec(select(AuditEvent).where(AuditEvent.action == "x.read_back")).all()
        assert [r.seq for r in rows] == [1] and ev.seq == 1
        assert audit.case_timeline(s, "none") == []
    _chain(ctx.engine)


@BOTH_DBS
def test_counts_and_aliases_of_the_log_see_the_own_events_too(ctx: AppContext) -> None:
    """The read hook finds the log behind an aggregate, an alias or a subquery, and a query
    whose columns belong to no table (a bare count) neither breaks it nor appends."""
    with session_scope(ctx.engine) as s:
        _record(s, "x.counted")
        assert s.exec(select(func.count())).one() == 1  # no table: nothing appended yet
        assert s.exec(select(func.count()).select_from(AuditEvent)).one() == 1
        _record(s, "x.aliased")
        seen = aliased(AuditEvent)
        assert s.exec(select(seen.action).where(seen.seq == 2)).one() == "x.aliased"
        _record(s, "x.sub")
        inner = select(AuditEvent.seq).where(AuditEvent.action == "x.sub")
        assert s.exec(select(AuditHead.seq).where(col(AuditHead.seq).in_(inner))).one() == 3
    _chain(ctx.engine)


@pytest.mark.postgres
@pytest.mark.parametrize("db_kind", ["postgres"])
def test_an_open_writer_does_not_hold_the_head(ctx: AppContext) -> None:
    """A transaction with a recorded, uncommitted event does not block another appender."""
    with Session(ctx.engine) as slow:
        _record(slow, "x.slow")
        slow.execute(text("SELECT 1"))  # the transaction is open on the server
        with Session(ctx.engine) as fast:
            fast.execute(text("SET LOCAL lock_timeout = '2s'"))
            _record(fast, "x.fast")
            fast.commit()  # before: LockNotAvailable after 2 s, the head held by ``slow``
        slow.commit()
    assert [e.action for e in _chain(ctx.engine)] == ["x.fast", "x.slow"]
