from __future__ import annotations

import hashlib

import pytest

from tests.records.helpers import deposit, new_case, snapshot, team_folder

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


def test_deposit_into_case_then_same_content_is_a_copy(client, demo, ctx):
    auth = demo.auth("tanaka")
    case = new_case(client, auth)
    r = deposit(
        client,
        auth,
        PDF,
        filename="C:\\Users\\tanaka\\予算要求書.pdf",
        case_id=case["case_id"],
        content_type="application/pdf",
    )
    assert r.status_code == 201, r.text
    doc = r.json()
    assert (
        doc["is_original"] and doc["filename"] == "予算要求書.pdf" and doc["title"] == "予算要求書"
    )
    assert doc["sha256"] == hashlib.sha256(PDF).hexdigest() and doc["size"] == len(PDF)
    assert doc["mime_type"] == "application/pdf" and doc["folder_kind"] == "case"
    assert doc["document_class_id"] is not None  # class comes from the case: nothing entered twice
    r2 = deposit(client, auth, PDF, filename="コピー.pdf", folder_id=team_folder(ctx))
    assert r2.status_code == 201
    copy = r2.json()
    assert not copy["is_original"] and copy["original"]["id"] == doc["id"]
    assert copy["deposit"]["is_copy"] and not copy["deposit"]["blob_stored"]
    assert "写し" in copy["deposit"]["message"]
    assert len(list(ctx.store.iter_blobs())) == 1
    held = client.get(f"/api/v1/originals/{doc['sha256']}", headers=auth).json()
    assert held["original"]["id"] == doc["id"]
    assert {d["id"] for d in held["documents"]} == {doc["id"], copy["id"]}
    paths = {d["id"]: d["folder_path"] for d in held["documents"]}
    assert paths[copy["id"]] == "/財政課チーム"


def test_declared_type_is_recorded_not_trusted(client, demo, ctx):
    auth = demo.auth("tanaka")
    r = deposit(
        client, auth, PDF, filename="x.txt", folder_id=team_folder(ctx), content_type="text/plain"
    )
    assert r.status_code == 201 and r.json()["mime_type"] == "application/pdf"
    assert r.json()["declared_type"] == "text/plain"
    tl = client.get(f"/api/v1/documents/{r.json()['id']}", headers=auth).json()
    assert tl["mime_type"] == "application/pdf"


@pytest.mark.parametrize(
    ("first", "encoding"),
    [
        *(("公", "cp932"), ("経", "cp932"), ("県", "cp932"), ("見", "cp932"), ("ｸ", "cp932")),
        *(("原", "euc_jp"), ("現", "euc_jp"), ("個", "euc_jp")),
    ],
)
def test_japanese_text_is_not_a_dos_program(client, demo, ctx, first, encoding):
    """libmagic guesses a DOS .COM program from a first byte 0x8c or 0xb8 — Shift_JIS for 公, 経,
    県, 見 or ｸ, EUC-JP for 原, 現 or 個 — and the default allowed types refuse executables."""
    body = f"{first}文書の保存期間について\n各課で協議します。\n".encode(encoding)
    r = deposit(
        client, demo.auth("tanaka"), body, filename="旧文書.txt", folder_id=team_folder(ctx)
    )
    assert r.status_code == 201, r.text
    assert r.json()["mime_type"] == "text/plain"
    # a real .COM-like binary (control bytes) is still an executable, and still refused
    com = b"\x8c\xc8\x8e\xd8\xb4\x09\xba\x0c\x01\xcd\x21\xb4\x4c\xcd\x21"
    r = deposit(client, demo.auth("tanaka"), com, filename="x.com", folder_id=team_folder(ctx))
    assert r.status_code == 415 and r.json()["error"]["code"] == "type_not_allowed"


def test_json_lines_from_another_system_is_taken_and_searchable(client, demo, ctx):
    from genpon.search.indexer import drain

    from tests.search.helpers import ids, search

    auth = demo.auth("tanaka")
    body = '{"id": 1, "件名": "道路占用許可"}\n{"id": 2, "件名": "議事録"}\n'.encode()
    r = deposit(client, auth, body, filename="export.jsonl", folder_id=team_folder(ctx))
    assert r.status_code == 201, r.text
    assert r.json()["mime_type"] == "application/x-ndjson"
    drain(ctx)
    assert ids(search(client, auth, "道路占用許可")) == {r.json()["id"]}


def test_nfc_filename(client, demo, ctx):
    nfd = "\u30cf\u3099\u30b9.txt"  # バス in NFD
    r = deposit(client, demo.auth("tanaka"), b"bus", filename=nfd, folder_id=team_folder(ctx))
    assert r.json()["filename"] == "\u30d0\u30b9.txt"


BAD_INPUTS = [
    ("missing_case", dict(case_id="NO-SUCH-CASE"), b"x", 404, "case_not_found"),
    ("missing_target", dict(), b"x", 422, "folder_required"),
    ("empty_file", dict(team=True), b"", 422, "empty_file"),
    ("bad_approval_json", dict(team=True, approval_raw="{not json"), b"x", 422, "invalid_json"),
    (
        "approval_bad_date",
        dict(case=True, approval_raw='{"approved_on":"2026/7/1"}'),
        b"x",
        422,
        "invalid_approval",
    ),
    ("wrong_type", dict(team=True), b"\x7fELF\x02\x01\x01" + b"\0" * 64, 415, "type_not_allowed"),
    ("folder_id_not_int", dict(folder_raw="abc"), b"x", 422, "invalid_field"),
    ("oversize", dict(team=True), b"y" * 5000, 413, "file_too_large"),
]


@pytest.mark.parametrize(
    ("name", "opts", "content", "status", "code"), BAD_INPUTS, ids=[b[0] for b in BAD_INPUTS]
)
def test_bad_inputs_change_nothing(client, demo, ctx, name, opts, content, status, code):
    auth = demo.auth("tanaka")
    ctx.settings.max_upload_bytes = 4096
    ctx.settings.allowed_types = tuple(
        t for t in ctx.settings.allowed_types if t != "application/octet-stream"
    )
    case = new_case(client, auth)
    before = snapshot(ctx)
    fields: dict[str, str] = {}
    if opts.get("team"):
        fields["folder_id"] = str(team_folder(ctx))
    if opts.get("case"):
        fields["case_id"] = case["case_id"]
    if "case_id" in opts:
        fields["case_id"] = opts["case_id"]
    if "folder_raw" in opts:
        fields["folder_id"] = opts["folder_raw"]
    if "approval_raw" in opts:
        fields["approval"] = opts["approval_raw"]
    r = client.post(
        "/api/v1/documents",
        files={"file": ("f.bin", content, "application/octet-stream")},
        data=fields,
        headers=auth,
    )
    assert r.status_code == status, r.text
    body = r.json()
    assert body["error"]["code"] == code and body["error"]["message"]
    assert snapshot(ctx) == before


def test_not_multipart_and_unauthenticated(client, demo, ctx):
    before = snapshot(ctx)
    r = client.post(
        "/api/v1/documents",
        content=b"raw",
        headers={**demo.auth("tanaka"), "Content-Type": "text/plain"},
    )
    assert r.status_code == 422 and r.json()["error"]["code"] == "multipart_required"
    r = client.post("/api/v1/documents", files={"file": ("a.txt", b"a")})
    assert r.status_code == 401 and r.json()["error"]["code"] == "authentication_required"
    r = client.post(
        "/api/v1/documents",
        files={"file": ("a.txt", b"a")},
        headers={"Authorization": "Bearer gp_x_y"},
    )
    assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_api_key"
    r = client.post(
        "/api/v1/cases",
        content=b"{bad",
        headers={**demo.auth("tanaka"), "Content-Type": "application/json"},
    )
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_json"
    r = client.post(
        "/api/v1/cases",
        json={"title": "x", "organization_code": "SOUMU-ZAISEI", "class_code": "ZZ"},
        headers=demo.auth("tanaka"),
    )
    assert r.status_code == 404 and r.json()["error"]["code"] == "document_class_not_found"
    assert snapshot(ctx) == before


def test_the_key_is_checked_before_the_body(client, demo, ctx):
    """The deposit authenticates in its first worker call, not before the body is read:
    whatever is wrong with the request, a caller without a valid key learns only that (401),
    and no byte of a large body reaches the staging directory."""
    before = snapshot(ctx)
    revoked = client.post(
        "/api/v1/users/tanaka/keys", json={"label": "short-lived"}, headers=demo.auth("admin")
    ).json()
    key = {"Authorization": f"Bearer {revoked['api_key']}"}
    assert deposit(client, key, b"with the new key", folder_id=team_folder(ctx)).status_code == 201
    r = client.delete(f"/api/v1/keys/{revoked['prefix']}", headers=demo.auth("admin"))
    assert r.status_code in (200, 204), r.text
    r = deposit(client, key, b"after the revocation", folder_id=team_folder(ctx))
    assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_api_key"
    # (five failures from this client: the throttle's threshold, so each is still a 401)
    bad = {"Authorization": "Bearer gp_x_y"}
    requests = [
        {"content": b"raw", "headers": {**bad, "Content-Type": "text/plain"}},
        {
            "content": b"x",
            "headers": {**bad, "Content-Type": "multipart/form-data", "Content-Length": "1"},
        },
        {
            "content": b"--b\r\nnot a part",
            "headers": {**bad, "Content-Type": "multipart/form-data; boundary=b"},
        },
        {"files": {"file": ("a.txt", b"a"), "title": (None, "x" * 70_000)}},  # no key
        {"files": [("file", ("a.txt", b"a")), ("case_id", (None, "A")), ("case_id", (None, "B"))]},
        {"files": {"file": ("big.bin", b"\0" * (3 << 20))}, "headers": bad},
    ]
    for kwargs in requests:
        r = client.post("/api/v1/documents", **kwargs)  # type: ignore[arg-type]
        assert r.status_code == 401, r.text
    after = snapshot(ctx)
    assert after["rows"]["Document"] == before["rows"]["Document"] + 1
    assert after["staging"] == before["staging"] == []


def test_download_is_audited(client, demo, ctx):
    auth = demo.auth("tanaka")
    r = deposit(client, auth, "本文".encode(), folder_id=team_folder(ctx))
    doc_id = r.json()["id"]
    d = client.get(f"/api/v1/documents/{doc_id}/content", headers=auth)
    assert d.status_code == 200 and d.content == "本文".encode()
    assert d.headers["x-content-sha256"] == r.json()["sha256"]
    from genpon.records.models import AuditEvent
    from sqlmodel import Session, select

    with Session(ctx.engine) as s:
        reads = s.exec(select(AuditEvent).where(AuditEvent.action == "document.read")).all()
        assert [e.target_id for e in reads] == [str(doc_id)]
