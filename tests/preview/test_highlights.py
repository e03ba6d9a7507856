"""Search terms marked on the pages of a PDF with a text layer: word boxes from poppler
(``pdftotext -bbox-layout``), kept in the derived cache and rebuilt when lost; the document page
draws them over the page image."""

from __future__ import annotations

import re
from typing import Any

from genpon.search.preview import WORDS, cache_dir

from tests.preview.test_api import put, team  # noqa: F401  (fixtures)
from tests.search.pdfs import cjk_pdf
from tests.web.helpers import HTML, sign_in

LINES = ["固定資産税の納付", "第二行の文字"]  # 12 pt glyphs from (50, 780) on a 595 × 842 pt page


def test_text_layer_positions(client: Any, demo: Any, put: Any, ctx: Any) -> None:  # noqa: F811
    data = cjk_pdf(LINES)
    doc = put(data, "納付.pdf", "application/pdf")
    auth = demo.auth("tanaka")
    url = f"/api/v1/documents/{doc}/pages/1/highlights"
    body = client.get(url, params={"q": "固定資産税"}, headers=auth).json()
    assert body["positions"] is True and len(body["boxes"]) == 1, body
    [box] = body["boxes"]
    assert abs(box["x"] - 50 / 595) < 0.002 and abs(box["y"] - 51.7 / 842) < 0.002, box
    assert abs(box["w"] - 5 * 12 / 595) < 0.002 and abs(box["h"] - 12 / 842) < 0.002, box
    # derived and rebuilt: the cached boxes removed, the next request reads them again
    sha = client.get(f"/api/v1/documents/{doc}", headers=auth).json()["sha256"]
    cached = cache_dir(ctx.settings, sha) / WORDS
    assert cached.exists()
    cached.unlink()
    again = client.get(url, params={"q": "文字"}, headers=auth).json()
    assert len(again["boxes"]) == 1 and again["boxes"][0]["y"] > box["y"] and cached.exists()
    assert client.get(url, params={"q": "道路"}, headers=auth).json()["boxes"] == []
    # a page that is not there has no positions
    page2 = f"/api/v1/documents/{doc}/pages/2/highlights"
    body = client.get(page2, params={"q": "文字"}, headers=auth).json()
    assert body["positions"] is False and body["boxes"] == []


def test_document_page_marks_text_layer_terms(client: Any, demo: Any, put: Any) -> None:  # noqa: F811
    doc = put(cjk_pdf(LINES), "納付.pdf", "application/pdf")
    sign_in(client, "tanaka")
    html = client.get(f"/documents/{doc}", params={"q": "納付 文字"}, headers=HTML).text
    rects = re.findall(r'<rect x="(\d+)" y="(\d+)" width="(\d+)" height="(\d+)"', html)
    assert len(rects) == 2, html
    assert "2 か所表示しています" in html
