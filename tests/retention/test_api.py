"""The retention API end to end: due list, holds, four eyes, destroy, certificate, register."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime

from genpon.core.signing import SystemKeyring
from genpon.retention.certificate import verify_certificate
from openpyxl import load_workbook

from tests.retention.helpers import keyring, make_case

BASE = "/api/v1/retention"
CLOSED_2015 = datetime(2015, 7, 15, 3, tzinfo=UTC)  # 5 years: ends 2021-03-31, due today


def test_retention_api_cycle(client, demo, ctx):
    keyring(ctx)
    officer, reviewer, staff = demo.auth("suzuki"), demo.auth("sato"), demo.auth("tanaka")
    case_id, ids = make_case(ctx, closed=CLOSED_2015)

    r = client.get(f"{BASE}/due", headers=staff)
    assert r.status_code == 403 and r.json()["error"]["code"] == "role_required"
    r = client.get(f"{BASE}/due", headers=demo.auth("yamada"))
    assert r.status_code == 200 and r.json()["count"] == 2
    group = r.json()["groups"][0]
    assert group["case_id"] == case_id and group["disposition"] == "destroy"
    assert client.get(f"{BASE}/due?as_of=2021-03-31", headers=officer).json()["count"] == 0
    assert client.get(f"{BASE}/due?as_of=nope", headers=officer).status_code == 422

    r = client.get(f"{BASE}/due?format=csv", headers=officer)
    assert r.status_code == 200 and r.content.startswith(b"\xef\xbb\xbf")
    table = list(csv.reader(io.StringIO(r.content.decode("utf-8-sig"))))
    assert table[0][:2] == ["案件ID", "案件名"] and len(table) == 3

    # a hold on the case: listed as held, cannot go into a batch
    r = client.post(
        f"{BASE}/holds",
        json={"scope": "case", "ref": case_id, "hold_type": "litigation", "reason": "訴訟"},
        headers=officer,
    )
    assert r.status_code == 201, r.text
    hold_id = r.json()["id"]
    assert all(
        i["held"] for i in client.get(f"{BASE}/due", headers=officer).json()["groups"][0]["items"]
    )
    r = client.post(
        f"{BASE}/batches", json={"action": "destroy", "document_ids": ids}, headers=officer
    )
    assert r.status_code == 409 and r.json()["error"]["code"] == "items_not_disposable"
    r = client.post(f"{BASE}/batches", json={"action": "destroy"}, headers=officer)
    assert r.status_code == 409 and r.json()["error"]["code"] == "nothing_due"
    r = client.post(
        f"{BASE}/holds",
        json={"scope": "case", "ref": case_id, "hold_type": "x", "reason": "r"},
        headers=officer,
    )
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_hold_type"
    r = client.post(
        f"{BASE}/holds",
        json={"scope": "case", "ref": case_id, "hold_type": "audit", "reason": "r"},
        headers=staff,
    )
    assert r.status_code == 403
    r = client.post(f"{BASE}/holds/{hold_id}/release", json={"reason": "和解"}, headers=officer)
    assert r.status_code == 200 and r.json()["active"] is False
    r = client.post(f"{BASE}/holds/{hold_id}/release", json={"reason": "和解"}, headers=officer)
    assert r.status_code == 409 and r.json()["error"]["code"] == "hold_already_released"

    r = client.post(f"{BASE}/batches", json={"action": "destroy"}, headers=officer)
    assert r.status_code == 201, r.text
    batch = r.json()
    assert batch["status"] == "pending" and batch["item_count"] == 2
    r = client.post(f"{BASE}/batches/{batch['id']}/execute", json={}, headers=officer)
    assert r.status_code == 409 and r.json()["error"]["code"] == "batch_not_approved"
    r = client.post(f"{BASE}/batches/{batch['id']}/approve", json={}, headers=officer)
    assert r.status_code == 403 and r.json()["error"]["code"] == "four_eyes_required"
    r = client.post(f"{BASE}/batches/{batch['id']}/approve", json={}, headers=reviewer)
    assert r.status_code == 200 and r.json()["status"] == "approved"
    r = client.post(f"{BASE}/batches/{batch['id']}/execute", json={}, headers=staff)
    assert r.status_code == 403
    r = client.post(f"{BASE}/batches/{batch['id']}/execute", json={}, headers=reviewer)
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "executed" and r.json()["done"] == 2
    r = client.post(f"{BASE}/batches/{batch['id']}/execute", json={}, headers=reviewer)
    assert r.status_code == 409 and r.json()["error"]["code"] == "batch_already_executed"

    for doc_id in ids:
        r = client.get(f"/api/v1/documents/{doc_id}/content", headers=officer)
        assert r.status_code in (404, 409)
    items = client.get(f"{BASE}/batches/{batch['id']}/items", headers=officer).json()["data"]
    assert {i["state"] for i in items} == {"destroyed"}

    r = client.get(f"{BASE}/batches/{batch['id']}/certificate", headers=demo.auth("yamada"))
    assert r.status_code == 200 and "attachment" in r.headers["content-disposition"]
    keys = SystemKeyring(ctx.settings.key_dir).public_keys()
    assert verify_certificate(r.json(), keys).ok
    tampered = r.json()
    tampered["items"][0]["sha256"] = "0" * 64
    assert verify_certificate(tampered, keys).reason == "bad_signature"
    pems = client.get(f"{BASE}/public-keys", headers=officer).json()["keys"]
    assert verify_certificate(r.json(), pems).ok

    timeline = client.get(f"/api/v1/cases/{case_id}/timeline", headers=staff).json()["data"]
    actions = [e["action"] for e in timeline]
    for a in (
        "retention.hold_placed",
        "retention.hold_released",
        "retention.disposal_requested",
        "retention.disposal_approved",
        "document.destroyed",
    ):
        assert a in actions, a

    # the file register
    r = client.get(f"{BASE}/register?organization=SOUMU-ZAISEI&fiscal_year=2020", headers=officer)
    assert r.status_code == 200
    row = next(x for x in r.json()["data"] if case_id in x["title"])
    assert row["retention_start"] == "2016-04-01" and row["retention_end"] == "2021-03-31"
    assert "廃棄済 2件" in row["remarks"]
    r = client.get(f"{BASE}/register?format=csv&fiscal_year=2020", headers=officer)
    assert r.content.startswith(b"\xef\xbb\xbf")
    header = next(csv.reader(io.StringIO(r.content.decode("utf-8-sig"))))
    assert header[0] == "作成・取得年度" and header[-1] == "備考"
    r = client.get(f"{BASE}/register?format=xlsx", headers=officer)
    ws = load_workbook(io.BytesIO(r.content)).active
    assert ws["A1"].value == "作成・取得年度" and ws["B1"].value == "分類"
    assert client.get(f"{BASE}/register?organization=NOPE", headers=officer).status_code == 404


def test_extension_api_and_register_shows_cumulative_period(client, demo, ctx):
    officer = demo.auth("suzuki")
    case_id, (d1, _d2) = make_case(ctx, closed=CLOSED_2015)
    r = client.post(
        f"{BASE}/extensions",
        json={"scope": "case", "ref": case_id, "years": 3, "reason": "監査対応"},
        headers=officer,
    )
    assert r.status_code == 201 and r.json()["documents_rescheduled"] == 2
    assert (
        client.get(f"/api/v1/documents/{d1}", headers=officer).json()["retention_end"]
        == "2024-03-31"
    )
    r = client.post(
        f"{BASE}/extensions",
        json={"scope": "case", "ref": case_id, "years": 0, "reason": "x"},
        headers=officer,
    )
    assert r.status_code == 422
    r = client.get(f"{BASE}/register?format=csv", headers=officer)
    rows = list(csv.DictReader(io.StringIO(r.content.decode("utf-8-sig"))))
    row = next(x for x in rows if case_id in x["名称"])
    assert row["保存期間"] == "8年（延長3年を含む）" and row["保存期間満了日"] == "2024-03-31"
    assert "延長3年（監査対応）" in row["備考"]
