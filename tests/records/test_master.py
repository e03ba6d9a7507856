from __future__ import annotations

import pytest
from genpon.core.errors import InvalidInput
from genpon.records import master
from genpon.records.access import SYSTEM_ACTOR
from genpon.records.models import DocumentClass, Organization, ServiceGrant, User
from sqlmodel import Session, select

ORGS = "code,name,parent_code\nKA,財政課,BU\nBU,総務部,\n"


def test_organizations_bom_any_order_and_idempotent(ctx):
    data = ("\ufeff" + ORGS).encode()
    with Session(ctx.engine) as s:
        r = master.import_csv(s, SYSTEM_ACTOR, "organizations", data)
        s.commit()
        assert (r.created, r.updated, r.unchanged) == (2, 0, 0)
        ka = s.exec(select(Organization).where(Organization.code == "KA")).one()
        bu = s.exec(select(Organization).where(Organization.code == "BU")).one()
        assert ka.parent_id == bu.id and ka.name == "財政課"
        r2 = master.import_csv(s, SYSTEM_ACTOR, "organizations", data)
        s.commit()
        assert (r2.created, r2.updated, r2.unchanged) == (0, 0, 2)
        r3 = master.import_csv(
            s, SYSTEM_ACTOR, "organizations", "code,name,parent_code\nKA,財政課（改）,BU\n".encode()
        )
        s.commit()
        assert (r3.created, r3.updated) == (0, 1)
        assert (
            s.exec(select(Organization).where(Organization.code == "KA")).one().name
            == "財政課（改）"
        )


def test_bad_rows_have_line_numbers_and_nothing_is_written(ctx):
    bad = "code,name,parent_code\nOK1,良い行,\n,名前のみ,\nDUP,重複,\nDUP,重複2,\nX,子,NOPE\n".encode()
    with Session(ctx.engine) as s:
        with pytest.raises(InvalidInput) as exc:
            master.import_csv(s, SYSTEM_ACTOR, "organizations", bad)
        s.rollback()
        rows = {e["row"] for e in exc.value.details["errors"]}
        assert {3, 5, 6} <= rows and 2 not in rows
        assert exc.value.code == "csv_invalid"
        assert s.exec(select(Organization)).all() == []


def test_parent_cycle_rejected(ctx):
    with Session(ctx.engine) as s, pytest.raises(InvalidInput):
        master.import_csv(
            s, SYSTEM_ACTOR, "organizations", b"code,name,parent_code\nA,a,B\nB,b,A\n"
        )


def test_encoding_and_columns(ctx):
    with Session(ctx.engine) as s:
        with pytest.raises(InvalidInput) as e1:
            master.import_csv(s, SYSTEM_ACTOR, "organizations", "code,name\nA,総務".encode("cp932"))
        assert e1.value.code == "csv_encoding"
        with pytest.raises(InvalidInput) as e2:
            master.import_csv(s, SYSTEM_ACTOR, "organizations", b"code\nA\n")
        assert e2.value.code == "csv_missing_columns"
        with pytest.raises(InvalidInput) as e3:
            master.import_csv(s, SYSTEM_ACTOR, "nope", b"")
        assert e3.value.code == "unknown_master_kind"


def test_classes_and_users(ctx):
    with Session(ctx.engine) as s:
        master.import_csv(s, SYSTEM_ACTOR, "organizations", ORGS.encode())
        r = master.import_csv(
            s,
            SYSTEM_ACTOR,
            "document_classes",
            (
                "code,name,parent_code,retention,disposition\n"
                "C1,小分類,M1,1年未満,廃棄\nL1,大分類,,30,移管\nM1,中分類,L1,永年,移管\n"
            ).encode("utf-8-sig"),
        )
        assert r.created == 3
        c1 = s.exec(select(DocumentClass).where(DocumentClass.code == "C1")).one()
        assert (c1.level, c1.retention, c1.disposition) == (3, "lt1", "destroy")
        with pytest.raises(InvalidInput) as e:
            master.import_csv(
                s,
                SYSTEM_ACTOR,
                "document_classes",
                "code,name,retention,disposition\nZ,z,7,廃棄\nY,y,5,捨てる\n".encode(),
            )
        assert [x["row"] for x in e.value.details["errors"]] == [2, 3]
        r = master.import_csv(
            s,
            SYSTEM_ACTOR,
            "users",
            (
                "login,name,organization_code,roles,kind,grants\n"
                "taro,太郎,KA,staff records_officer,person,\nsys1,外部システム,BU,,service,KA\n"
            ).encode(),
        )
        assert r.created == 2
        taro = s.exec(select(User).where(User.login == "taro")).one()
        assert taro.roles == ["staff", "records_officer"]
        sys1 = s.exec(select(User).where(User.login == "sys1")).one()
        assert len(s.exec(select(ServiceGrant).where(ServiceGrant.user_id == sys1.id)).all()) == 1
        with pytest.raises(InvalidInput) as e:
            master.import_csv(
                s,
                SYSTEM_ACTOR,
                "users",
                b"login,name,organization_code,roles\nbad user,x,KA,staff\nok,y,NOORG,staff\nz,z,KA,wizard\n",
            )
        assert [x["row"] for x in e.value.details["errors"]] == [2, 3, 4]


def test_import_endpoint_and_reads(client, demo):
    admin = demo.auth("admin")
    r = client.post(
        "/api/v1/masters/organizations/import",
        content="code,name,parent_code\nNEW,新設課,SOUMU\n".encode(),
        headers={**admin, "Content-Type": "text/csv"},
    )
    assert r.status_code == 200 and r.json()["created"] == 1
    r = client.post(
        "/api/v1/masters/organizations/import",
        content=b"code,name\n,\xe3\n",
        headers={**admin, "Content-Type": "text/csv"},
    )
    assert r.status_code == 422 and r.json()["error"]["code"] in ("csv_invalid", "csv_encoding")
    r = client.post(
        "/api/v1/masters/organizations/import",
        content=b"code,name\nA,b\n",
        headers=demo.auth("tanaka"),
    )
    assert r.status_code == 403 and r.json()["error"]["code"] == "role_required"
    assert client.get("/api/v1/organizations/NEW", headers=admin).json()["parent_code"] == "SOUMU"
    assert client.get("/api/v1/document-classes/B0101", headers=admin).json()["retention"] == "10"
    assert client.get("/api/v1/organizations/ZZZ", headers=admin).status_code == 404
    assert client.get("/api/v1/organizations").status_code == 401
