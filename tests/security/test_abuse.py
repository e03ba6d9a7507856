"""Abuse suite for issue #15: each finding's repro, the expected refusal, and nothing changed.

"Nothing changed" is a snapshot of rows (documents, blobs, cases, folders, audit events, case
members), case titles and states, stored blobs and the staging area, taken before the request.
"""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from genpon.api.context import AppContext
from genpon.core.permissions import loose_permissions
from genpon.core.settings import Settings
from genpon.records import master
from genpon.records.access import SYSTEM_ACTOR
from genpon.records.models import AuditEvent, Case, CaseMember, Organization
from sqlalchemy import func
from sqlmodel import Session, select

from tests.conftest import BOTH_DBS
from tests.records.helpers import deposit, new_case, snapshot, team_folder

REPO = Path(__file__).resolve().parents[2]
APPROVAL = {"approved_on": "2026-07-10", "approvers": ["課長"]}
EXTERNAL_CASE = {"title": "x", "organization_code": "SOUMU-ZAISEI", "class_code": "B0101"}


def state(ctx: AppContext) -> dict[str, Any]:
    snap = snapshot(ctx)
    with Session(ctx.engine) as s:
        snap["rows"]["CaseMember"] = s.exec(select(func.count()).select_from(CaseMember)).one()
        snap["cases"] = sorted(
            (c.case_id, c.title, c.status, c.document_class_id) for c in s.exec(select(Case))
        )
    return snap


def refused(r: Any, status: int, code: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    body = r.json()["error"]
    assert body["code"] == code, body
    return body  # type: ignore[no-any-return]


# --- item 4: a repeated multipart part ---------------------------------------------------------


def test_repeated_file_part_is_refused(client, demo, ctx):
    """curl -F file=@a.txt -F file=@b.pdf: one document holding both files' bytes."""
    before = state(ctx)
    r = client.post(
        "/api/v1/documents",
        files=[
            ("file", ("a.txt", b"first file", "text/plain")),
            ("file", ("b.pdf", b"%PDF-1.4 second file", "application/pdf")),
        ],
        data={"folder_id": str(team_folder(ctx))},
        headers=demo.auth("tanaka"),
    )
    body = refused(r, 422, "duplicate_field")
    assert body["details"] == {"field": "file"} and "複数回" in body["message"]
    assert state(ctx) == before


@pytest.mark.parametrize(
    "field", ["folder_id", "case_id", "title", "doc_date", "approval"], ids=str
)
def test_repeated_form_field_is_refused(client, demo, ctx, field):
    """curl -F folder_id=2 -F folder_id=1: became folder 21. Any repeated field is refused."""
    folder = str(team_folder(ctx))
    values = {
        "folder_id": [folder, folder],
        "case_id": ["A", "B"],
        "title": ["題", "名"],
        "doc_date": ["2026-", "04-01"],
        "approval": [json.dumps(APPROVAL), json.dumps(APPROVAL)],
    }[field]
    data: dict[str, Any] = {"folder_id": folder, field: values}
    before = state(ctx)
    r = client.post(
        "/api/v1/documents",
        files={"file": ("a.txt", b"content", "text/plain")},
        data=data,
        headers=demo.auth("tanaka"),
    )
    assert refused(r, 422, "duplicate_field")["details"] == {"field": field}
    assert state(ctx) == before
    # the same request with each part once is accepted
    ok = client.post(
        "/api/v1/documents",
        files={"file": ("a.txt", b"content", "text/plain")},
        data={"folder_id": folder},
        headers=demo.auth("tanaka"),
    )
    assert ok.status_code == 201, ok.text


def test_repeated_part_on_new_version_is_refused(client, demo, ctx):
    auth = demo.auth("tanaka")
    doc = deposit(client, auth, b"v1", folder_id=team_folder(ctx)).json()
    before = state(ctx)
    r = client.post(
        f"/api/v1/documents/{doc['id']}/versions",
        files=[("file", ("a.txt", b"v2", "text/plain")), ("file", ("b.txt", b"v3", "text/plain"))],
        headers=auth,
    )
    refused(r, 422, "duplicate_field")
    assert state(ctx) == before


# --- item 1: blocking another organization's case creation ------------------------------------


def test_staff_cannot_register_issued_id_of_another_org(client, demo, ctx):
    """PUT /cases/2026-KENSETSU-DOURO-00002 by tanaka, then every POST /cases of ito gave 500."""
    before = state(ctx)
    r = client.put(
        "/api/v1/cases/2026-KENSETSU-DOURO-00002",
        json=EXTERNAL_CASE,
        headers=demo.auth("tanaka"),
    )
    refused(r, 403, "case_registration_forbidden")
    assert state(ctx) == before
    ids = [
        client.post(
            "/api/v1/cases",
            json={
                "title": "道路占用",
                "organization_code": "KENSETSU-DOURO",
                "class_code": "D0102",
                "opened_on": "2026-06-01",
            },
            headers=demo.auth("ito"),
        ).json()["case_id"]
        for _ in range(3)
    ]
    assert ids == [f"2026-KENSETSU-DOURO-0000{n}" for n in (1, 2, 3)]


def test_staff_cannot_register_any_external_id(client, demo, ctx):
    before = state(ctx)
    r = client.put("/api/v1/cases/EXT-1", json=EXTERNAL_CASE, headers=demo.auth("tanaka"))
    refused(r, 403, "case_registration_forbidden")
    assert "サービスアカウント" in r.json()["error"]["message"]
    assert state(ctx) == before


@pytest.mark.parametrize("login", ["denshi-kessai", "admin"])
def test_issued_shape_is_reserved_even_for_service_and_admin(client, demo, ctx, login):
    before = state(ctx)
    for case_id in ("2026-KENSETSU-DOURO-00002", "2031-SOUMU-ZAISEI-1"):
        r = client.put(
            f"/api/v1/cases/{case_id}",
            json={**EXTERNAL_CASE, "organization_code": "KENSETSU-DOURO"},
            headers=demo.auth(login),
        )
        refused(r, 422, "case_id_reserved")
    assert state(ctx) == before
    # an ID of another shape is the external system's to register
    r = client.put("/api/v1/cases/2026-0042-1", json=EXTERNAL_CASE, headers=demo.auth(login))
    assert r.status_code == 201, r.text


def test_service_registers_only_in_granted_orgs(client, demo, ctx):
    with Session(ctx.engine) as s:
        master.import_csv(
            s,
            SYSTEM_ACTOR,
            "users",
            b"login,name,organization_code,roles,kind,grants\n"
            b"road-sys,road,KENSETSU-DOURO,,service,KENSETSU-DOURO\n",
        )
        s.commit()
    key = client.post(
        "/api/v1/users/road-sys/keys", json={"label": "t"}, headers=demo.auth("admin")
    ).json()["api_key"]
    before = state(ctx)
    r = client.put(
        "/api/v1/cases/ROAD-1", json=EXTERNAL_CASE, headers={"Authorization": f"Bearer {key}"}
    )
    refused(r, 404, "organization_not_found")
    assert state(ctx) == before


def test_issued_case_may_be_confirmed_by_service(client, demo, ctx):
    """A Genpon-issued ID that exists is an idempotent PUT for the depositing system."""
    case = new_case(client, demo.auth("tanaka"))
    r = client.put(
        f"/api/v1/cases/{case['case_id']}",
        json={"title": case["title"], "organization_code": "SOUMU-ZAISEI", "class_code": "B0101"},
        headers=demo.auth("denshi-kessai"),
    )
    assert r.status_code == 200 and r.json()["folder_id"] == case["folder_id"]


def test_issuing_skips_taken_ids(client, demo, ctx):
    """IDs registered before the fix (or by hand) are skipped, never a 500."""
    with Session(ctx.engine) as s:
        org = s.exec(select(Organization).where(Organization.code == "KENSETSU-DOURO")).one()
        cls_id = s.exec(select(Case.document_class_id)).first()
        for seq in (1, 2, 4):
            s.add(
                Case(
                    case_id=f"2026-KENSETSU-DOURO-{seq:05d}",
                    title="先取り",
                    organization_id=org.id or 0,
                    document_class_id=cls_id or 1,
                    fiscal_year=2026,
                    opened_on=date(2026, 5, 1),
                    issuer="tanaka",
                )
            )
        s.commit()
    body = {
        "title": "道路占用",
        "organization_code": "KENSETSU-DOURO",
        "class_code": "D0102",
        "opened_on": "2026-06-01",
    }
    got = []
    for _ in range(3):
        r = client.post("/api/v1/cases", json=body, headers=demo.auth("ito"))
        assert r.status_code == 201, r.text
        got.append(r.json()["case_id"])
    assert got == [f"2026-KENSETSU-DOURO-0000{n}" for n in (3, 5, 6)]


# --- item 2: the depositing system granting access -------------------------------------------


@pytest.fixture
def douro_case(client, demo):
    return new_case(client, demo.auth("ito"), org="KENSETSU-DOURO", cls="D0102", title="道路")


def test_service_cannot_add_members(client, demo, ctx, douro_case):
    before = state(ctx)
    r = client.post(
        f"/api/v1/cases/{douro_case['case_id']}/members",
        json={"logins": ["tanaka"]},
        headers=demo.auth("denshi-kessai"),
    )
    body = refused(r, 403, "forbidden_for_service_account")
    assert "サービスアカウント" in body["message"]
    assert state(ctx) == before
    folder = client.get(f"/api/v1/folders/{douro_case['folder_id']}", headers=demo.auth("tanaka"))
    assert folder.status_code == 404


def test_service_cannot_close_or_reopen(client, demo, ctx, douro_case):
    svc = demo.auth("denshi-kessai")
    case_id = douro_case["case_id"]
    before = state(ctx)
    refused(
        client.post(f"/api/v1/cases/{case_id}/close", headers=svc),
        403,
        "forbidden_for_service_account",
    )
    assert state(ctx) == before
    assert (
        client.post(f"/api/v1/cases/{case_id}/close", headers=demo.auth("ito")).status_code == 200
    )
    before = state(ctx)
    refused(
        client.post(f"/api/v1/cases/{case_id}/reopen", headers=svc),
        403,
        "forbidden_for_service_account",
    )
    assert state(ctx) == before


def test_service_cannot_rename_or_add_members_through_register(client, demo, ctx, douro_case):
    svc = demo.auth("denshi-kessai")
    same = {"title": "道路", "organization_code": "KENSETSU-DOURO", "class_code": "D0102"}
    before = state(ctx)
    r = client.put(
        f"/api/v1/cases/{douro_case['case_id']}", json={**same, "title": "改名"}, headers=svc
    )
    refused(r, 403, "forbidden_for_service_account")
    r = client.put("/api/v1/cases/EXT-9", json={**same, "members": ["tanaka"]}, headers=svc)
    refused(r, 403, "forbidden_for_service_account")
    r = client.post("/api/v1/cases", json={**same, "members": ["tanaka"]}, headers=svc)
    refused(r, 403, "forbidden_for_service_account")
    assert state(ctx) == before
    # registering without members or changes still works
    assert (
        client.put(f"/api/v1/cases/{douro_case['case_id']}", json=same, headers=svc).status_code
        == 200
    )
    assert client.put("/api/v1/cases/EXT-9", json=same, headers=svc).status_code == 201


# --- item 3: claiming a system's external IDs -------------------------------------------------


def test_staff_cannot_claim_external_system(client, demo, ctx):
    auth = demo.auth("tanaka")
    case = new_case(client, auth)
    appr = {**APPROVAL, "external_system": "denshi-kessai", "external_id": "K-000124"}
    before = state(ctx)
    r = deposit(client, auth, b"forged", case_id=case["case_id"], approval=appr)
    body = refused(r, 403, "external_system_not_owned")
    assert body["details"] == {"external_system": "denshi-kessai"}
    assert state(ctx) == before
    # the real system's deposit then goes through
    real = deposit(
        client, demo.auth("denshi-kessai"), b"real", case_id=case["case_id"], approval=appr
    )
    assert real.status_code == 201, real.text


def test_staff_cannot_approve_under_external_system(client, demo, ctx):
    auth = demo.auth("tanaka")
    case = new_case(client, auth)
    doc = deposit(client, auth, b"working", case_id=case["case_id"]).json()
    before = state(ctx)
    r = client.post(
        f"/api/v1/documents/{doc['id']}/approve",
        json={**APPROVAL, "external_system": "denshi-kessai", "external_id": "K-1"},
        headers=auth,
    )
    refused(r, 403, "external_system_not_owned")
    assert state(ctx) == before


def test_other_service_cannot_claim_external_system(client, demo, ctx):
    with Session(ctx.engine) as s:
        master.import_csv(
            s,
            SYSTEM_ACTOR,
            "users",
            b"login,name,organization_code,roles,kind,grants\n"
            b"other-sys,other,SOUMU-ZAISEI,,service,SOUMU-ZAISEI\n",
        )
        s.commit()
    key = client.post(
        "/api/v1/users/other-sys/keys", json={"label": "t"}, headers=demo.auth("admin")
    ).json()["api_key"]
    case = new_case(client, demo.auth("tanaka"))
    before = state(ctx)
    r = deposit(
        client,
        {"Authorization": f"Bearer {key}"},
        b"forged",
        case_id=case["case_id"],
        approval={**APPROVAL, "external_system": "denshi-kessai", "external_id": "K-1"},
    )
    refused(r, 403, "external_system_not_owned")
    assert state(ctx) == before


def test_external_conflict_names_no_hidden_document(client, demo, ctx):
    """A conflict on an external ID names the other document only to whom may read it."""
    svc = demo.auth("denshi-kessai")
    douro = new_case(client, demo.auth("ito"), org="KENSETSU-DOURO", cls="D0102")
    appr = {**APPROVAL, "external_system": "denshi-kessai", "external_id": "K-7"}
    assert deposit(client, svc, b"one", case_id=douro["case_id"], approval=appr).status_code == 201
    with Session(ctx.engine) as s:  # the grant to 道路課 is withdrawn
        master.import_csv(
            s,
            SYSTEM_ACTOR,
            "users",
            b"login,name,organization_code,roles,kind,grants\n"
            b"denshi-kessai,x,SOUMU-SOUMU,,service,SOUMU-ZAISEI\n",
        )
        s.commit()
    zaisei = new_case(client, demo.auth("tanaka"))
    before = state(ctx)
    r = deposit(client, svc, b"two", case_id=zaisei["case_id"], approval=appr)
    body = refused(r, 409, "external_id_conflict")
    assert body["details"] == {"document_id": None}
    assert state(ctx) == before


# --- item 8: security headers ------------------------------------------------------------------


def test_security_headers_on_api_and_content(client, demo, ctx):
    auth = demo.auth("tanaka")
    health = client.get("/healthz")
    assert health.headers["x-content-type-options"] == "nosniff"
    assert health.headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in health.headers["content-security-policy"]
    anonymous = client.get("/api/v1/me")
    assert anonymous.status_code == 401 and anonymous.headers["x-frame-options"] == "DENY"
    assert "cache-control" not in anonymous.headers  # nothing private in it
    me = client.get("/api/v1/me", headers=auth)
    assert me.headers["cache-control"] == "no-store"
    assert me.headers["x-frame-options"] == "DENY"
    svg = b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'
    doc = deposit(
        client,
        auth,
        svg,
        filename="x.svg",
        content_type="image/svg+xml",
        folder_id=team_folder(ctx),
    ).json()
    got = client.get(f"/api/v1/documents/{doc['id']}/content", headers=auth)
    assert got.status_code == 200 and got.content == svg
    csp = got.headers["content-security-policy"]
    assert csp.startswith("sandbox; default-src 'none'")
    assert got.headers["x-content-type-options"] == "nosniff"
    assert got.headers["cache-control"] == "no-store"
    error = client.get("/api/v1/documents/999999", headers=auth)
    assert error.status_code == 404 and error.headers["x-frame-options"] == "DENY"


def test_web_pages_keep_their_policy(client):
    page = client.get("/login")
    assert page.status_code == 200
    csp = page.headers.get_list("content-security-policy")
    assert len(csp) == 1 and "script-src 'self'" in csp[0] and "frame-ancestors 'none'" in csp[0]
    assert page.headers.get_list("x-frame-options") == ["DENY"]
    assert page.headers.get_list("x-content-type-options") == ["nosniff"]


# --- item 9: secrets and file permissions ------------------------------------------------------


WEAK_SECRETS = {
    "one_char": lambda: "x",
    "placeholder": lambda: "dev-insecure-secret-change-me",
    "repeated": lambda: "a" * 64,
    "16_bytes": lambda: secrets.token_hex(16),
    "password": lambda: "Password1" * 4,
}
STRONG_SECRETS = {
    "urlsafe_32": lambda: secrets.token_urlsafe(32),
    "hex_32": lambda: secrets.token_hex(32),
}


@pytest.mark.parametrize("kind", sorted(WEAK_SECRETS))
def test_production_refuses_weak_secret(tmp_path, kind):
    secret = WEAK_SECRETS[kind]()
    with pytest.raises(ValueError, match="GENPON_SECRET_KEY"):
        Settings(environment="production", data_dir=tmp_path, secret_key=secret)
    Settings(environment="development", data_dir=tmp_path, secret_key=secret)  # dev is lax


@pytest.mark.parametrize("kind", sorted(STRONG_SECRETS))
def test_production_accepts_random_secret(tmp_path, kind):
    for _ in range(200):
        assert Settings(
            environment="production", data_dir=tmp_path, secret_key=STRONG_SECRETS[kind]()
        )


def _genpon(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    import os

    env = {**os.environ, "GENPON_DATA_DIR": str(tmp_path / "data"), "GENPON_ENVIRONMENT": "test"}
    env["GENPON_CLI_USER"] = "admin"  # commands without --as act as this person
    return subprocess.run(
        [sys.executable, "-m", "genpon.api.cli.main", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def test_everything_under_data_dir_is_private(tmp_path):
    p = _genpon(tmp_path, "init", "--demo")
    assert p.returncode == 0, p.stderr
    assert "警告" not in p.stderr
    f = tmp_path / "doc.txt"
    f.write_text("内容")
    p = _genpon(tmp_path, "deposit", str(f), "--folder", "1")
    assert p.returncode == 0, p.stderr
    data = tmp_path / "data"
    assert (data / "genpon.db").exists() and any((data / "blobs").rglob("*"))
    assert loose_permissions(data) == []
    blobs = [b for b in (data / "blobs").rglob("*") if b.is_file() and ".staging" not in b.parts]
    assert blobs and all(b.stat().st_mode & 0o777 == 0o400 for b in blobs)


def test_init_warns_about_loose_permissions(tmp_path):
    data = tmp_path / "data"
    data.mkdir(mode=0o755)
    data.chmod(0o755)
    p = _genpon(tmp_path, "init")
    assert p.returncode == 0, p.stderr
    assert "警告" in p.stderr and str(data) in p.stderr and "0755" in p.stderr
    assert "chmod -R go-rwx" in p.stderr


# --- item 5: sign-in throttling ----------------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _login(client: Any, token: str, login: str, password: str) -> Any:
    from tests.web.helpers import HTML

    return client.post(
        "/login",
        data={"csrf": token, "login": login, "password": password},
        headers=HTML,
        follow_redirects=False,
    )


def _events(ctx: AppContext, action: str) -> list[AuditEvent]:
    with Session(ctx.engine) as s:
        return list(s.exec(select(AuditEvent).where(AuditEvent.action == action)).all())


def test_sign_in_backs_off_after_five_failures(client, demo, ctx, app):
    """30 wrong passwords in 6 s all answered 401 and the right one worked at once."""
    from tests.web.helpers import HTML, csrf_of

    clock = FakeClock()
    app.state.sign_in_throttle.clock = clock
    token = csrf_of(client.get("/login", headers=HTML).text)
    for _ in range(5):
        assert _login(client, token, "tanaka", "wrong-password").status_code == 401
    assert len(_events(ctx, "auth.sign_in_failed")) == 5
    locked = _events(ctx, "auth.sign_in_locked")
    assert len(locked) == 1 and locked[0].details["locked"] == ["account", "client"]
    before = state(ctx)
    r = _login(client, token, "tanaka", "genpon-demo")  # even the right password waits
    assert r.status_code == 429
    assert "一時的にサインインできません" in r.text and "秒後" in r.text
    assert state(ctx) == before  # refused attempts are not verified, nor logged one by one
    # another account from the same client waits too (per-client limit)
    assert _login(client, token, "takahashi", "genpon-demo").status_code == 429
    clock.now += 1.5  # the first wait is one second
    assert _login(client, token, "tanaka", "wrong-password").status_code == 401
    assert _login(client, token, "tanaka", "genpon-demo").status_code == 429  # now two seconds
    clock.now += 2.5
    assert _login(client, token, "tanaka", "genpon-demo").status_code == 303


@BOTH_DBS
def test_throttle_doubles_up_to_a_lockout(ctx):
    from genpon.records.models import SignInFailures
    from genpon.records.users import SignInThrottle

    clock = FakeClock()
    t = SignInThrottle(clock=clock)
    with Session(ctx.engine) as s:
        for n in range(1, 5):
            assert t.failed(s, "account:x") == n and t.retry_after(s, "account:x") == 0
        t.failed(s, "account:x")
        assert t.retry_after(s, "account:x") == 1.0
        for _ in range(20):
            t.failed(s, "account:x")
        assert t.retry_after(s, "account:x") == 15 * 60  # capped: the lockout window
        assert t.retry_after(s, "account:y", "client:z") == 0
        s.commit()
    clock.now += 15 * 60 + 1
    with Session(ctx.engine) as s:
        assert t.retry_after(s, "account:x") == 0
        t.failed(s, "account:x")  # the count was forgotten after the window
        assert t.retry_after(s, "account:x") == 0
        t.succeeded(s, "account:x")
        s.commit()
    with Session(ctx.engine) as s:
        assert s.exec(select(SignInFailures)).all() == []
