"""Not-due documents never reach a batch or its approval; what a step would do is previewable.

A future 基準日 (as_of) lets an officer look ahead, but creating a batch and approving one check
each document against today in the city too, so an approved batch never fails at execution for
an item that was never due."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from genpon.core.errors import Conflict
from genpon.retention import batches, extension, holding, steps
from sqlmodel import Session

from tests.retention.helpers import actor, make_case

TZ = "Asia/Tokyo"
CLOSED_2015 = datetime(2015, 7, 15, 3, tzinfo=UTC)  # B0102, 5 years: due since 2021-04-01


def _create(ctx, **kw):
    with Session(ctx.engine, expire_on_commit=False) as s:
        b = batches.create_batch(s, actor(ctx, "suzuki"), action="destroy", timezone=TZ, **kw)
        s.commit()
        return b.id


def test_a_future_as_of_does_not_let_a_not_due_document_in(ctx, demo):
    _c, due = make_case(ctx, closed=CLOSED_2015, docs=1)
    _f, later = make_case(ctx, closed=datetime.now(UTC), docs=1)  # due in five years and more
    far = date(2099, 4, 1)
    with pytest.raises(Conflict) as e:
        _create(ctx, as_of=far, document_ids=[*due, *later])
    assert e.value.code == "items_not_disposable"
    [item] = e.value.details["items"]
    assert item["document_id"] == later[0] and item["reason"] == "not_due"
    assert item["retention_end"] > date.today().isoformat()
    assert item["message"].startswith("保存期間が満了していません（満了日 ")
    # the whole list as of the far date: refused too, naming the not-due item
    with pytest.raises(Conflict) as e:
        _create(ctx, as_of=far)
    assert later[0] in {i["document_id"] for i in e.value.details["items"]}
    # the due one alone goes in
    assert _create(ctx, as_of=far, document_ids=due)


def test_approval_refuses_an_item_no_longer_due_and_accepts_the_rest(ctx, demo):
    _case_id, ids = make_case(ctx, closed=CLOSED_2015, docs=2)
    batch_id = _create(ctx, document_ids=ids)
    suzuki, sato = actor(ctx, "suzuki"), actor(ctx, "sato")  # (SQLite: one writer at a time)
    with Session(ctx.engine) as s:  # 延長 since the batch was made: not due any more
        extension.extend(
            s, suzuki, scope="document", ref=ids[0], years=30, reason="再調査",
            timezone=TZ,
        )  # fmt: skip
        s.commit()
    with Session(ctx.engine) as s, pytest.raises(Conflict) as e:
        batches.decide(s, sato, batch_id, approve=True, timezone=TZ)
    assert e.value.code == "items_not_approvable"
    assert [(i["document_id"], i["reason"]) for i in e.value.details["items"]] == [
        (ids[0], "not_due")
    ]
    assert "却下してから承認" in e.value.message
    with Session(ctx.engine, expire_on_commit=False) as s:  # reject that one, approve the rest
        batches.decide(s, sato, batch_id, approve=False, document_ids=[ids[0]], reason="延長")
        r = batches.decide(s, sato, batch_id, approve=True, timezone=TZ)
        s.commit()
    assert r.batch.status == "approved" and r.counts["approved"] == 1


def test_a_hold_does_not_stop_the_review_and_shows_in_the_preview(ctx, demo):
    case_id, ids = make_case(ctx, closed=CLOSED_2015, docs=2)
    batch_id = _create(ctx, document_ids=ids)
    suzuki, sato = actor(ctx, "suzuki"), actor(ctx, "sato")
    with Session(ctx.engine) as s:
        holding.place_hold(
            s, suzuki, scope="document", ref=ids[1], hold_type="disclosure",
            reason="開示請求第7号",
        )  # fmt: skip
        s.commit()
    with Session(ctx.engine) as s:
        batches.decide(s, sato, batch_id, approve=True, timezone=TZ)
        s.commit()
    with Session(ctx.engine, expire_on_commit=False) as s:
        p = steps.preview_step(s, suzuki, batch_id, "execute", timezone=TZ)
        assert [d.id for d in p.documents] == ids and [d.id for d in p.ready] == [ids[0]]
        assert [(c[0], c[2]) for c in p.cases] == [(case_id, 2)]
        [(hold, covered)] = p.holds
        assert hold.hold_type == "disclosure" and covered == [ids[1]]
        [blocked] = p.blocked
        assert blocked["document_id"] == ids[1] and blocked["reason"] == "held:disclosure"
        with pytest.raises(Conflict) as e:  # an approved destroy batch has no export step
            steps.preview_step(s, suzuki, batch_id, "export", timezone=TZ)
        assert e.value.code == "wrong_batch_action"


def test_the_api_gives_the_reason_per_item(client, demo, ctx):
    _f, later = make_case(ctx, closed=datetime.now(UTC), docs=1)
    r = client.post(
        "/api/v1/retention/batches",
        json={"action": "destroy", "as_of": "2099-04-01", "document_ids": later},
        headers=demo.auth("suzuki"),
    )
    assert r.status_code == 409, r.text
    err = r.json()["error"]
    assert err["code"] == "items_not_disposable"
    assert [(i["document_id"], i["reason"]) for i in err["details"]["items"]] == [
        (later[0], "not_due")
    ]
