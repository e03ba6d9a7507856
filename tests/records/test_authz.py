"""Authorization matrix for issue #2 point 12 (checked in the service layer, seen through the API)."""

from __future__ import annotations

import pytest
from genpon.records import master
from genpon.records.access import SYSTEM_ACTOR
from genpon.records.models import Folder
from sqlmodel import Session, select

from tests.records.helpers import deposit, new_case, snapshot

SVC_CSV = "login,name,organization_code,roles,kind,grants\nroad-sys,道路台帳システム,KENSETSU-DOURO,,service,KENSETSU-DOURO\n"


@pytest.fixture
def world(client, demo, ctx):
    with Session(ctx.engine) as s:
        master.import_csv(s, SYSTEM_ACTOR, "users", SVC_CSV.encode())
        s.commit()
    r = client.post("/api/v1/users/road-sys/keys", json={"label": "t"}, headers=demo.auth("admin"))
    demo.keys["road-sys"] = r.json()["api_key"]
    zaisei_case = new_case(
        client, demo.auth("tanaka"), org="SOUMU-ZAISEI", cls="B0101", title="財政の案件"
    )
    douro_case = new_case(
        client, demo.auth("ito"), org="KENSETSU-DOURO", cls="D0102", title="道路占用"
    )
    with Session(ctx.engine) as s:
        by_name = {f.name: f.id for f in s.exec(select(Folder)).all()}
    return {
        "team_zaisei": by_name["財政課チーム"],
        "team_douro": by_name["道路課チーム"],
        "shared_soumu": by_name["総務部共用"],
        "shared_city": by_name["全庁共用"],
        "case_zaisei": zaisei_case["folder_id"],
        "case_douro": douro_case["folder_id"],
        "douro_case_id": douro_case["case_id"],
    }


# (user, folder) -> "rw" | "r" | "-"   ("-" = not even visible: 404)
MATRIX = {
    "tanaka": {
        "team_zaisei": "rw",
        "team_douro": "-",
        "shared_soumu": "rw",
        "shared_city": "rw",
        "case_zaisei": "rw",
        "case_douro": "-",
    },
    "ito": {
        "team_zaisei": "-",
        "team_douro": "rw",
        "shared_soumu": "-",
        "shared_city": "rw",
        "case_zaisei": "-",
        "case_douro": "rw",
    },
    "suzuki": {
        "team_zaisei": "r",
        "team_douro": "r",
        "shared_soumu": "rw",
        "shared_city": "rw",
        "case_zaisei": "r",
        "case_douro": "r",
    },
    "yamada": {
        "team_zaisei": "r",
        "team_douro": "r",
        "shared_soumu": "r",
        "shared_city": "r",
        "case_zaisei": "r",
        "case_douro": "r",
    },
    "road-sys": {
        "team_zaisei": "-",
        "team_douro": "-",
        "shared_soumu": "-",
        "shared_city": "-",
        "case_zaisei": "-",
        "case_douro": "rw",
    },
    "admin": {
        "team_zaisei": "rw",
        "team_douro": "rw",
        "shared_soumu": "rw",
        "shared_city": "rw",
        "case_zaisei": "rw",
        "case_douro": "rw",
    },
}


@pytest.mark.parametrize("user", sorted(MATRIX))
def test_matrix(client, demo, ctx, world, user):
    auth = demo.auth(user)
    for folder, expected in MATRIX[user].items():
        fid = world[folder]
        r = client.get(f"/api/v1/folders/{fid}", headers=auth)
        assert r.status_code == (404 if expected == "-" else 200), (user, folder, r.text)
        before = snapshot(ctx)
        w = deposit(client, auth, f"{user}-{folder}".encode(), folder_id=fid)
        if expected == "rw":
            assert w.status_code == 201, (user, folder, w.text)
        else:
            assert w.status_code == (404 if expected == "-" else 403), (user, folder, w.text)
            assert w.json()["error"]["code"] in ("folder_not_found", "folder_write_forbidden")
            assert snapshot(ctx) == before
    listed = client.get("/api/v1/folders?limit=500", headers=auth).json()
    visible = {world[f] for f, e in MATRIX[user].items() if e != "-"}
    assert visible <= {f["id"] for f in listed["data"]}
    hidden = {world[f] for f, e in MATRIX[user].items() if e == "-"}
    assert not hidden & {f["id"] for f in listed["data"]}


def test_case_membership_grants_access(client, demo, world):
    r = client.post(
        f"/api/v1/cases/{world['douro_case_id']}/members",
        json={"logins": ["tanaka"]},
        headers=demo.auth("ito"),
    )
    assert r.status_code == 200
    assert (
        client.get(
            f"/api/v1/folders/{world['case_douro']}", headers=demo.auth("tanaka")
        ).status_code
        == 200
    )


def test_documents_of_hidden_folders_are_not_found(client, demo, world):
    doc = deposit(
        client, demo.auth("ito"), "道路の秘密".encode(), folder_id=world["team_douro"]
    ).json()
    r = client.get(f"/api/v1/documents/{doc['id']}", headers=demo.auth("tanaka"))
    assert r.status_code == 404 and r.json()["error"]["code"] == "document_not_found"
    assert (
        client.get(
            f"/api/v1/documents/{doc['id']}/content", headers=demo.auth("tanaka")
        ).status_code
        == 404
    )
    assert (
        client.get(f"/api/v1/originals/{doc['sha256']}", headers=demo.auth("tanaka")).status_code
        == 404
    )
    # a copy in tanaka's folder shows the original exists, but not which one or where
    mine = deposit(
        client, demo.auth("tanaka"), "道路の秘密".encode(), folder_id=world["team_zaisei"]
    ).json()
    assert mine["original"] == {
        "id": None,
        "visible": False,
        "folder_path": None,
        "title": None,
    }
    held = client.get(f"/api/v1/originals/{doc['sha256']}", headers=demo.auth("tanaka")).json()
    assert [d["id"] for d in held["documents"]] == [mine["id"]]


def test_keys_are_stored_hashed_and_revocable(client, demo, ctx):
    from genpon.records.models import ApiKey

    key = demo.keys["tanaka"]
    with Session(ctx.engine) as s:
        rows = s.exec(select(ApiKey)).all()
        assert all(key.split("_", 2)[2] not in (r.secret_hash + r.prefix) for r in rows)
    prefix = key.split("_")[1]
    assert client.delete(f"/api/v1/keys/{prefix}", headers=demo.auth("ito")).status_code == 403
    assert client.delete(f"/api/v1/keys/{prefix}", headers=demo.auth("tanaka")).status_code == 200
    assert client.get("/api/v1/me", headers=demo.auth("tanaka")).status_code == 401
