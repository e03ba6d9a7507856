"""Holds, the due list, four-eyes batches, destroy with a signed certificate (services)."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

import pytest
from genpon.core.errors import Conflict, Forbidden, InvalidInput
from genpon.records.models import AuditEvent, Blob, Document, IndexOutbox
from genpon.retention import batches, certificates, disposal, disposition_list, holding
from genpon.retention.certificate import verify_certificate
from genpon.retention.models import DisposalCertificate, Tombstone
from sqlmodel import Session, col, select

from tests.conftest import BOTH_DBS
from tests.retention.helpers import AS_OF, actor, doc, keyring, make_case

TZ = "Asia/Tokyo"


def _due_ids(ctx, as_of=AS_OF, **kw) -> list[int]:
    with Session(ctx.engine, expire_on_commit=False) as s:
        return [
            i.document_id
            for i in disposition_list.iter_due(
                s, actor(ctx, "suzuki"), timezone=TZ, as_of=as_of, **kw
            )
        ]


def _create(ctx, login="suzuki", **kw):
    with Session(ctx.engine, expire_on_commit=False) as s:
        b = batches.create_batch(s, actor(ctx, login), timezone=TZ, as_of=AS_OF, **kw)
        s.commit()
        return b.id


def _decide(ctx, batch_id, login="sato", **kw):
    with Session(ctx.engine, expire_on_commit=False) as s:
        r = batches.decide(s, actor(ctx, login), batch_id, **kw)
        s.commit()
        return r


@BOTH_DBS
def test_destroy_end_to_end_with_certificate(ctx, demo):
    ring = keyring(ctx)
    case_id, ids = make_case(ctx)
    _other_case, later = make_case(ctx, closed=None)  # open: never due
    assert doc(ctx, ids[0]).retention_start == date(2021, 4, 1)
    assert doc(ctx, ids[0]).retention_end == date(2026, 3, 31)
    assert _due_ids(ctx, as_of=date(2026, 3, 31)) == []
    assert _due_ids(ctx) == ids
    with Session(ctx.engine, expire_on_commit=False) as s:
        page = disposition_list.due_list(s, actor(ctx, "yamada"), timezone=TZ, as_of=AS_OF)
        assert page.total == 2 and len(page.groups) == 1
        assert page.groups[0].case_id == case_id and page.groups[0].disposition == "destroy"

    batch_id = _create(ctx, action="destroy")
    with pytest.raises(Forbidden) as e:
        _decide(ctx, batch_id, login="suzuki", approve=True)
    assert e.value.code == "four_eyes_required"
    with pytest.raises(Conflict) as e:
        disposal.execute_batch(
            ctx.engine, ctx.store, actor(ctx, "suzuki"), ctx.settings, batch_id, as_of=AS_OF
        )
    assert e.value.code == "batch_not_approved"
    summary = _decide(ctx, batch_id, approve=True)
    assert summary.batch.status == "approved"

    shas = [doc(ctx, i).sha256 for i in ids]
    report = disposal.execute_batch(
        ctx.engine, ctx.store, actor(ctx, "suzuki"), ctx.settings, batch_id, as_of=AS_OF
    )
    assert report.status == "executed" and report.done == 2 and report.certificate_id
    for i, sha in zip(ids, shas, strict=True):
        assert doc(ctx, i).state == "destroyed"
        assert not ctx.store.exists(sha)
    assert doc(ctx, later[0]).state == "live"
    with Session(ctx.engine, expire_on_commit=False) as s:
        assert {b.state for b in s.exec(select(Blob).where(col(Blob.sha256).in_(shas)))} == {
            "deleted"
        }
        tombs = s.exec(select(Tombstone).where(Tombstone.batch_id == batch_id)).all()
        assert sorted(t.document_id for t in tombs) == ids
        assert all(t.approved_by == "sato" and t.requested_by == "suzuki" for t in tombs)
        outbox = s.exec(select(IndexOutbox).where(IndexOutbox.reason == "destroy")).all()
        assert sorted(o.sha256 for o in outbox) == sorted(shas)
        cert_row = s.exec(select(DisposalCertificate)).one()
        cert_doc = s.get(Document, cert_row.document_id)
        assert cert_doc.status == "official" and cert_doc.state == "live"
        # the certificate is a record with 30-year retention (class A0101)
        assert cert_doc.retention_end is not None
        assert cert_doc.retention_end.year - cert_doc.retention_start.year == 30
        timeline = [
            e.action
            for e in s.exec(
                select(AuditEvent).where(AuditEvent.case_id == case_id).order_by(AuditEvent.seq)
            )
        ]
    for action in (
        "retention.disposal_requested",
        "retention.disposal_approved",
        "document.destroyed",
    ):
        assert action in timeline
    # the certificate lists every destroyed item with its hash and verifies
    with Session(ctx.engine, expire_on_commit=False) as s:
        _name, data = certificates.certificate_file(s, actor(ctx, "yamada"), batch_id)
    cert = json.loads(data)
    assert sorted((i["document_id"], i["sha256"]) for i in cert["items"]) == sorted(
        zip(ids, shas, strict=True)
    )
    assert verify_certificate(cert, ring.public_keys()).ok
    # the stored record is the same bytes
    with ctx.store.open(cert_doc.sha256) as fh:
        assert fh.read() == data
    # executing again: already disposed, nothing changes
    with pytest.raises(Conflict) as e:
        disposal.execute_batch(
            ctx.engine, ctx.store, actor(ctx, "sato"), ctx.settings, batch_id, as_of=AS_OF
        )
    assert e.value.code == "batch_already_executed"
    with pytest.raises(Conflict) as e:
        _create(ctx, action="destroy", document_ids=[ids[0]])
    assert e.value.code == "items_not_disposable"
    assert e.value.details["items"][0]["reason"] == "already_destroyed"


@BOTH_DBS
def test_holds_at_each_level_block_and_release(ctx, demo):
    keyring(ctx)
    case_id, ids = make_case(ctx)
    officer = actor(ctx, "suzuki")
    for scope, ref in (("document", ids[0]), ("case", case_id), ("class", "B01")):
        with Session(ctx.engine, expire_on_commit=False) as s:
            hold = holding.place_hold(
                s, officer, scope=scope, ref=ref, hold_type="litigation", reason="訴訟提起"
            )
            s.commit()
        with Session(ctx.engine, expire_on_commit=False) as s:
            items = list(disposition_list.iter_due(s, officer, timezone=TZ, as_of=AS_OF))
        held = {i.document_id for i in items if i.held}
        assert held == ({ids[0]} if scope == "document" else set(ids))
        with pytest.raises(Conflict) as e:
            _create(ctx, action="destroy", document_ids=ids)
        assert e.value.code == "items_not_disposable"
        assert e.value.details["items"][0]["reason"] == "held:litigation"
        with Session(ctx.engine, expire_on_commit=False) as s, pytest.raises(InvalidInput):
            holding.release_hold(s, officer, hold.id, reason=" ")
        with Session(ctx.engine, expire_on_commit=False) as s:
            holding.release_hold(s, officer, hold.id, reason="和解成立")
            s.commit()
    # staff may not place holds
    with Session(ctx.engine, expire_on_commit=False) as s, pytest.raises(Forbidden):
        holding.place_hold(
            s, actor(ctx, "tanaka"), scope="case", ref=case_id, hold_type="audit", reason="x"
        )
    with Session(ctx.engine, expire_on_commit=False) as s, pytest.raises(InvalidInput):
        holding.place_hold(s, officer, scope="case", ref=case_id, hold_type="whim", reason="x")
    with Session(ctx.engine, expire_on_commit=False) as s:
        actions = [
            e.action for e in s.exec(select(AuditEvent).where(AuditEvent.case_id == case_id))
        ]
    assert actions.count("retention.hold_placed") == 2  # document and case scopes
    assert actions.count("retention.hold_released") == 2


@BOTH_DBS
def test_execution_rechecks_holds_and_skip_blocked(ctx, demo):
    keyring(ctx)
    _case_id, ids = make_case(ctx, docs=3)
    batch_id = _create(ctx, action="destroy")
    _decide(ctx, batch_id, approve=True)
    with Session(ctx.engine, expire_on_commit=False) as s:
        holding.place_hold(
            s,
            actor(ctx, "sato"),
            scope="document",
            ref=ids[1],
            hold_type="disclosure",
            reason="開示請求 第12号",
        )
        s.commit()
    with pytest.raises(Conflict) as e:
        disposal.execute_batch(
            ctx.engine, ctx.store, actor(ctx, "suzuki"), ctx.settings, batch_id, as_of=AS_OF
        )
    assert e.value.code == "items_blocked"
    assert all(doc(ctx, i).state == "live" for i in ids)  # nothing changed
    report = disposal.execute_batch(
        ctx.engine,
        ctx.store,
        actor(ctx, "suzuki"),
        ctx.settings,
        batch_id,
        as_of=AS_OF,
        skip_blocked=True,
    )
    assert report.status == "executed" and report.done == 2
    assert [s["document_id"] for s in report.skipped] == [ids[1]]
    assert doc(ctx, ids[1]).state == "live" and ctx.store.exists(doc(ctx, ids[1]).sha256)
    with Session(ctx.engine, expire_on_commit=False) as s:
        cert = s.exec(select(DisposalCertificate)).one().body
    assert sorted(i["document_id"] for i in cert["items"]) == [ids[0], ids[2]]


def test_partial_review_and_rejection(ctx, demo):
    keyring(ctx)
    _case, ids = make_case(ctx, docs=3)
    batch_id = _create(ctx, action="destroy")
    with pytest.raises(InvalidInput):
        _decide(ctx, batch_id, approve=False, document_ids=[ids[0]])  # reason required
    s1 = _decide(ctx, batch_id, approve=False, document_ids=[ids[0]], reason="再確認が必要")
    assert s1.batch.status == "pending" and s1.counts["rejected"] == 1
    s2 = _decide(ctx, batch_id, approve=True)
    assert s2.batch.status == "approved" and s2.counts["approved"] == 2
    with pytest.raises(Conflict):
        _decide(ctx, batch_id, approve=True)
    report = disposal.execute_batch(
        ctx.engine, ctx.store, actor(ctx, "sato"), ctx.settings, batch_id, as_of=AS_OF
    )
    assert report.done == 2 and doc(ctx, ids[0]).state == "live"
    # the rejected document may go into a new batch
    b2 = _create(ctx, action="destroy", document_ids=[ids[0]])
    s3 = _decide(ctx, b2, approve=False, reason="保存継続")
    assert s3.batch.status == "rejected"
    with pytest.raises(Conflict) as e:
        disposal.execute_batch(
            ctx.engine, ctx.store, actor(ctx, "sato"), ctx.settings, b2, as_of=AS_OF
        )
    assert e.value.code == "batch_rejected"


def test_not_due_wrong_disposition_and_in_open_batch(ctx, demo):
    _c, ids = make_case(ctx)
    # 10 years, transfer: due since 2021, but a future as_of never makes a document due
    _t, transfer_ids = make_case(ctx, cls="B0201", closed=datetime(2010, 9, 1, 3, tzinfo=UTC))
    _f, future_ids = make_case(ctx, cls="B0201")
    with pytest.raises(Conflict) as e:
        _create(ctx, action="transfer", document_ids=future_ids)
    assert {i["reason"] for i in e.value.details["items"]} == {"not_due"}
    with Session(ctx.engine, expire_on_commit=False) as s, pytest.raises(Conflict) as e:
        batches.create_batch(
            s,
            actor(ctx, "suzuki"),
            timezone=TZ,
            as_of=date(2031, 4, 1),
            action="destroy",
            document_ids=transfer_ids,
        )
    assert {i["reason"] for i in e.value.details["items"]} == {"disposition_is_transfer"}
    _create(ctx, action="destroy", document_ids=[ids[0]])
    with pytest.raises(Conflict) as e:
        _create(ctx, action="destroy", document_ids=ids)
    assert e.value.details["items"] == [
        {"document_id": ids[0], "reason": "in_open_batch", "message": "別の伺いに含まれています"}
    ]
    with pytest.raises(Forbidden):
        _create(ctx, login="tanaka", action="destroy", document_ids=[ids[1]])
