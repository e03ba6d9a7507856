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


def test_phone_photo_on_its_side_is_shown_upright_with_its_boxes(
    client: Any,
    demo: Any,
    ctx: Any,
    put: Any,  # noqa: F811
) -> None:
    """A photo stored sideways with an EXIF orientation tag (6: turn 90° clockwise to view):
    the page image is upright, and the marked word is where it is on that upright page."""
    upright = render(HORIZONTAL, dpi=300)
    exif = Image.Exif()
    exif[0x0112] = 6
    buf = io.BytesIO()
    upright.transpose(Image.Transpose.ROTATE_90).convert("RGB").save(
        buf, "JPEG", quality=92, exif=exif, dpi=(300, 300)
    )
    doc = put(buf.getvalue(), "窓口の写真.jpg", "image/jpeg")
    drain(ctx)
    auth = demo.auth("tanaka")
    r = client.get(f"/api/v1/documents/{doc}/pages/1.png?width=800", headers=auth)
    assert r.status_code == 200, r.text
    shown = Image.open(io.BytesIO(r.content))
    ratio = upright.height / upright.width
    assert shown.width == 800 and abs(shown.height - 800 * ratio) <= 2, shown.size
    r = client.get(
        f"/api/v1/documents/{doc}/pages/1/highlights", params={"q": "市民税"}, headers=auth
    )
    body = r.json()
    assert body["positions"] is True and len(body["boxes"]) == 1, body
    [box] = body["boxes"]
    # on the first line, near the top left of the upright page (0.5 in in, 12 pt type)
    assert box["y"] < 0.2 and box["x"] < 0.5 and box["w"] > box["h"], box
    # and the page image shows ink inside the box, none in the same-size box below the text
    gray = shown.convert("L")

    def ink(top: float) -> int:
        x0, y0 = round(box["x"] * shown.width), round(top * shown.height)
        x1, y1 = round((box["x"] + box["w"]) * shown.width), round((top + box["h"]) * shown.height)
        return sum(1 for v in gray.crop((x0, y0, x1, y1)).getdata() if v < 128)

    assert ink(box["y"]) > 20 and ink(0.9) == 0
