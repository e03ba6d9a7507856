"""In headless Chromium: a clerk opens a PDF and sees page 1 drawn, turns pages with the
buttons and the keyboard, zooms; the thumbnail in the folder list is drawn too."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.preview import files
from tests.web.conftest import Live, browser, live, shot  # noqa: F401  (fixtures)
from tests.web.test_e2e_browser import sign_in

pytestmark = pytest.mark.browser


def drawn(img: Any) -> int:
    img.page.wait_for_function("el => el.complete && el.naturalWidth > 0", arg=img.element_handle())
    return int(img.evaluate("el => el.naturalWidth"))


def test_document_page_renders_pages(browser: Any, live: Live) -> None:  # noqa: F811
    auth = {"Authorization": f"Bearer {live.keys['tanaka']}"}
    folders = httpx.get(f"{live.url}/api/v1/folders?kind=team", headers=auth).json()["data"]
    team = next(f["id"] for f in folders if f["name"] == "財政課チーム")
    r = httpx.post(
        f"{live.url}/api/v1/documents",
        files={"file": ("閲覧テスト.pdf", files.pdf(3), "application/pdf")},
        data={"folder_id": str(team)},
        headers=auth,
    )
    assert r.status_code == 201, r.text
    doc = r.json()["id"]
    page = sign_in(browser, live, "tanaka")
    page.goto(f"{live.url}/documents/{doc}")
    img = page.get_by_test_id("page-image")
    assert drawn(img) == 800
    assert img.get_attribute("alt") == "1 ページ目（全 3 ページ）"
    shot(page, "viewer-01-page1")
    page.get_by_role("link", name="次のページ ›").click()
    page.wait_for_function(
        "() => document.querySelector('[data-testid=page-image]').src.includes('/pages/2.png')"
    )
    assert drawn(img) == 800 and page.get_by_test_id("page-input").input_value() == "2"
    # the keyboard: → turns the page, + zooms in
    page.locator(".viewer-page").focus()
    page.keyboard.press("ArrowRight")
    page.wait_for_function(
        "() => document.querySelector('[data-testid=page-image]').src.includes('/pages/3.png')"
    )
    page.keyboard.press("+")
    page.wait_for_function(
        "() => document.querySelector('[data-testid=page-image]').src.includes('width=1200')"
    )
    assert drawn(img) == 1200
    assert "page=3" in page.url
    page.get_by_label("ページ", exact=True).fill("1")
    page.get_by_label("ページ", exact=True).press("Enter")
    page.wait_for_function(
        "() => document.querySelector('[data-testid=page-image]').src.includes('/pages/1.png')"
    )
    shot(page, "viewer-02-zoomed")
    # the folder list shows the first page small, loaded lazily
    page.goto(f"{live.url}/folders/{team}")
    thumb = page.locator(f'img.thumb[src="/api/v1/documents/{doc}/thumbnail.png"]')
    assert thumb.get_attribute("loading") == "lazy"
    thumb.scroll_into_view_if_needed()
    assert drawn(thumb) == 160
    page.context.close()
