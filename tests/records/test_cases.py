from __future__ import annotations

import threading
from datetime import UTC, date, datetime

from genpon.records import cases
from genpon.records.access import SYSTEM_ACTOR
from genpon.records.models import Case, Folder
from sqlmodel import Session, select

from tests.conftest import BOTH_DBS
from tests.records.helpers import new_case


def test_issued_id_uses_fiscal_year_and_org(client, demo, ctx):
    body = client.post(
        "/api/v1/cases",
        json={
            "title": "予算",
            "organization_code": "SOUMU-ZAISEI",
            "class_code": "B0101",
            "opened_on": "2027-03-31",
        },
        headers=demo.auth("tanaka"),
    ).json()
    assert body["case_id"] == "2026-SOUMU-ZAISEI-00001"
    body = client.post(
        "/api/v1/cases",
        json={
            "title": "予算",
            "organization_code": "SOUMU-ZAISEI",
            "class_code": "B0101",
            "opened_on": "2027-04-01",
        },
        headers=demo.auth("tanaka"),
    ).json()
    assert body["case_id"] == "2027-SOUMU-ZAISEI-00001" and body["fiscal_year"] == 2027
    assert body["members"] == ["tanaka"]
    with Session(ctx.engine) as s:
        folder = s.get(Folder, body["folder_id"])
        assert folder.kind == "case" and folder.name == body["case_id"]


def test_configurable_format(ctx, demo):
    with Session(ctx.engine) as s:
        c, _ = cases.create_case(
            s,
            SYSTEM_ACTOR,
            title="t",
            organization_code="SHIMIN-SHIMIN",
            class_code="C0101",
            case_id_format="R{fy}/{org}/{seq:03d}".replace("/", "-"),
            timezone="Asia/Tokyo",
            opened_on=date(2026, 4, 1),
        )
        assert c.case_id == "R2026-SHIMIN-SHIMIN-001"


@BOTH_DBS
def test_concurrent_issue_never_shares_a_number(ctx, demo):
    ids: list[str] = []
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            for _ in range(5):
                with Session(ctx.engine) as s:
                    c, _ = cases.create_case(
                        s,
                        SYSTEM_ACTOR,
                        title="並行",
                        organization_code="SOUMU-ZAISEI",
                        class_code="B0101",
                        case_id_format=ctx.settings.case_id_format,
                        timezone="Asia/Tokyo",
                        opened_on=date(2026, 5, 1),
                    )
                    s.commit()
                    ids.append(c.case_id)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(ids) == 30 and len(set(ids)) == 30
    assert sorted(int(i.rsplit("-", 1)[1]) for i in ids) == list(range(1, 31))


def test_register_external_is_idempotent(client, demo):
    auth = demo.auth("denshi-kessai")
    body = {"title": "工事請負契約", "organization_code": "KENSETSU-DOURO", "class_code": "B0201"}
    r1 = client.put("/api/v1/cases/EXT-2026-0042", json=body, headers=auth)
    assert r1.status_code == 201 and r1.json()["issuer"] == "denshi-kessai"
    r2 = client.put("/api/v1/cases/EXT-2026-0042", json=body, headers=auth)
    assert r2.status_code == 200 and r2.json()["folder_id"] == r1.json()["folder_id"]
    r3 = client.put("/api/v1/cases/bad id!", json=body, headers=auth)
    assert r3.status_code == 422 and r3.json()["error"]["code"] == "invalid_case_id"
    r4 = client.put("/api/v1/cases/EXT-1", json={**body, "class_code": "NOPE"}, headers=auth)
    assert r4.status_code == 404 and r4.json()["error"]["code"] == "document_class_not_found"


def test_timeline_and_close_reopen(client, demo, ctx):
    auth = demo.auth("tanaka")
    case = new_case(client, auth)
    from tests.records.helpers import deposit

    d = deposit(
        client,
        auth,
        "予算要求書".encode(),
        case_id=case["case_id"],
        approval={"approved_on": "2026-07-10", "approvers": ["課長"]},
    )
    assert d.status_code == 201
    r = client.post(f"/api/v1/cases/{case['case_id']}/close", headers=auth)
    assert r.status_code == 200 and r.json()["status"] == "closed"
    doc = client.get(f"/api/v1/documents/{d.json()['id']}", headers=auth).json()
    assert doc["retention_start"] is not None
    assert (
        client.post(f"/api/v1/cases/{case['case_id']}/close", headers=auth).json()["error"]["code"]
        == "case_already_closed"
    )
    client.post(f"/api/v1/cases/{case['case_id']}/reopen", headers=auth)
    doc = client.get(f"/api/v1/documents/{d.json()['id']}", headers=auth).json()
    assert doc["retention_start"] is None
    actions = [
        e["action"]
        for e in client.get(f"/api/v1/cases/{case['case_id']}/timeline", headers=auth).json()[
            "data"
        ]
    ]
    assert actions[:1] == ["case.created"]
    for a in ("document.deposited", "document.approved", "case.closed", "case.reopened"):
        assert a in actions


def test_closing_time_zone(ctx, demo):
    with Session(ctx.engine) as s:
        c, _ = cases.create_case(
            s,
            SYSTEM_ACTOR,
            title="t",
            organization_code="SOUMU-ZAISEI",
            class_code="B0101",
            case_id_format=ctx.settings.case_id_format,
            timezone="Asia/Tokyo",
        )
        # 2027-03-31 23:30 JST = 14:30 UTC: still fiscal year 2026
        cases.close_case(
            s,
            SYSTEM_ACTOR,
            c.case_id,
            timezone="Asia/Tokyo",
            closed_at=datetime(2027, 3, 31, 14, 30, tzinfo=UTC),
        )
        s.commit()
        assert s.exec(select(Case).where(Case.id == c.id)).one().status == "closed"
