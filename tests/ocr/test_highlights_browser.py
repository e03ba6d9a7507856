"""In headless Chromium: a clerk opens an OCR'd scan from a search and sees the search term
marked over the page image; turning the page fetches the marks of the new page."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from genpon.search.indexer import drain

from tests.ocr.scans import HORIZONTAL, render, save_pdf
from tests.ocr.test_highlights import SECOND, TERM
from tests.web.conftest import Live, browser, live, shot  # noqa: F401  (fixtures)
from tests.web.test_e2e_browser import sign_in

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_search_term_marked_on_the_scan(browser: Any, live: Live, tmp_path: Path) -> None:  # noqa: F811
    auth = {"Authorization": f"Bearer {live.keys['tanaka']}"}
    folders = httpx.get(f"{live.url}/api/v1/folders?kind=team", headers=auth).json()["data"]
    team = next(f["id"] for f in folders if f["name"] == "財政課チーム")
    pages = [render(HORIZONTAL, dpi=300), render(SECOND, dpi=300, angle=1.0)]
    data = save_pdf(pages, tmp_path / "scan.pdf", 300).read_bytes()
    r = httpx.post(
        f"{live.url}/api/v1/documents",
        files={"file": ("納付のお知らせ.pdf", data, "application/pdf")},
        data={"folder_id": str(team)},
        headers=auth,
    )
    assert r.status_code == 201, r.text
    doc = r.json()["id"]
    drain(live.ctx)
    page = sign_in(browser, live, "tanaka")
    page.goto(f"{live.url}/?q={TERM}")
    page.locator(f'.hit h3 a[href^="/documents/{doc}?q="]').click()  # app.js adds the query
    img = page.get_by_test_id("page-image")
    img.page.wait_for_function("el => el.complete && el.naturalWidth > 0", arg=img.element_handle())
    assert "/pages/2.png" in (img.get_attribute("src") or "")
    box = page.locator('[data-testid="hit-box"]')
    assert box.count() == 1
    shot(page, "viewer-03-ocr-highlight")
    # the mark lies on the image, near its top left, where the term was drawn
    i, b = img.bounding_box(), box.bounding_box()
    assert i and b and i["width"] > 100
    assert abs((b["x"] - i["x"]) / i["width"] - 0.5 / 4.1) < 0.03, (i, b)
    assert abs((b["y"] - i["y"]) / i["height"] - 0.5 / 5.8) < 0.03, (i, b)
    # page 1 has no match: its marks are fetched and none drawn; back on page 2 it is again
    page.get_by_role("link", name="‹ 前のページ").click()
    page.wait_for_function("() => !document.querySelector('[data-testid=hit-box]')")
    page.get_by_test_id("hit-status").get_by_text("ありません").wait_for()
    page.get_by_role("link", name="次のページ ›").click()
    page.wait_for_function("() => document.querySelectorAll('[data-testid=hit-box]').length == 1")
    page.context.close()
