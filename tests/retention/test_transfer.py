"""移管: BagIt package (validated with the bagit library), acknowledgment, holds win."""

from __future__ import annotations

import csv
import json
from datetime import UTC, date, datetime
from pathlib import Path

import bagit
import pytest
from genpon.core.errors import Conflict
from genpon.retention import batches, disposal, holding, transfers
from genpon.retention.models import Tombstone
from sqlmodel import Session, select

from tests.conftest import BOTH_DBS
from tests.retention.helpers import actor, doc, make_case

TZ = "Asia/Tokyo"
AS_OF = date(2026, 4, 1)
CLOSED_2010 = datetime(2010, 9, 1, 3, tzinfo=UTC)  # B0201: 10 years, transfer -> ends 2021-03-31


def _transfer_batch(ctx, ids=None) -> int:
    with Session(ctx.engine, expire_on_commit=False) as s:
        b = batches.create_batch(
            s, actor(ctx, "suzuki"), action="transfer", timezone=TZ, as_of=AS_OF, document_ids=ids
        )
        s.commit()
    with Session(ctx.engine) as s:
        batches.decide(s, actor(ctx, "sato"), b.id, approve=True)
        s.commit()
    return b.id


@BOTH_DBS
def test_transfer_package_and_acknowledgment(ctx, demo, tmp_path):
    case_id, ids = make_case(
        ctx, cls="B0201", org="KENSETSU-DOURO", closed=CLOSED_2010, title="道路改良工事"
    )
    shas = [doc(ctx, i).sha256 for i in ids]
    with Session(ctx.engine) as s, pytest.raises(Conflict):
        batches.create_batch(
            s, actor(ctx, "suzuki"), action="destroy", timezone=TZ, as_of=AS_OF, document_ids=ids
        )
    batch_id = _transfer_batch(ctx)
    with pytest.raises(Conflict) as e:
        disposal.execute_batch(
            ctx.engine, ctx.store, actor(ctx, "sato"), ctx.settings, batch_id, as_of=AS_OF
        )
    assert e.value.code == "wrong_batch_action"
    with pytest.raises(Conflict) as e:
        transfers.acknowledge_transfer(
            ctx.engine, ctx.store, actor(ctx, "sato"), ctx.settings, batch_id, as_of=AS_OF
        )
    assert e.value.code == "batch_not_exported"
    report = transfers.export_transfer(
        ctx.engine,
        ctx.store,
        actor(ctx, "sato"),
        ctx.settings,
        batch_id,
        dest_dir=tmp_path,
        as_of=AS_OF,
    )
    assert report.status == "exported" and report.done == 2
    bag_dir = Path(report.package_path)
    bag = bagit.Bag(str(bag_dir))
    bag.validate()  # RFC 8493, both manifests
    assert set(bag.algorithms) == {"sha256", "sha512"}
    for i, sha in zip(ids, shas, strict=True):
        meta = json.loads((bag_dir / "data" / str(i) / "metadata.json").read_text(encoding="utf-8"))
        assert meta["hashes"]["sha256"] == sha == meta["payload"]["sha256"]
        assert meta["case"]["case_id"] == case_id and meta["class"]["code"] == "B0201"
        assert meta["approval"]["approvers"] == ["課長"]
        assert meta["transfer"]["approved_by"] == "sato"
    register = list(
        csv.reader((bag_dir / "data" / "register.csv").read_text(encoding="utf-8-sig").splitlines())
    )
    assert register[0][0] == "作成・取得年度" and any(case_id in c for c in register[1])
    assert all(doc(ctx, i).state == "live" for i in ids)  # until the archives acknowledge
    with pytest.raises(Conflict) as e:
        transfers.export_transfer(
            ctx.engine,
            ctx.store,
            actor(ctx, "sato"),
            ctx.settings,
            batch_id,
            dest_dir=tmp_path,
            as_of=AS_OF,
        )
    assert e.value.code == "batch_already_exported"

    # a hold placed after the export still wins at acknowledgment
    with Session(ctx.engine) as s:
        holding.place_hold(
            s,
            actor(ctx, "suzuki"),
            scope="document",
            ref=ids[1],
            hold_type="appeal",
            reason="審査請求",
        )
        s.commit()
    ack = transfers.acknowledge_transfer(
        ctx.engine,
        ctx.store,
        actor(ctx, "sato"),
        ctx.settings,
        batch_id,
        receipt_reference="公文書館 受領第7号",
        as_of=AS_OF,
    )
    assert ack.status == "transferred" and ack.done == 1
    assert ack.skipped == [{"document_id": ids[1], "reason": "held:appeal"}]
    assert doc(ctx, ids[0]).state == "transferred" and not ctx.store.exists(shas[0])
    assert doc(ctx, ids[1]).state == "live" and ctx.store.exists(shas[1])
    with Session(ctx.engine) as s:
        t = s.exec(select(Tombstone)).one()
    assert t.document_id == ids[0] and t.action == "transferred" and t.content_removed
