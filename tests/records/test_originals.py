from __future__ import annotations

from tests.records.helpers import deposit, new_case, team_folder

APPROVAL = {"approved_on": "2026-07-15", "approvers": ["財政課長", "総務部長"]}


def test_official_content_never_changes(client, demo, ctx):
    auth = demo.auth("tanaka")
    case = new_case(client, auth)
    doc = deposit(client, auth, b"v1", case_id=case["case_id"]).json()
    assert doc["status"] == "working"
    v = client.post(
        f"/api/v1/documents/{doc['id']}/versions", files={"file": ("a.txt", b"v2")}, headers=auth
    )
    assert v.status_code == 201 and v.json()["version"] == 2
    versions = client.get(f"/api/v1/documents/{doc['id']}/versions", headers=auth).json()["data"]
    assert [x["version"] for x in versions] == [1, 2]
    a = client.post(f"/api/v1/documents/{doc['id']}/approve", json=APPROVAL, headers=auth)
    assert a.status_code == 200 and a.json()["status"] == "official"
    assert a.json()["approval"]["approvers"] == APPROVAL["approvers"]
    v3 = client.post(
        f"/api/v1/documents/{doc['id']}/versions", files={"file": ("a.txt", b"v3")}, headers=auth
    )
    assert v3.status_code == 409 and v3.json()["error"]["code"] == "document_official_immutable"
    assert (
        client.post(
            f"/api/v1/documents/{doc['id']}/approve", json=APPROVAL, headers=auth
        ).status_code
        == 409
    )
    c = client.post(
        f"/api/v1/documents/{doc['id']}/corrections",
        files={"file": ("訂正.txt", b"v3 fixed")},
        headers=auth,
    )
    assert c.status_code == 201 and c.json()["supersedes_id"] == doc["id"]
    again = client.get(f"/api/v1/documents/{doc['id']}", headers=auth).json()
    assert again["version"] == 2 and again["sha256"] == v.json()["sha256"]


def test_official_deposit_takes_over_originality(client, demo, ctx):
    auth = demo.auth("tanaka")
    working = deposit(client, auth, "同じ内容".encode(), folder_id=team_folder(ctx)).json()
    case = new_case(client, auth)
    official = deposit(
        client,
        demo.auth("denshi-kessai"),
        "同じ内容".encode(),
        case_id=case["case_id"],
        approval={**APPROVAL, "external_system": "denshi-kessai", "external_id": "K-1"},
    ).json()
    assert official["is_original"] and official["status"] == "official"
    w = client.get(f"/api/v1/documents/{working['id']}", headers=auth).json()
    assert not w["is_original"] and w["original"]["id"] == official["id"]


def test_copy_into_folder_and_version_hands_over_original(client, demo, ctx):
    auth = demo.auth("tanaka")
    doc = deposit(client, auth, b"shared content", folder_id=team_folder(ctx)).json()
    case = new_case(client, auth)
    cp = client.post(
        f"/api/v1/documents/{doc['id']}/copies", json={"folder_id": case["folder_id"]}, headers=auth
    )
    assert cp.status_code == 201 and cp.json()["original"]["id"] == doc["id"]
    timeline = client.get(f"/api/v1/cases/{case['case_id']}/timeline", headers=auth).json()["data"]
    assert "document.copied" in [e["action"] for e in timeline]
    # a new version of the original: the copy becomes the original of the old content
    client.post(
        f"/api/v1/documents/{doc['id']}/versions",
        files={"file": ("a.txt", b"new content")},
        headers=auth,
    )
    held = client.get(f"/api/v1/originals/{doc['sha256']}", headers=auth).json()
    assert held["original"]["id"] == cp.json()["id"]


def test_idempotent_system_deposit(client, demo, ctx):
    svc = demo.auth("denshi-kessai")
    case = client.put(
        "/api/v1/cases/KESSAI-9",
        json={"title": "決裁", "organization_code": "SOUMU-ZAISEI", "class_code": "B0102"},
        headers=svc,
    ).json()
    appr = {**APPROVAL, "external_system": "denshi-kessai", "external_id": "D-100"}
    r1 = deposit(client, svc, b"final", case_id=case["case_id"], approval=appr)
    r2 = deposit(client, svc, b"final", case_id=case["case_id"], approval=appr)
    assert (r1.status_code, r2.status_code) == (201, 200) and r1.json()["id"] == r2.json()["id"]
    r3 = deposit(client, svc, b"different", case_id=case["case_id"], approval=appr)
    assert r3.status_code == 409 and r3.json()["error"]["code"] == "external_id_conflict"
    k1 = deposit(client, svc, b"other", case_id=case["case_id"], headers={"Idempotency-Key": "abc"})
    k2 = deposit(client, svc, b"other", case_id=case["case_id"], headers={"Idempotency-Key": "abc"})
    assert (k1.status_code, k2.status_code) == (201, 200) and k1.json()["id"] == k2.json()["id"]
    k3 = deposit(
        client, svc, b"changed", case_id=case["case_id"], headers={"Idempotency-Key": "abc"}
    )
    assert k3.status_code == 409 and k3.json()["error"]["code"] == "idempotency_key_reused"
