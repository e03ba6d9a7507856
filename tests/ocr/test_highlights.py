"""Search terms marked on OCR'd page images: the word boxes OCR stores, the highlights API
(authorized and audited like the page image) and the viewer's overlay on the document page,
opened from a search at the first page where the terms are."""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any

import pytest
from genpon.records.models import AuditEvent
from genpon.search.indexer import drain
from PIL import Image
from sqlmodel import Session, select

from tests.ocr.scans import HORIZONTAL, render, save_pdf
from tests.preview.test_api import put, team  # noqa: F401  (fixtures)
from tests.web.helpers import HTML, sign_in

pytestmark = pytest.mark.slow

TERM = "固定資産税"
SECOND = ["固定資産税の納付について", "納付書は五月に送付します。"]


@pytest.fixture
def scan(tmp_path: Path, put: Any, ctx: Any) -> int:  # noqa: F811
    """A two-page image-only PDF, page 2 (slightly turned) starting with ``TERM``; indexed."""
    pages = [render(HORIZONTAL, dpi=300), render(SECOND, dpi=300, angle=1.0, noise=0.001)]
    data = save_pdf(pages, tmp_path / "scan.pdf", 300).read_bytes()
    doc = int(put(data, "納付のお知らせ.pdf", "application/pdf"))
    drain(ctx)
    return doc


def test_highlights_api(client: Any, demo: Any, ctx: Any, scan: int) -> None:
    auth = demo.auth("tanaka")
    r = client.get(f"/api/v1/documents/{scan}/pages/2/highlights", params={"q": TERM}, headers=auth)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["positions"] is True and len(body["boxes"]) == 1, body
    [box] = body["boxes"]
    # drawn 0.5 in from the left and the top of a 4.1 × 5.8 in page, 5 characters of 12 pt
    assert abs(box["x"] - 0.5 / 4.1) < 0.03 and abs(box["y"] - 0.5 / 5.8) < 0.03, box
    assert 0.15 < box["w"] < 0.3 and 0.015 < box["h"] < 0.06, box
    # two terms, one on the page
    r = client.get(
        f"/api/v1/documents/{scan}/pages/2/highlights", params={"q": "納付 道路"}, headers=auth
    )
    assert len(r.json()["boxes"]) == 2  # 納付 on both lines
    r = client.get(f"/api/v1/documents/{scan}/pages/1/highlights", params={"q": TERM}, headers=auth)
    assert r.json()["positions"] is True and r.json()["boxes"] == []
    # authorized like the page image: hidden is 404; a query is required
    url = f"/api/v1/documents/{scan}/pages/2/highlights"
    assert client.get(url, params={"q": TERM}, headers=demo.auth("ito")).status_code == 404
    assert client.get(url, headers=auth).status_code == 422
    with Session(ctx.engine) as s:
        events = s.exec(
            select(AuditEvent).where(
                AuditEvent.action == "document.previewed", AuditEvent.target_id == str(scan)
            )
        ).all()
    # the first is recorded; the others go with page images of the same hour (recorded anyway)
    assert [e.details["view"] for e in events] == ["highlights"]
    assert all(e.actor == "tanaka" for e in events)


def test_text_document_has_no_positions(client: Any, demo: Any, ctx: Any, put: Any) -> None:  # noqa: F811
    doc = put("固定資産税の納付".encode(), "メモ.txt", "text/plain")
    drain(ctx)
    r = client.get(
        f"/api/v1/documents/{doc}/pages/1/highlights",
        params={"q": TERM},
        headers=demo.auth("tanaka"),
    )
    assert r.status_code == 200 and r.json()["positions"] is False and r.json()["boxes"] == []


def test_viewer_marks_the_terms_on_the_page(client: Any, demo: Any, scan: int) -> None:
    sign_in(client, "tanaka")
    # found by search (app.js adds ?q= to the result's link) ...
    html = client.get("/", params={"q": TERM}, headers=HTML).text
    assert f'href="/documents/{scan}"' in html
    # ... the document opens at page 2, where the term is, with a box over it
    html = client.get(f"/documents/{scan}", params={"q": TERM}, headers=HTML).text
    assert f"/api/v1/documents/{scan}/pages/2.png?width=800" in html
    rects = re.findall(r'<rect x="(\d+)" y="(\d+)" width="(\d+)" height="(\d+)"', html)
    assert len(rects) == 1, html
    x, y, _w, _h = map(int, rects[0])
    assert abs(x / 10000 - 0.5 / 4.1) < 0.03 and abs(y / 10000 - 0.5 / 5.8) < 0.03
    assert "1 か所表示しています" in html
    html = client.get(f"/documents/{scan}", params={"q": TERM, "page": 1}, headers=HTML).text
    assert "<rect" not in html and f"「{TERM}」はこのページにありません。" in html
    html = client.get(f"/documents/{scan}", headers=HTML).text  # no query: page 1, no marks
    assert (
        f"/api/v1/documents/{scan}/pages/1.png" in html and 'data-testid="hit-status"' not in html
    )
    # the box is on the rendered page: the image has ink under it
    png = client.get(f"/api/v1/documents/{scan}/pages/2.png?width=800").content
    im = Image.open(io.BytesIO(png)).convert("L")
    x0, y0 = x * im.width // 10000, y * im.height // 10000
    w, h = int(rects[0][2]) * im.width // 10000, int(rects[0][3]) * im.height // 10000
    dark = sum(im.crop((x0, y0, x0 + w, y0 + h)).histogram()[:128])
    assert dark > 0.05 * w * h, (dark, w, h)
