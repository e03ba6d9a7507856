"""Screens for people, not machines: audit events and file types in Japanese, search hits named
by their case's title, a folder's count that follows an upload, a case page with its holds."""

from __future__ import annotations

import re
from typing import Any

import pytest
from genpon.api.web.render import ACTION_JA, mime_label
from genpon.records.audit.actions import AuditAction
from genpon.retention import holding
from sqlmodel import Session

from tests.retention.helpers import actor, make_case
from tests.web.conftest import Live, shot
from tests.web.test_e2e_browser import sign_in


def test_every_audit_action_has_a_japanese_name() -> None:
    assert set(ACTION_JA) == set(AuditAction)
    assert all(label and not label.isascii() for label in ACTION_JA.values())


def test_file_types_read_as_people_know_them() -> None:
    assert mime_label("application/pdf") == "PDF文書"
    assert (
        mime_label("application/vnd.openxmlformats-officedocument.wordprocessingml.document")
        == "Word文書"
    )
    assert mime_label("application/msword") == "Word文書"
    assert mime_label("image/png") == "画像（PNG）"
    assert mime_label("text/plain; charset=utf-8") == "テキスト"
    assert mime_label("application/x-unknown") == "application/x-unknown"


@pytest.mark.browser
def test_audit_log_and_document_page_speak_japanese(browser: Any, live: Live) -> None:
    _case, ids = make_case(live.ctx, docs=1, closed=None, title="監査ログ確認用の案件")
    page = sign_in(browser, live, "yamada")
    page.goto(f"{live.url}/audit/log")
    events = page.get_by_test_id("events")
    events.wait_for()
    text = events.inner_text()
    assert "文書の登録" in text and "案件の作成" in text
    assert not re.search(r"\b(document|case|retention)\.[a-z_]+\b", text)  # no raw codes
    assert "を登録しました" in text  # the timeline's sentence
    page.get_by_test_id("action-filter").select_option(label="文書の登録")
    page.get_by_role("button", name="検索").click()
    page.wait_for_url(re.compile(r"action=document\.deposited"))
    actions = page.get_by_test_id("event-action").all_inner_texts()
    assert actions and all(a.startswith("文書の登録") for a in actions)
    shot(page, "30-audit-log-japanese")
    page.goto(f"{live.url}/documents/{ids[0]}")
    assert page.get_by_test_id("mime-label").inner_text().startswith("テキスト")
    page.context.close()


@pytest.mark.browser
def test_search_hit_names_its_case_by_title(browser: Any, live: Live) -> None:
    from genpon.search.indexer import drain

    case_id, _ids = make_case(
        live.ctx,
        docs=1,
        closed=None,
        title="令和8年度 橋梁点検委託",
        contents=["橋梁の定期点検を委託する仕様書。鋼製支承の腐食を調べる。".encode()],
    )
    drain(live.ctx)
    page = sign_in(browser, live, "suzuki")
    page.get_by_test_id("q").fill("支承")
    page.get_by_test_id("q").press("Enter")
    hit = page.get_by_test_id("hit").first
    hit.wait_for()
    case_link = hit.get_by_test_id("hit-case")
    assert case_link.inner_text() == "令和8年度 橋梁点検委託"
    assert case_link.get_attribute("href") == f"/cases/{case_id}"
    shot(page, "31-search-case-title")
    page.context.close()


@pytest.mark.browser
def test_folder_count_follows_an_upload(browser: Any, live: Live, tmp_path: Any) -> None:
    page = sign_in(browser, live, "tanaka")
    page.goto(f"{live.url}/folders")
    page.get_by_role("link", name="財政課チーム").click()
    count = page.get_by_test_id("doc-count")
    before = int(re.sub(r"\D", "", count.inner_text()))
    upload = tmp_path / "件数確認.txt"
    upload.write_text("件数が更新されることを確かめる文書。", "utf-8")
    page.get_by_test_id("upload-file").set_input_files(str(upload))
    page.get_by_test_id("upload-submit").click()
    page.get_by_test_id("upload-original").wait_for()
    page.wait_for_function(
        "n => document.querySelector('[data-testid=doc-count]').textContent.includes(n)",
        arg=f"（{before + 1}）",
    )
    assert page.get_by_test_id("folder-docs").locator("tbody tr").count() == before + 1
    page.context.close()


@pytest.mark.browser
def test_case_page_shows_its_holds(browser: Any, live: Live) -> None:
    case_id, ids = make_case(live.ctx, docs=2, title="情報公開請求の対象案件")
    with Session(live.ctx.engine) as s:
        holding.place_hold(
            s,
            actor(live.ctx, "suzuki"),
            scope="document",
            ref=ids[1],
            hold_type="disclosure",
            reason="開示請求第12号",
        )
        s.commit()
    officer = sign_in(browser, live, "suzuki")
    officer.goto(f"{live.url}/cases/{case_id}")
    holds = officer.get_by_test_id("case-hold")
    assert holds.count() == 1
    assert "開示請求・文書「文書1」：開示請求第12号" in holds.inner_text()
    shot(officer, "32-case-holds")
    officer.context.close()
