"""Web UI over HTTP (no browser): sign-in, cookie flags, CSRF, errors in Japanese, upload
messages, permissions, date formats."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from fastapi.testclient import TestClient
from genpon.api.web.i18n import fmt_date, fmt_datetime, fmt_fiscal_year

from tests.web.helpers import HTML, csrf_of, folder_id, sign_in


def test_japanese_dates_and_fiscal_years() -> None:
    assert fmt_date(date(2026, 7, 15), "Asia/Tokyo") == "2026年7月15日"
    # 2026-03-31 20:00 UTC is already April 1 in Tokyo: a new fiscal year starts
    assert fmt_datetime(datetime(2026, 3, 31, 20, 0, tzinfo=UTC), "Asia/Tokyo") == (
        "2026年4月1日 05:00"
    )
    assert fmt_date(datetime(2026, 3, 31, 20, 0, tzinfo=UTC), "Asia/Tokyo") == "2026年4月1日"
    assert fmt_fiscal_year(2026) == "令和8年度（2026年度）"
    assert fmt_fiscal_year(2019) == "令和元年度（2019年度）"
    assert fmt_fiscal_year(2018) == "平成30年度（2018年度）"
    assert fmt_date(date(2026, 7, 15), "Asia/Tokyo", "en") == "2026-07-15"


def test_sign_in_cookie_flags_and_sign_out(client: TestClient, demo: object) -> None:
    r = client.get("/", headers=HTML, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/login?next=%2F"
    page = client.get("/login", headers=HTML)
    assert "サインイン" in page.text
    token = csrf_of(page.text)
    bad = client.post(
        "/login",
        data={"csrf": token, "login": "tanaka", "password": "wrong-password"},
        headers=HTML,
    )
    assert bad.status_code == 401
    assert "利用者IDまたはパスワードが正しくありません。" in bad.text
    r = client.post(
        "/login",
        data={"csrf": token, "login": "tanaka", "password": "genpon-demo", "next": "/cases"},
        headers=HTML,
        follow_redirects=False,
    )
    assert r.status_code == 303 and r.headers["location"] == "/cases"
    cookie = r.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie
    home = client.get("/cases", headers=HTML)
    assert "田中 花子" in home.text
    assert "content-security-policy" in home.headers
    new_token = csrf_of(home.text)
    assert new_token != token  # rotated at sign-in
    out = client.post("/logout", data={"csrf": new_token}, headers=HTML, follow_redirects=False)
    assert out.status_code == 303
    assert client.get("/cases", headers=HTML, follow_redirects=False).status_code == 303


def test_sign_in_with_api_key_and_revocation(client: TestClient, demo: object) -> None:
    key = demo.keys["suzuki"]  # type: ignore[attr-defined]
    token = csrf_of(client.get("/login", headers=HTML).text)
    r = client.post(
        "/login", data={"csrf": token, "api_key": key}, headers=HTML, follow_redirects=False
    )
    assert r.status_code == 303
    page = client.get("/cases", headers=HTML)
    assert "鈴木 一郎" in page.text
    # revoking the key ends the web session opened with it
    prefix = key[3:].partition("_")[0]
    rv = client.delete(f"/api/v1/keys/{prefix}", headers={"Authorization": f"Bearer {key}"})
    assert rv.status_code == 200, rv.text
    assert client.get("/cases", headers=HTML, follow_redirects=False).status_code == 303


def test_service_key_cannot_open_the_web(client: TestClient, demo: object) -> None:
    token = csrf_of(client.get("/login", headers=HTML).text)
    r = client.post(
        "/login",
        data={"csrf": token, "api_key": demo.keys["denshi-kessai"]},  # type: ignore[attr-defined]
        headers=HTML,
    )
    assert r.status_code == 401
    assert "システム連携用のキー" in r.text


def test_csrf_required_on_forms_and_on_cookie_api_calls(client: TestClient, demo: object) -> None:
    token = sign_in(client, "tanaka")
    r = client.post(
        "/cases", data={"csrf": "forged", "title": "x", "class_code": "B0101"}, headers=HTML
    )
    assert r.status_code == 403
    assert "不正な送信" in r.text
    r = client.post("/cases", data={"title": "x", "class_code": "B0101"}, headers=HTML)
    assert r.status_code == 403
    # the JSON API accepts the cookie only with the CSRF header on unsafe methods
    body = {"title": "API", "organization_code": "SOUMU-ZAISEI", "class_code": "B0101"}
    assert client.post("/api/v1/cases", json=body).status_code == 401
    ok = client.post("/api/v1/cases", json=body, headers={"X-CSRF-Token": token})
    assert ok.status_code == 201, ok.text
    assert client.get("/api/v1/cases").status_code == 200


def test_open_redirect_refused(client: TestClient, demo: object) -> None:
    token = csrf_of(client.get("/login", headers=HTML).text)
    r = client.post(
        "/login",
        data={
            "csrf": token,
            "login": "tanaka",
            "password": "genpon-demo",
            "next": "//evil.example/",
        },
        headers=HTML,
        follow_redirects=False,
    )
    assert r.headers["location"] == "/"


def test_error_pages_in_japanese(client: TestClient, demo: object) -> None:
    sign_in(client, "tanaka")
    r = client.get("/no/such/page", headers=HTML)
    assert r.status_code == 404
    assert "ページが見つかりません" in r.text and "Traceback" not in r.text
    r = client.get("/documents/999999", headers=HTML)
    assert r.status_code == 404 and "文書が見つかりません。" in r.text
    r = client.get("/documents/abc", headers=HTML)
    assert r.status_code == 422 and "入力内容" in r.text
    # the JSON API keeps its JSON errors
    r = client.get("/api/v1/documents/999999", headers={"accept": "application/json"})
    assert r.status_code == 404 and r.json()["error"]["code"] == "document_not_found"


def test_upload_original_then_copy_message_and_links(client: TestClient, demo: object) -> None:
    token = sign_in(client, "tanaka")
    fid = folder_id(client.get("/folders", headers=HTML).text, "財政課チーム")
    content = "令和8年度 道路補修工事の予算要求書".encode()
    first = client.post(
        f"/folders/{fid}/upload",
        data={"csrf": token},
        files={"file": ("予算要求書.txt", content, "text/plain")},
        headers={"accept": "application/json"},
    )
    assert first.status_code == 201 and first.json()["is_copy"] is False
    second = client.post(
        f"/folders/{fid}/upload",
        data={"csrf": token, "title": "予算要求書（控え）"},
        files={"file": ("控え.txt", content, "text/plain")},
        headers=HTML,
        follow_redirects=False,
    )
    assert second.status_code == 303
    page = client.get(second.headers["location"], headers=HTML)
    assert "同じ内容の原本が既にあるため、写しとして登録しました。" in page.text
    assert f'href="/documents/{first.json()["document_id"]}"' in page.text
    original = client.get(first.json()["url"], headers=HTML)
    assert "この文書が原本です。" in original.text and "写し 1件" in original.text
    assert "2026年" in original.text or "年" in original.text
    dl = client.get(f"{first.json()['url']}/download")
    assert dl.status_code == 200 and dl.content == content


def test_upload_needs_csrf_and_leaves_nothing(client: TestClient, demo: object) -> None:
    sign_in(client, "tanaka")
    fid = folder_id(client.get("/folders", headers=HTML).text, "財政課チーム")
    r = client.post(
        f"/folders/{fid}/upload",
        data={"csrf": "forged"},
        files={"file": ("a.txt", b"hello", "text/plain")},
        headers={"accept": "application/json"},
    )
    assert r.status_code == 403 and r.json()["error"]["code"] == "csrf_failed"
    docs = client.get(f"/folders/{fid}", headers=HTML)
    assert "文書はありません。" in docs.text


def test_other_organizations_team_folder_is_denied(client: TestClient, demo: object) -> None:
    sign_in(client, "suzuki")  # records officer: reads everything
    douro = folder_id(client.get("/folders", headers=HTML).text, "道路課チーム")
    client.cookies.clear()
    token = sign_in(client, "tanaka")
    listing = client.get("/folders", headers=HTML).text
    assert "道路課チーム" not in listing
    r = client.get(f"/folders/{douro}", headers=HTML)
    assert r.status_code == 404 and "閲覧できない" in r.text
    # a records officer may read it but not deposit into another organization's team folder
    client.cookies.clear()
    token = sign_in(client, "suzuki")
    r = client.post(
        f"/folders/{douro}/upload",
        data={"csrf": token},
        files={"file": ("a.txt", b"hello", "text/plain")},
        headers=HTML,
    )
    assert r.status_code == 403
    assert "このフォルダに文書を登録する権限がありません。" in r.text


def test_language_switch(client: TestClient, demo: object) -> None:
    token = sign_in(client, "tanaka")
    r = client.post("/lang", data={"csrf": token, "lang": "en", "next": "/folders"}, headers=HTML)
    assert r.status_code == 200 and "Team folders" in r.text and 'lang="en"' in r.text
    token = csrf_of(r.text)
    r = client.post("/lang", data={"csrf": token, "lang": "ja", "next": "/folders"}, headers=HTML)
    assert "チームフォルダ" in r.text


def test_case_page_timeline(client: TestClient, demo: object) -> None:
    token = sign_in(client, "tanaka")
    r = client.post(
        "/cases",
        data={"csrf": token, "title": "令和8年度予算要求", "class_code": "B0101"},
        headers=HTML,
        follow_redirects=False,
    )
    assert r.status_code == 303
    page = client.get(r.headers["location"], headers=HTML)
    assert "令和8年度" in page.text or "年度" in page.text
    assert "田中 花子が案件「令和8年度予算要求」を作成しました。" in page.text


def test_officer_and_auditor_screens_need_their_roles(client: TestClient, demo: object) -> None:
    sign_in(client, "tanaka")
    for path in (
        "/records/due",
        "/records/batches",
        "/records/holds",
        "/audit/log",
        "/audit/verify",
    ):
        r = client.get(path, headers=HTML)
        assert r.status_code == 403, path
        assert "権限がありません" in r.text
    page = client.get("/cases", headers=HTML).text
    assert 'href="/records/due"' not in page and 'href="/audit/log"' not in page
    client.cookies.clear()
    sign_in(client, "suzuki")
    for path in ("/records/due", "/records/batches", "/records/holds", "/records/register"):
        assert client.get(path, headers=HTML).status_code == 200, path
    reg = client.get("/records/register/download?format=csv")
    assert reg.status_code == 200 and reg.content.startswith(b"\xef\xbb\xbf")
    client.cookies.clear()
    sign_in(client, "yamada")
    for path in ("/audit/log", "/audit/checkpoints", "/audit/fixity", "/audit/verify"):
        assert client.get(path, headers=HTML).status_code == 200, path


def test_transfer_package_and_receipt_from_the_officer_screens(
    client: TestClient, demo: object, ctx: Any
) -> None:
    """移管 end to end in the browser screens: an approved transfer batch gets its BagIt
    package, then the recorded receipt marks its documents transferred."""
    from genpon.retention import batches
    from sqlmodel import Session

    from tests.retention.helpers import actor, doc, make_case

    _case, ids = make_case(
        ctx, cls="B0201", org="KENSETSU-DOURO", closed=datetime(2010, 9, 1, 3, tzinfo=UTC)
    )
    with Session(ctx.engine, expire_on_commit=False) as s:
        b = batches.create_batch(
            s, actor(ctx, "suzuki"), action="transfer", timezone="Asia/Tokyo",
            as_of=date(2026, 4, 1), document_ids=ids,
        )  # fmt: skip
        s.commit()
    with Session(ctx.engine) as s:
        batches.decide(s, actor(ctx, "sato"), b.id, approve=True)
        s.commit()
    csrf = sign_in(client, "suzuki")
    page = client.get(f"/records/batches/{b.id}", headers=HTML).text
    assert 'data-testid="export"' in page and 'data-testid="acknowledge"' not in page
    assert client.post(f"/records/batches/{b.id}/export", data={}, headers=HTML).status_code == 403
    # without the confirmation page's field the step only shows that page
    r = client.post(f"/records/batches/{b.id}/export", data={"csrf": csrf}, headers=HTML)
    assert r.status_code == 200 and 'data-testid="confirm-form"' in r.text
    assert f"{len(ids)}件" in r.text and "package-path" not in r.text
    confirmed = {"csrf": csrf, "confirmed": "1"}
    r = client.post(f"/records/batches/{b.id}/export", data=confirmed, headers=HTML)
    assert r.status_code == 200 and 'data-testid="exported"' in r.text
    assert "移管パッケージ作成済" in r.text and 'data-testid="package-path"' in r.text
    assert 'data-testid="export"' not in r.text and 'data-testid="acknowledge"' in r.text
    assert all(doc(ctx, i).state == "live" for i in ids)  # until the archives acknowledge
    again = client.post(f"/records/batches/{b.id}/export", data=confirmed, headers=HTML)
    assert again.status_code == 409
    r = client.post(
        f"/records/batches/{b.id}/acknowledge",
        data={**confirmed, "receipt_reference": "公文書館受領第12号"},
        headers=HTML,
    )
    assert r.status_code == 200 and 'data-testid="acknowledged"' in r.text
    assert all(doc(ctx, i).state == "transferred" for i in ids)
    client.cookies.clear()
    csrf = sign_in(client, "tanaka")
    assert (
        client.post(f"/records/batches/{b.id}/export", data={"csrf": csrf}, headers=HTML)
    ).status_code == 403


def test_sign_out_ends_the_sign_in_on_the_server(client: TestClient, demo: object) -> None:
    """A copy of the cookie taken before signing out no longer opens anything."""
    from genpon.api.web.session import COOKIE

    csrf = sign_in(client, "tanaka")
    copied = client.cookies.get(COOKIE)
    assert client.get("/cases", headers=HTML).status_code == 200
    r = client.post("/logout", data={"csrf": csrf}, headers=HTML, follow_redirects=False)
    assert r.status_code == 303
    client.cookies.clear()
    client.cookies.set(COOKIE, copied)
    r = client.get("/cases", headers=HTML, follow_redirects=False)
    assert r.status_code in (302, 303) and "/login" in r.headers["location"]
    # a fresh sign-in works again, and the stale copy stays refused
    sign_in(client, "tanaka")
    assert client.get("/cases", headers=HTML).status_code == 200
    client.cookies.clear()
    client.cookies.set(COOKIE, copied)
    assert client.get("/cases", headers=HTML, follow_redirects=False).status_code in (302, 303)


def test_search_page_filtered_to_a_case_shows_the_copy_filed_there(
    client: TestClient, demo: Any, ctx: Any
) -> None:
    from genpon.search.indexer import drain

    from tests.records.helpers import copy_to, deposit, new_case, team_folder

    auth = demo.auth("tanaka")
    case = new_case(client, auth, title="道路補修")
    orig = deposit(client, auth, "舗装補修の設計書".encode(), folder_id=team_folder(ctx)).json()
    copy_id = copy_to(client, auth, orig["id"], case["folder_id"])
    drain(ctx)
    sign_in(client, "tanaka")
    page = client.get("/", params={"q": "舗装補修"}, headers=HTML)
    assert f'href="/documents/{orig["id"]}"' in page.text and "写し 1件" in page.text
    page = client.get("/", params={"q": "舗装補修", "case_id": case["case_id"]}, headers=HTML)
    assert page.status_code == 200
    assert f'href="/documents/{copy_id}"' in page.text
    assert "ほかの保存場所 1件" in page.text and "原本とほかの写しの場所" in page.text
