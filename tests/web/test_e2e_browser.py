"""End-to-end in headless Chromium: what a clerk, two records officers and an auditor do."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.web.conftest import Live, shot

pytestmark = pytest.mark.browser

TIMEOUT = 15_000


def sign_in(browser: Any, live: Live, login: str) -> Any:
    context = browser.new_context(locale="ja-JP", viewport={"width": 1280, "height": 900})
    context.set_default_timeout(TIMEOUT)
    page = context.new_page()
    page.goto(f"{live.url}/")
    assert "/login" in page.url
    page.get_by_label("利用者ID").fill(login)
    page.get_by_label("パスワード").fill("genpon-demo")
    page.get_by_role("button", name="サインイン").first.click()
    page.wait_for_url(f"{live.url}/")
    return page


def test_clerk_uploads_finds_opens_and_follows_copy(
    browser: Any, live: Live, tmp_path: Any
) -> None:
    page = sign_in(browser, live, "tanaka")
    shot(page, "01-home")
    page.get_by_role("link", name="フォルダ", exact=True).click()
    shot(page, "02-folders")
    page.get_by_role("link", name="財政課チーム").click()
    # upload through the form (the script sends it and shows the outcome)
    upload = tmp_path / "道路補修予算要求書.txt"
    upload.write_text("令和8年度 市道の道路補修工事に係る予算要求書。舗装の打換えを行う。", "utf-8")
    page.get_by_test_id("upload-file").set_input_files(str(upload))
    page.get_by_test_id("upload-submit").click()
    done = page.get_by_test_id("upload-original")
    done.wait_for()
    assert "原本として登録しました。" in done.inner_text()
    # the same content again: a copy, with the message and a link to the original
    again = tmp_path / "予算要求書の控え.txt"
    again.write_bytes(upload.read_bytes())
    page.get_by_test_id("upload-file").set_input_files(str(again))
    page.get_by_test_id("upload-submit").click()
    copy_line = page.get_by_test_id("upload-copy")
    copy_line.wait_for()
    assert "写しとして登録しました" in copy_line.inner_text()
    shot(page, "03-folder-upload")
    copy_href = copy_line.get_by_role("link", name="文書を開く").get_attribute("href")
    # find it by a Japanese word of its text (the index worker's job, run here directly)
    from genpon.search.indexer import drain

    drain(live.ctx)
    page.get_by_role("link", name="検索", exact=True).click()
    page.get_by_test_id("q").fill("舗装")
    page.get_by_test_id("q").press("Enter")
    hit = page.get_by_test_id("hit").first
    hit.wait_for()
    assert page.get_by_test_id("hit").count() == 1  # one row per original, not per copy
    assert hit.get_by_test_id("badge-original").is_visible()
    assert "写し 1件" in hit.get_by_test_id("copies").inner_text()
    assert hit.locator("mark").first.inner_text() == "舗装"
    shot(page, "06-search")
    # open the copy, see it is a copy, follow the link to its original
    page.goto(f"{live.url}{copy_href}")
    page.get_by_test_id("copy-of").wait_for()
    assert page.get_by_test_id("badge-copy").first.is_visible()
    shot(page, "04-document-copy")
    page.get_by_test_id("original-link").click()
    page.get_by_test_id("badge-original").first.wait_for()
    assert page.get_by_test_id("doc-title").inner_text() == "道路補修予算要求書"
    assert re.fullmatch(r"[0-9a-f]{64}", page.get_by_test_id("sha256").inner_text())
    assert "写し 1件" in page.get_by_test_id("copies-link").inner_text()
    shot(page, "05-document-original")
    # download is an audited read
    with page.expect_download() as dl:
        page.get_by_test_id("download").click()
    assert dl.value.suggested_filename == "道路補修予算要求書.txt"
    page.context.close()


def test_permission_denial_for_another_organizations_team_folder(browser: Any, live: Live) -> None:
    officer = sign_in(browser, live, "suzuki")
    officer.goto(f"{live.url}/folders")
    href = officer.get_by_role("link", name="道路課チーム").get_attribute("href")
    officer.context.close()
    clerk = sign_in(browser, live, "tanaka")
    clerk.goto(f"{live.url}/folders")
    assert clerk.get_by_role("link", name="道路課チーム").count() == 0
    response = clerk.goto(f"{live.url}{href}")
    assert response is not None and response.status == 404
    assert "閲覧できない" in clerk.content()
    assert clerk.get_by_role("heading", name="ページが見つかりません").is_visible()
    shot(clerk, "09-denied")
    clerk.context.close()


def seed_due_case(live: Live) -> str:
    """A closed case of 2019 (class A0202, 3 years): its official document is due now."""
    from datetime import UTC, date, datetime

    from genpon.records import cases, documents
    from genpon.records.access import SYSTEM_ACTOR
    from genpon.records.documents import ApprovalIn, DepositIn
    from sqlmodel import Session

    ctx = live.ctx
    with Session(ctx.engine) as s:
        case, _folder = cases.create_case(
            s,
            SYSTEM_ACTOR,
            title="平成31年度 出張命令",
            organization_code="SOUMU-SOUMU",
            class_code="A0202",
            case_id_format=ctx.settings.case_id_format,
            timezone=ctx.settings.timezone,
            opened_on=date(2019, 5, 10),
        )
        stager = ctx.store.stager(max_bytes=1 << 20)
        stager.write("出張命令書 令和元年5月 東京出張".encode())
        staged = stager.finish()
        documents.deposit(
            s,
            ctx.store,
            SYSTEM_ACTOR,
            staged,
            DepositIn(
                filename="出張命令書.txt",
                case_id=case.case_id,
                approval=ApprovalIn(approved_on=date(2019, 5, 12), approvers=["総務課長"]),
            ),
            allowed_types=ctx.settings.allowed_types,
            timezone=ctx.settings.timezone,
        )
        cases.close_case(
            s,
            SYSTEM_ACTOR,
            case.case_id,
            timezone=ctx.settings.timezone,
            closed_at=datetime(2019, 12, 20, 3, 0, tzinfo=UTC),
        )
        s.commit()
        return case.case_id


def test_two_officers_create_and_approve_a_disposal_batch(browser: Any, live: Live) -> None:
    case_id = seed_due_case(live)
    first = sign_in(browser, live, "suzuki")
    first.get_by_role("link", name="文書管理").click()
    first.wait_for_url(re.compile(r"/records/due"))
    row = first.get_by_test_id("due-item").filter(has_text="出張命令書")
    row.get_by_role("checkbox").check()
    shot(first, "07-officer-due")
    first.get_by_test_id("batch-title").fill(f"{case_id} 廃棄伺い")
    first.get_by_test_id("batch-create").click()
    first.wait_for_url(re.compile(r"/records/batches/\d+$"))
    batch_url = first.url
    assert first.get_by_test_id("batch-status").inner_text() == "審査待ち"
    assert first.get_by_test_id("four-eyes").is_visible()  # the creator cannot approve
    assert first.get_by_test_id("approve").count() == 0
    first.context.close()

    second = sign_in(browser, live, "sato")
    second.goto(batch_url)
    second.get_by_test_id("approve").click()
    second.wait_for_url(re.compile(r"msg=approve"))
    assert second.get_by_test_id("batch-status").inner_text() == "承認済"
    assert "佐藤 次郎" in second.get_by_test_id("batch-decider").inner_text()
    shot(second, "08-officer-batch-approved")
    # the case page tells what happened (経緯), in Japanese dates
    second.goto(f"{live.url}/cases/{case_id}")
    timeline = second.get_by_test_id("timeline").inner_text()
    assert "案件「平成31年度 出張命令」を作成しました" in timeline
    assert "決裁されました（決裁日 2019年5月12日、決裁者 総務課長）" in timeline
    assert "案件を完結しました" in timeline
    assert "鈴木 一郎が1件の廃棄を起案しました" in timeline
    assert "佐藤 次郎が廃棄・移管を承認しました" in timeline
    assert "完結日 2019年12月20日" in second.content()
    shot(second, "12-case-timeline")
    second.context.close()


def test_auditor_sees_log_checkpoints_fixity_and_verification(browser: Any, live: Live) -> None:
    page = sign_in(browser, live, "yamada")
    page.get_by_role("link", name="監査", exact=True).click()
    page.wait_for_url(re.compile(r"/audit/log"))
    assert page.get_by_test_id("events").locator("tbody tr").count() >= 1
    shot(page, "10-audit-log")
    page.get_by_role("link", name="検証").click()
    status = page.get_by_test_id("verify-status")
    assert "改ざんは見つかりませんでした" in status.inner_text()
    shot(page, "11-audit-verify")
    page.get_by_role("link", name="完全性検査").click()
    page.get_by_test_id("fixity-runs").wait_for()
    page.get_by_role("link", name="チェックポイント").click()
    page.get_by_test_id("checkpoints").wait_for()
    page.context.close()
