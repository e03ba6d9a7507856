"""Administration in headless Chromium (issue 18, point 9): an admin creates a user with the
keyboard, issues an API key (seen once), revokes it, and looks at every admin screen; a
screenshot of each is saved under test-artifacts/."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

from tests.web.conftest import Live, shot

pytestmark = pytest.mark.browser

TIMEOUT = 15_000


def sign_in(browser: Any, live: Live, login: str) -> Any:
    context = browser.new_context(locale="ja-JP", viewport={"width": 1280, "height": 900})
    context.set_default_timeout(TIMEOUT)
    page = context.new_page()
    page.goto(f"{live.url}/login")
    page.get_by_label("利用者ID").fill(login)
    page.get_by_label("パスワード").fill("genpon-demo")
    page.get_by_role("button", name="サインイン").first.click()
    page.wait_for_url(f"{live.url}/")
    return page


def test_admin_creates_a_user_issues_and_revokes_a_key(browser: Any, live: Live) -> None:
    page = sign_in(browser, live, "admin")
    page.get_by_role("link", name="管理", exact=True).click()
    page.wait_for_url(f"{live.url}/admin/users")
    assert page.get_by_test_id("user-row").count() >= 9
    shot(page, "admin-01-users")

    # create a user with the keyboard only: labelled fields, Tab between them, Enter submits
    page.get_by_label("利用者ID").focus()
    page.keyboard.type("kimura")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.name") == "name"
    page.keyboard.type("木村 彩")
    page.get_by_label("所属").select_option("SHIMIN-SHIMIN")
    assert page.get_by_label("職員", exact=True).first.is_checked()  # the default: person, staff
    page.get_by_label("氏名").press("Enter")
    page.wait_for_url(f"{live.url}/admin/users/kimura?msg=created")
    assert "利用者を登録しました。" in page.get_by_test_id("notice").inner_text()
    assert page.get_by_role("heading", level=1).inner_text().startswith("木村 彩")

    # issue a key: shown once, on this answer only
    page.get_by_test_id("key-label").fill("ブラウザ試験")
    page.get_by_test_id("key-issue-submit").click()
    secret = page.get_by_test_id("secret")
    secret.wait_for()
    assert "この画面を閉じると二度と表示されません。" in secret.inner_text()
    key = page.get_by_test_id("secret-value").input_value()
    m = re.fullmatch(r"gp_([0-9a-f]+)_\S+", key)
    assert m, key
    prefix = m.group(1)
    shot(page, "admin-02-key-issued")
    me = httpx.get(f"{live.url}/api/v1/me", headers={"Authorization": f"Bearer {key}"})
    assert me.status_code == 200 and me.json()["login"] == "kimura"
    page.goto(f"{live.url}/admin/users/kimura")
    assert page.get_by_test_id("secret").count() == 0
    assert key not in page.content()
    row = page.locator(f'[data-testid="key-row"][data-prefix="{prefix}"]')
    assert "有効" in row.inner_text()
    shot(page, "admin-03-user")

    # revoke it from the keys list
    page.get_by_role("link", name="APIキー", exact=True).click()
    page.wait_for_url(f"{live.url}/admin/keys")
    shot(page, "admin-04-keys")
    page.locator(f'[data-testid="key-row"][data-prefix="{prefix}"]').get_by_test_id(
        "key-revoke"
    ).click()
    page.wait_for_url(f"{live.url}/admin/keys?msg=revoked")
    assert "APIキーを失効させました。" in page.get_by_test_id("notice").inner_text()
    assert page.locator(f'[data-testid="key-row"][data-prefix="{prefix}"]').count() == 0
    gone = httpx.get(f"{live.url}/api/v1/me", headers={"Authorization": f"Bearer {key}"})
    assert gone.status_code == 401
    page.goto(f"{live.url}/admin/users/kimura")
    assert "失効" in page.locator(f'[data-testid="key-row"][data-prefix="{prefix}"]').inner_text()


def test_admin_screens_masters_import_errors_and_system_key(
    browser: Any, live: Live, tmp_path: Any
) -> None:
    page = sign_in(browser, live, "admin")
    page.goto(f"{live.url}/admin/masters/organizations")
    assert page.get_by_test_id("master-rows").locator("tbody tr").count() >= 8
    shot(page, "admin-05-organizations")
    page.get_by_role("link", name="文書分類", exact=True).click()
    page.wait_for_url(f"{live.url}/admin/masters/document_classes")
    shot(page, "admin-06-document-classes")
    bad = tmp_path / "classes.csv"
    bad.write_text(
        "code,name,parent_code,retention,disposition\nZ,試験,,7,廃棄\nZ01,,Z,10,保管\n",
        encoding="utf-8-sig",
    )
    page.get_by_label("CSVファイル").set_input_files(str(bad))
    page.get_by_test_id("import-submit").click()
    errors = page.get_by_test_id("row-error")
    errors.first.wait_for()
    lines = [errors.nth(i).locator("td").first.inner_text() for i in range(errors.count())]
    assert lines == ["2", "3", "3"]
    assert "保存期間が不正です" in errors.first.inner_text()
    shot(page, "admin-07-import-errors")
    with page.expect_download() as dl:
        page.get_by_test_id("export").click()
    assert dl.value.suggested_filename == "document_classes.csv"
    page.goto(f"{live.url}/admin/users/denshi-kessai")
    assert page.get_by_test_id("grants").is_visible()
    shot(page, "admin-08-service-account")
    page.get_by_role("link", name="署名鍵", exact=True).click()
    page.wait_for_url(f"{live.url}/admin/system-key")
    assert page.get_by_test_id("can-sign").inner_text() == "できる"
    assert re.fullmatch(r"[0-9a-f]{16}", page.get_by_test_id("key-id").inner_text())
    shot(page, "admin-09-system-key")


def test_a_clerk_has_no_admin_menu_and_no_admin_pages(browser: Any, live: Live) -> None:
    page = sign_in(browser, live, "tanaka")
    assert page.get_by_role("link", name="管理", exact=True).count() == 0
    r = page.goto(f"{live.url}/admin/users")
    assert r is not None and r.status == 404
    assert "ページが見つかりません" in page.content()
