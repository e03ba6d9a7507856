"""Races and crashes of batch execution; copies; extensions; dates at fiscal-year edges."""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime

import pytest
from genpon.core.errors import Conflict
from genpon.records import documents
from genpon.records.access import SYSTEM_ACTOR
from genpon.records.models import AuditEvent, Document
from genpon.retention import batches, disposal, disposition_list, extension, holding
from genpon.retention.models import DisposalCertificate, Tombstone
from sqlmodel import Session, func, select

from tests.conftest import BOTH_DBS
from tests.retention.helpers import AS_OF, actor, doc, keyring, make_case

TZ = "Asia/Tokyo"


def _approved_batch(ctx, ids=None) -> int:
    with Session(ctx.engine, expire_on_commit=False) as s:
        b = batches.create_batch(
            s, actor(ctx, "suzuki"), action="destroy", timezone=TZ, as_of=AS_OF, document_ids=ids
        )
        s.commit()
    with Session(ctx.engine) as s:
        batches.decide(s, actor(ctx, "sato"), b.id, approve=True)
        s.commit()
    return b.id


def _execute(ctx, batch_id, **kw):
    return disposal.execute_batch(
        ctx.engine, ctx.store, actor(ctx, "suzuki"), ctx.settings, batch_id, as_of=AS_OF, **kw
    )


def _destroy_events(ctx) -> dict[str, int]:
    with Session(ctx.engine) as s:
        rows = s.exec(
            select(AuditEvent.target_id, func.count())
            .where(AuditEvent.action == "document.destroyed")
            .group_by(AuditEvent.target_id)
        ).all()
    return {t: n for t, n in rows}


@BOTH_DBS
def test_two_executions_at_once_destroy_each_item_once(ctx, demo):
    keyring(ctx)
    _c, ids = make_case(ctx, docs=12)
    batch_id = _approved_batch(ctx)
    results: list[object] = []

    def run() -> None:
        try:
            results.append(_execute(ctx, batch_id, chunk=3))
        except Conflict as exc:  # the loser may arrive after the winner finished
            results.append(exc.code)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(r == "batch_already_executed" or r.status == "executed" for r in results), results
    assert sum(r.done for r in results if not isinstance(r, str)) == 12
    assert _destroy_events(ctx) == {str(i): 1 for i in ids}
    with Session(ctx.engine) as s:
        assert s.exec(select(func.count()).select_from(Tombstone)).one() == 12
        cert = s.exec(select(DisposalCertificate)).one()
    assert sorted(i["document_id"] for i in cert.body["items"]) == ids


@BOTH_DBS
def test_crash_mid_execution_resumes_without_losing_a_certificate_entry(ctx, demo, monkeypatch):
    keyring(ctx)
    _c, ids = make_case(ctx, docs=5)
    _o, others = make_case(ctx, docs=1)  # due but not in the batch
    batch_id = _approved_batch(ctx, ids)
    real = disposal._dispose_document
    calls = {"n": 0}

    def dying(*a, **k):
        calls["n"] += 1
        if calls["n"] == 3:
            raise RuntimeError("simulated crash")
        return real(*a, **k)

    monkeypatch.setattr(disposal, "_dispose_document", dying)
    with pytest.raises(RuntimeError):
        _execute(ctx, batch_id, chunk=2)
    monkeypatch.setattr(disposal, "_dispose_document", real)
    states = [doc(ctx, i).state for i in ids]
    assert states == ["destroyed", "destroyed", "live", "live", "live"]  # chunk 2 rolled back
    with Session(ctx.engine) as s:
        assert (
            s.get(
                __import__("genpon.retention.models").retention.models.DispositionBatch, batch_id
            ).status
            == "executing"
        )

    # a crash after a chunk committed but before its content was removed from the store
    real_purge = disposal.purge_content
    monkeypatch.setattr(
        disposal, "purge_content", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("x"))
    )
    with pytest.raises(RuntimeError):
        _execute(ctx, batch_id, chunk=2)
    monkeypatch.setattr(disposal, "purge_content", real_purge)
    leftover = [doc(ctx, i) for i in ids if doc(ctx, i).state == "destroyed"]
    assert any(ctx.store.exists(d.sha256) for d in leftover)

    report = _execute(ctx, batch_id, chunk=2)
    assert report.status == "executed"
    assert all(doc(ctx, i).state == "destroyed" for i in ids)
    assert all(not ctx.store.exists(doc(ctx, i).sha256) for i in ids)
    assert doc(ctx, others[0]).state == "live" and ctx.store.exists(doc(ctx, others[0]).sha256)
    assert _destroy_events(ctx) == {str(i): 1 for i in ids}
    with Session(ctx.engine) as s:
        cert = s.exec(select(DisposalCertificate)).one()
    assert sorted(i["document_id"] for i in cert.body["items"]) == ids


def test_missing_signing_key_destroys_nothing(ctx, demo):
    _c, ids = make_case(ctx)
    batch_id = _approved_batch(ctx)
    with pytest.raises(Conflict) as e:
        _execute(ctx, batch_id)
    assert e.value.code == "signing_key_missing"
    assert all(doc(ctx, i).state == "live" for i in ids)


def test_copies_are_capped_and_follow_their_original(ctx, demo):
    keyring(ctx)
    _a, (orig,) = make_case(ctx, docs=1)  # 5 years: ends 2026-03-31
    b_case, _ = make_case(ctx, cls="B0101", docs=0, closed=None, title="10年の案件")
    with Session(ctx.engine) as s:
        from genpon.records.cases import close_case, get_case
        from genpon.records.folders import case_root_folder

        folder = case_root_folder(s, get_case(s, SYSTEM_ACTOR, b_case))
        copy = documents.copy_to_folder(s, SYSTEM_ACTOR, orig, folder.id)
        close_case(s, SYSTEM_ACTOR, b_case, timezone=TZ, closed_at=datetime(2020, 8, 1, tzinfo=UTC))
        s.commit()
        copy_id = copy.id
    # 10 years would end 2031-03-31, but a copy never outlives its original
    assert doc(ctx, copy_id).retention_end == date(2026, 3, 31)
    batch_id = _approved_batch(ctx, [orig])  # the copy goes with its original
    with Session(ctx.engine) as s:
        items = batches.batch_items(s, actor(ctx, "suzuki"), batch_id)
    assert sorted(i.document_id for i, _d in items) == sorted([orig, copy_id])
    sha = doc(ctx, orig).sha256
    _execute(ctx, batch_id)
    assert doc(ctx, orig).state == doc(ctx, copy_id).state == "destroyed"
    assert not ctx.store.exists(sha)


def test_lt1_copy_disposed_while_original_kept_keeps_the_content(ctx, demo):
    keyring(ctx)
    _a, (orig,) = make_case(ctx, docs=1, closed=None)  # original kept, not scheduled
    lt1_case, _ = make_case(ctx, cls="A0201", docs=0, closed=None, title="軽易な照会")
    with Session(ctx.engine) as s:
        from genpon.records.cases import close_case, get_case
        from genpon.records.folders import case_root_folder

        folder = case_root_folder(s, get_case(s, SYSTEM_ACTOR, lt1_case))
        copy_id = documents.copy_to_folder(s, SYSTEM_ACTOR, orig, folder.id).id
        close_case(
            s, SYSTEM_ACTOR, lt1_case, timezone=TZ, closed_at=datetime(2026, 2, 1, tzinfo=UTC)
        )
        s.commit()
    d = doc(ctx, copy_id)
    assert d.retention_start == d.retention_end == date(2026, 2, 1)  # 1年未満: due after closing
    batch_id = _approved_batch(ctx, [copy_id])
    _execute(ctx, batch_id)
    assert doc(ctx, copy_id).state == "destroyed"
    assert doc(ctx, orig).state == "live" and ctx.store.exists(doc(ctx, orig).sha256)


@pytest.mark.parametrize(
    ("closed", "start"),
    [
        (datetime(2027, 3, 31, 14, 30, tzinfo=UTC), date(2027, 4, 1)),  # 23:30 JST: FY2026
        (datetime(2027, 3, 31, 15, 0, tzinfo=UTC), date(2028, 4, 1)),  # 00:00 JST Apr 1: FY2027
        (datetime(2028, 2, 29, 3, 0, tzinfo=UTC), date(2028, 4, 1)),  # leap day
    ],
)
def test_closing_fixes_dates_in_city_time_and_reopen_clears(ctx, demo, closed, start):
    case_id, (d1,) = make_case(ctx, docs=1, closed=closed)
    assert doc(ctx, d1).retention_start == start
    assert doc(ctx, d1).retention_end == date(start.year + 5, 3, 31)
    with Session(ctx.engine) as s:
        from genpon.records.cases import reopen_case

        reopen_case(s, SYSTEM_ACTOR, case_id, timezone=ctx.settings.timezone)
        s.commit()
    assert doc(ctx, d1).retention_start is None and doc(ctx, d1).retention_end is None


def test_closing_date_rule_on_leap_day(ctx, demo):
    from genpon.records.models import DocumentClass

    with Session(ctx.engine) as s:
        cls = s.exec(select(DocumentClass).where(DocumentClass.code == "C0101")).one()
        cls.start_rule, cls.retention = "closing_date", "1"
        s.add(cls)
        s.commit()
    _c, (d1,) = make_case(
        ctx, cls="C0101", org="SHIMIN-SHIMIN", docs=1, closed=datetime(2028, 2, 29, 3, tzinfo=UTC)
    )
    assert doc(ctx, d1).retention_start == date(2028, 2, 29)
    assert doc(ctx, d1).retention_end == date(2029, 2, 28)


@BOTH_DBS
def test_extensions_are_cumulative_and_recompute_dates(ctx, demo):
    case_id, (d1, d2) = make_case(ctx)
    officer = actor(ctx, "suzuki")
    with Session(ctx.engine) as s:
        _e, changed = extension.extend(
            s, officer, scope="case", ref=case_id, years=3, reason="監査対応", timezone=TZ
        )
        s.commit()
    assert changed == 2
    assert doc(ctx, d1).retention_end == date(2029, 3, 31)
    with Session(ctx.engine) as s:
        extension.extend(
            s, officer, scope="document", ref=d1, years=2, reason="訴訟の可能性", timezone=TZ
        )
        extension.extend(
            s, officer, scope="class", ref="B01", years=1, reason="制度改正", timezone=TZ
        )
        s.commit()
    assert doc(ctx, d1).retention_end == date(2032, 3, 31)  # 5 + 3 + 2 + 1
    assert doc(ctx, d2).retention_end == date(2030, 3, 31)  # 5 + 3 + 1
    with Session(ctx.engine) as s:
        assert [
            i.document_id for i in disposition_list.iter_due(s, officer, timezone=TZ, as_of=AS_OF)
        ] == []
        actions = [
            e.action for e in s.exec(select(AuditEvent).where(AuditEvent.case_id == case_id))
        ]
    assert actions.count("retention.extended") == 2  # case and document scopes are on the timeline
    with Session(ctx.engine) as s, pytest.raises(Exception) as e:
        extension.extend(s, officer, scope="case", ref=case_id, years=0, reason="x", timezone=TZ)
    assert e.value.code == "invalid_years"


def test_reexecution_after_a_new_hold_on_the_copy_keeps_shared_content(ctx, demo):
    """A hold on one placement keeps the content even when the other is destroyed."""
    keyring(ctx)
    _a, (orig,) = make_case(ctx, docs=1)
    b_case, _ = make_case(ctx, docs=0, closed=None, title="写しの案件")
    sato = actor(ctx, "sato")
    with Session(ctx.engine) as s:
        from genpon.records.cases import close_case, get_case
        from genpon.records.folders import case_root_folder

        folder = case_root_folder(s, get_case(s, SYSTEM_ACTOR, b_case))
        copy_id = documents.copy_to_folder(s, SYSTEM_ACTOR, orig, folder.id).id
        close_case(s, SYSTEM_ACTOR, b_case, timezone=TZ, closed_at=datetime(2020, 8, 1, tzinfo=UTC))
        holding.place_hold(s, sato, scope="document", ref=copy_id, hold_type="audit", reason="監査")
        s.commit()
    with Session(ctx.engine, expire_on_commit=False) as s:
        b = batches.create_batch(
            s,
            actor(ctx, "suzuki"),
            action="destroy",
            timezone=TZ,
            as_of=AS_OF,
            document_ids=[orig],
            include_copies=False,
        )
        s.commit()
    with Session(ctx.engine) as s:
        batches.decide(s, actor(ctx, "sato"), b.id, approve=True)
        s.commit()
    _execute(ctx, b.id)
    d, c = doc(ctx, orig), doc(ctx, copy_id)
    assert (
        d.state == "destroyed" and c.state == "live" and c.original_id is None
    )  # now the original
    assert ctx.store.exists(c.sha256)
    with Session(ctx.engine) as s:
        assert (
            s.exec(select(Document).where(Document.sha256 == c.sha256, Document.state == "live"))
            .one()
            .id
            == copy_id
        )
