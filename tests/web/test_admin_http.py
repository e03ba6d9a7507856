"""Administration screens over HTTP (issue 18, point 9): only admins see them (everyone else
gets a 404), every action works through its records service and writes its audit event, a
master CSV's errors are shown row by row, an export imports back unchanged."""

from __future__ import annotations

import csv
import io
import re
from typing import Any

import pytest
from fastapi.testclient import TestClient
from genpon.core.errors import Forbidden
from genpon.core.signing import SystemKeyring, provision, public_pem, record_key
from genpon.records import accounts, master, users
from genpon.records.access import actor_for_user
from genpon.records.models import ApiKey, AuditEvent, Organization, ServiceGrant, User
from sqlmodel import Session, col, select

from tests.web.helpers import HTML, csrf_of, sign_in

GET_PAGES = (
    "/admin",
    "/admin/users",
    "/admin/users/tanaka",
    "/admin/keys",
    "/admin/masters",
    "/admin/masters/organizations",
    "/admin/masters/document_classes",
    "/admin/masters/organizations/export",
    "/admin/masters/users/export",
    "/admin/system-key",
)
POSTS = (
    "/admin/users",
    "/admin/users/tanaka",
    "/admin/users/tanaka/active",
    "/admin/users/tanaka/password",
    "/admin/users/tanaka/keys",
    "/admin/users/denshi-kessai/grants",
    "/admin/keys/abc/revoke",
    "/admin/masters/organizations/import",
)


def events(ctx: Any, action: str) -> list[AuditEvent]:
    with Session(ctx.engine) as s:
        return list(
            s.exec(
                select(AuditEvent).where(AuditEvent.action == action).order_by(col(AuditEvent.seq))
            ).all()
        )


def user(ctx: Any, login: str) -> User:
    with Session(ctx.engine) as s:
        u = s.exec(select(User).where(User.login == login)).one()
        s.expunge(u)
        return u


def test_admin_pages_do_not_exist_for_anyone_else(client: TestClient, demo: object) -> None:
    for login in ("tanaka", "suzuki", "yamada"):  # staff, records officer, auditor
        client.cookies.clear()
        csrf = sign_in(client, login)
        assert 'href="/admin' not in client.get("/cases", headers=HTML).text
        for path in GET_PAGES:
            r = client.get(path, headers=HTML, follow_redirects=False)
            assert r.status_code == 404, (login, path)
            assert "ページが見つかりません" in r.text
        for path in POSTS:
            r = client.post(
                path,
                data={"csrf": csrf, "login": "x", "name": "x", "active": "0"},
                headers=HTML,
                follow_redirects=False,
            )
            assert r.status_code == 404, (login, path)
    ctx = client.app.state.ctx  # type: ignore[attr-defined]
    assert not events(ctx, "user.created") and not events(ctx, "user.disabled")
    assert [e.actor for e in events(ctx, "key.issued") if e.actor != "system"] == []
    client.cookies.clear()
    assert client.get("/admin/users", headers=HTML, follow_redirects=False).status_code == 303
    sign_in(client, "admin")
    assert 'href="/admin/users"' in client.get("/cases", headers=HTML).text
    for path in GET_PAGES:
        assert client.get(path, headers=HTML).status_code == 200, path


def test_the_services_check_the_role_themselves(ctx: Any, demo: object) -> None:
    with Session(ctx.engine) as s:
        staff = actor_for_user(s, s.exec(select(User).where(User.login == "suzuki")).one())
        calls = (
            lambda: accounts.create_user(
                s, staff, login="x", name="x", organization_code="SOUMU", roles=["staff"]
            ),
            lambda: accounts.update_user(
                s, staff, "tanaka", name="x", organization_code="SOUMU", roles=["admin"]
            ),
            lambda: accounts.set_user_active(s, staff, "tanaka", active=False),
            lambda: accounts.set_service_grants(s, staff, "denshi-kessai", []),
            lambda: master.export_csv(s, staff, "users"),
            lambda: users.reset_password(s, staff, "tanaka"),
            lambda: users.list_all_keys(s, staff),
            lambda: users.system_key_status(
                s, staff, SystemKeyring.from_settings(ctx.settings), ctx.engine
            ),
        )
        for call in calls:
            with pytest.raises(Forbidden):
                call()


def test_create_edit_disable_enable_and_reset_password(client: TestClient, demo: Any) -> None:
    ctx = client.app.state.ctx  # type: ignore[attr-defined]
    csrf = sign_in(client, "admin")
    r = client.post(
        "/admin/users",
        data={
            "csrf": csrf,
            "login": "nakamura",
            "name": "中村 真理",
            "organization_code": "KENSETSU-DOURO",
            "kind": "person",
            "roles": ["staff"],
        },
        headers=HTML,
        follow_redirects=False,
    )
    assert r.status_code == 303 and r.headers["location"] == "/admin/users/nakamura?msg=created"
    page = client.get(r.headers["location"], headers=HTML).text
    assert "利用者を登録しました。" in page and "中村 真理" in page
    created = events(ctx, "user.created")
    assert [(e.actor, e.target_id) for e in created] == [("admin", "nakamura")]
    assert created[0].details["roles"] == ["staff"]
    assert created[0].details["organization_code"] == "KENSETSU-DOURO"
    assert "nakamura" in client.get("/admin/users", headers=HTML).text

    # roles and organization
    r = client.post(
        "/admin/users/nakamura",
        data={
            "csrf": csrf,
            "name": "中村 真理",
            "organization_code": "SOUMU-SOUMU",
            "roles": ["staff", "records_officer"],
        },
        headers=HTML,
        follow_redirects=False,
    )
    assert r.status_code == 303
    u = user(ctx, "nakamura")
    assert sorted(u.roles) == ["records_officer", "staff"]
    (updated,) = events(ctx, "user.updated")
    assert updated.details["changes"]["organization_code"] == ["KENSETSU-DOURO", "SOUMU-SOUMU"]
    assert updated.details["changes"]["roles"] == [["staff"], ["records_officer", "staff"]]

    # reset password: shown once, on the answer to the POST; the person can sign in with it
    r = client.post("/admin/users/nakamura/password", data={"csrf": csrf}, headers=HTML)
    assert r.status_code == 200 and 'data-testid="secret"' in r.text
    m = re.search(r'<input readonly value="([^"]+)" data-testid="secret-value"', r.text)
    assert m
    new_password = m.group(1)
    assert new_password not in client.get("/admin/users/nakamura", headers=HTML).text
    (pw,) = events(ctx, "user.password_set")[-1:]
    assert (pw.actor, pw.target_id) == ("admin", "nakamura")
    other = TestClient(client.app)
    sign_in(other, "nakamura", new_password)

    # disable: the person's sign-in ends and a new one is refused; enable again
    r = client.post(
        "/admin/users/nakamura/active",
        data={"csrf": csrf, "active": "0"},
        headers=HTML,
        follow_redirects=False,
    )
    assert r.status_code == 303
    assert user(ctx, "nakamura").active is False
    assert other.get("/cases", headers=HTML, follow_redirects=False).status_code == 303
    login_page = other.get("/login", headers=HTML)
    refused = other.post(
        "/login",
        data={"csrf": csrf_of(login_page.text), "login": "nakamura", "password": new_password},
        headers=HTML,
    )
    assert refused.status_code == 401
    assert [e.target_id for e in events(ctx, "user.disabled")] == ["nakamura"]
    client.post("/admin/users/nakamura/active", data={"csrf": csrf, "active": "1"}, headers=HTML)
    assert user(ctx, "nakamura").active is True
    assert [e.actor for e in events(ctx, "user.enabled")] == ["admin"]
    sign_in(other, "nakamura", new_password)


def test_form_errors_are_shown_and_nothing_is_written(client: TestClient, demo: object) -> None:
    ctx = client.app.state.ctx  # type: ignore[attr-defined]
    csrf = sign_in(client, "admin")
    r = client.post(
        "/admin/users",
        data={"csrf": csrf, "login": "bad login!", "name": "", "organization_code": "NOPE"},
        headers=HTML,
    )
    assert r.status_code == 422
    assert "login が不正です" in r.text and "name が空です" in r.text
    assert "所属コード NOPE が存在しません" in r.text and "役割を1つ以上指定してください" in r.text
    assert 'aria-invalid="true"' in r.text
    r = client.post(
        "/admin/users",
        data={"csrf": csrf, "login": "tanaka", "name": "x", "organization_code": "SOUMU"},
        headers=HTML,
    )
    assert r.status_code == 422 and "利用者ID tanaka は既に使われています。" in r.text
    r = client.post(
        "/admin/users",
        data={
            "csrf": csrf,
            "login": "svc",
            "name": "連携",
            "organization_code": "SOUMU",
            "kind": "service",
            "roles": ["admin"],
        },
        headers=HTML,
    )
    assert r.status_code == 422 and "サービスアカウントには役割を付けられません" in r.text
    # an admin keeps their own admin role and cannot disable themselves
    r = client.post(
        "/admin/users/admin",
        data={"csrf": csrf, "name": "管理者", "organization_code": "SOUMU", "roles": ["staff"]},
        headers=HTML,
    )
    assert r.status_code == 422 and "自分自身の管理者の役割は外せません" in r.text
    r = client.post("/admin/users/admin/active", data={"csrf": csrf, "active": "0"}, headers=HTML)
    assert r.status_code == 422 and "自分自身を無効にすることはできません。" in r.text
    assert user(ctx, "admin").active and "admin" in user(ctx, "admin").roles
    # a forged form changes nothing
    r = client.post(
        "/admin/users/tanaka/active", data={"csrf": "forged", "active": "0"}, headers=HTML
    )
    assert r.status_code == 403 and user(ctx, "tanaka").active
    for action in ("user.created", "user.updated", "user.disabled"):
        assert not events(ctx, action), action


def test_service_account_and_its_grants(client: TestClient, demo: object) -> None:
    ctx = client.app.state.ctx  # type: ignore[attr-defined]
    csrf = sign_in(client, "admin")
    r = client.post(
        "/admin/users",
        data={
            "csrf": csrf,
            "login": "bunsho-kanri",
            "name": "文書管理システム",
            "organization_code": "SOUMU-SOUMU",
            "kind": "service",
            "grants": ["SOUMU-ZAISEI"],
        },
        headers=HTML,
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    page = client.get("/admin/users/bunsho-kanri", headers=HTML).text
    assert 'data-testid="grants"' in page and 'data-testid="password-reset"' not in page

    def granted() -> set[str]:
        with Session(ctx.engine) as s:
            u = s.exec(select(User).where(User.login == "bunsho-kanri")).one()
            ids = s.exec(select(ServiceGrant.organization_id).where(ServiceGrant.user_id == u.id))
            return {s.get(Organization, i).code for i in ids}  # type: ignore[union-attr]

    assert granted() == {"SOUMU-ZAISEI"}
    r = client.post(
        "/admin/users/bunsho-kanri/grants",
        data={"csrf": csrf, "grants": ["KENSETSU-DOURO", "SHIMIN-SHIMIN"]},
        headers=HTML,
        follow_redirects=False,
    )
    assert r.status_code == 303
    assert granted() == {"KENSETSU-DOURO", "SHIMIN-SHIMIN"}
    (ev,) = events(ctx, "user.updated")
    assert ev.details["changes"]["grants"] == [
        ["SOUMU-ZAISEI"],
        ["KENSETSU-DOURO", "SHIMIN-SHIMIN"],
    ]
    # grants only for service accounts; no password for them
    r = client.post("/admin/users/tanaka/grants", data={"csrf": csrf}, headers=HTML)
    assert r.status_code == 422 and "サービスアカウントにのみ" in r.text
    r = client.post("/admin/users/bunsho-kanri/password", data={"csrf": csrf}, headers=HTML)
    assert r.status_code == 422


def test_api_key_issued_once_listed_and_revoked(client: TestClient, demo: object) -> None:
    ctx = client.app.state.ctx  # type: ignore[attr-defined]
    csrf = sign_in(client, "admin")
    r = client.post(
        "/admin/users/tanaka/keys", data={"csrf": csrf, "label": "スキャナ連携"}, headers=HTML
    )
    assert r.status_code == 200
    m = re.search(
        r'<input readonly value="(gp_([0-9a-f]+)_[^"]+)" data-testid="secret-value"', r.text
    )
    assert m, r.text
    clear, prefix = m.group(1), m.group(2)
    assert "この画面を閉じると二度と表示されません。" in r.text
    assert r.headers["cache-control"] == "no-store"
    # the key works, and is never shown again
    me = client.get("/api/v1/me", headers={"Authorization": f"Bearer {clear}"})
    assert me.status_code == 200 and me.json()["login"] == "tanaka"
    for path in ("/admin/users/tanaka", "/admin/keys"):
        page = client.get(path, headers=HTML).text
        assert prefix in page and clear not in page and "スキャナ連携" in page
    (issued,) = [e for e in events(ctx, "key.issued") if e.actor == "admin"]
    assert issued.target_id == "tanaka" and issued.details["prefix"] == prefix
    # revoke from the keys list
    r = client.post(
        f"/admin/keys/{prefix}/revoke",
        data={"csrf": csrf, "next": "/admin/keys"},
        headers=HTML,
        follow_redirects=False,
    )
    assert r.status_code == 303 and r.headers["location"] == "/admin/keys?msg=revoked"
    assert "APIキーを失効させました。" in client.get(r.headers["location"], headers=HTML).text
    gone = client.get("/api/v1/me", headers={"Authorization": f"Bearer {clear}"})
    assert gone.status_code == 401
    (revoked,) = events(ctx, "key.revoked")
    assert (revoked.actor, revoked.target_id) == ("admin", "tanaka")
    assert revoked.details["prefix"] == prefix
    with Session(ctx.engine) as s:
        key = s.exec(select(ApiKey).where(ApiKey.prefix == prefix)).one()
        assert key.revoked_at is not None
    assert prefix not in client.get("/admin/keys", headers=HTML).text  # active only by default
    assert prefix in client.get("/admin/keys?show=all", headers=HTML).text
    # an open redirect is not followed after a revoke
    r = client.post(
        f"/admin/keys/{prefix}/revoke",
        data={"csrf": csrf, "next": "//evil.example/"},
        headers=HTML,
        follow_redirects=False,
    )
    assert r.headers["location"] == "/admin/keys?msg=revoked"


def test_master_import_shows_the_row_errors_and_writes_nothing(
    client: TestClient, demo: object
) -> None:
    ctx = client.app.state.ctx  # type: ignore[attr-defined]
    csrf = sign_in(client, "admin")
    bad = (
        "code,name,parent_code,retention,disposition\n"
        "Z,試験,,10,廃棄\n"
        "Z01,試験の中分類,Z,7,廃棄\n"
        "Z02,,Z,10,保管\n"
        "Z03,親なし,NOPE,10,廃棄\n"
    )
    r = client.post(
        "/admin/masters/document_classes/import",
        data={"csrf": csrf},
        files={"file": ("classes.csv", bad.encode("utf-8-sig"), "text/csv")},
        headers=HTML,
    )
    assert r.status_code == 422
    assert "取り込めませんでした" in r.text
    rows = re.findall(
        r'<tr data-testid="row-error"><td>(\d+)</td><td>([^<]*)</td><td>([^<]*)</td></tr>',
        r.text,
    )
    assert [(int(n), col) for n, col, _ in rows] == [
        (3, "retention"),
        (4, "name"),
        (4, "disposition"),
        (5, "parent_code"),
    ]
    assert "保存期間が不正です" in rows[0][2] and "親コード NOPE が存在しません" in rows[3][2]
    with Session(ctx.engine) as s:
        assert s.exec(select(Organization).where(Organization.code == "Z")).first() is None
        assert "Z" not in {c.code for c in master.list_classes(s)}
    assert not [e for e in events(ctx, "master.imported") if e.actor == "admin"]
    # a missing column, a file that is not UTF-8, no file at all
    r = client.post(
        "/admin/masters/organizations/import",
        data={"csrf": csrf},
        files={"file": ("o.csv", b"code\nX\n", "text/csv")},
        headers=HTML,
    )
    assert r.status_code == 422 and "必須の列がありません: name" in r.text
    r = client.post(
        "/admin/masters/organizations/import",
        data={"csrf": csrf},
        files={"file": ("o.csv", "code,name\nX,試験\n".encode("shift_jis"), "text/csv")},
        headers=HTML,
    )
    assert r.status_code == 422 and "UTF-8" in r.text
    r = client.post("/admin/masters/organizations/import", data={"csrf": csrf}, headers=HTML)
    assert r.status_code == 422 and "CSVファイルを選んでください" in r.text
    # a clean file imports, with its counts, audited
    good = "code,name,parent_code\nSOUMU-JOHO,情報政策課,SOUMU\nCITY,原本市,\n"
    r = client.post(
        "/admin/masters/organizations/import",
        data={"csrf": csrf},
        files={"file": ("o.csv", good.encode(), "text/csv")},
        headers=HTML,
        follow_redirects=False,
    )
    assert r.status_code == 303
    page = client.get(r.headers["location"], headers=HTML).text
    assert "追加 1件・更新 0件・変更なし 1件" in page and "情報政策課" in page
    (ev,) = [e for e in events(ctx, "master.imported") if e.actor == "admin"]
    assert ev.target_id == "organizations" and ev.details["created"] == 1


@pytest.mark.parametrize("kind", ["organizations", "document_classes", "users"])
def test_export_imports_back_unchanged(client: TestClient, demo: object, kind: str) -> None:
    ctx = client.app.state.ctx  # type: ignore[attr-defined]
    sign_in(client, "admin")
    r = client.get(f"/admin/masters/{kind}/export")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert r.content.startswith(b"\xef\xbb\xbf")  # Excel reads the BOM
    assert f'filename="{kind}.csv"' in r.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(r.content.decode("utf-8-sig"))))
    assert rows and all(row["name"] for row in rows)
    (ev,) = events(ctx, "master.exported")
    assert (ev.actor, ev.target_id, ev.details["rows"]) == ("admin", kind, len(rows))
    with Session(ctx.engine) as s:
        admin = actor_for_user(s, s.exec(select(User).where(User.login == "admin")).one())
        result = master.import_csv(s, admin, kind, r.content)
        s.rollback()
    assert (result.created, result.updated, result.unchanged) == (0, 0, len(rows))
    if kind == "users":
        svc = next(row for row in rows if row["login"] == "denshi-kessai")
        assert svc["kind"] == "service" and "SOUMU-ZAISEI" in svc["grants"].split()


def test_system_key_status(client: TestClient, demo: object) -> None:
    ctx = client.app.state.ctx  # type: ignore[attr-defined]
    sign_in(client, "admin")
    # no key on this node yet: it says it cannot sign, and why
    page = client.get("/admin/system-key", headers=HTML)
    assert page.status_code == 200
    assert '<span class="bad">できない</span>' in page.text and "署名鍵がありません" in page.text
    # provisioned (genpon init), then rotated once: current key, history of both
    ring = SystemKeyring.from_settings(ctx.settings, ctx.engine)
    first = provision(ring, ctx.engine)
    _, second = ring.rotate()
    with Session(ctx.engine) as s:
        record_key(s, second, public_pem(ring.public_key()))
        s.commit()
    page = client.get("/admin/system-key", headers=HTML)
    assert f'<code data-testid="key-id">{second}</code>' in page.text
    assert "データディレクトリの鍵" in page.text and '<span class="ok">できる</span>' in page.text
    history = re.findall(r"<tr><td><code>([0-9a-f]+)</code>( <span[^>]*>現在の鍵)?", page.text)
    assert [(kid, bool(cur)) for kid, cur in history] == [(second, True), (first, False)]
    assert "PRIVATE KEY" not in page.text


def test_admin_screens_in_english(client: TestClient, demo: object) -> None:
    csrf = sign_in(client, "admin")
    r = client.post(
        "/lang", data={"csrf": csrf, "lang": "en", "next": "/admin/users"}, headers=HTML
    )
    assert r.status_code == 200 and 'lang="en"' in r.text
    assert ">Admin</a>" in r.text and "New user" in r.text and "Service account" in r.text
    page = client.get("/admin/system-key", headers=HTML).text
    assert "System signing key" in page and "Rotation history" in page
    assert client.get("/admin/users/nobody", headers=HTML).status_code == 404
