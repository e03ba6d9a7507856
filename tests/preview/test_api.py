"""The viewer through the API: page images, thumbnails and outlines of PDFs, images and text;
bad input answered with a clear status; authorization like a download; audit events; the
derived cache rebuilt when lost."""

from __future__ import annotations

import io
import itertools
import shutil
import time
from typing import Any

import pytest
from genpon.records.audit.format import event_hash
from genpon.records.models import AuditEvent, Folder
from genpon.search import preview
from genpon.search.indexer import drain
from PIL import Image
from sqlmodel import Session, select

from tests.preview import files
from tests.records.helpers import deposit

BODY = (
    "seq",
    "at",
    "actor",
    "action",
    "target_type",
    "target_id",
    "case_id",
    "details",
    "prev_hash",
)


@pytest.fixture
def team(ctx: Any, demo: Any) -> int:
    with Session(ctx.engine) as s:
        return s.exec(select(Folder.id).where(Folder.name == "財政課チーム")).one()  # type: ignore[return-value]


@pytest.fixture
def put(client: Any, demo: Any, team: int) -> Any:
    def put(data: bytes, filename: str, content_type: str) -> int:
        r = deposit(
            client,
            demo.auth("tanaka"),
            data,
            filename=filename,
            folder_id=team,
            content_type=content_type,
        )
        assert r.status_code == 201, r.text
        return int(r.json()["id"])

    return put


def png_of(r: Any) -> Image.Image:
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "image/png"
    assert "no-store" in r.headers["cache-control"]  # the security middleware sets it
    im = Image.open(io.BytesIO(r.content))
    im.load()
    return im


def near(pixel: Any, color: tuple[int, int, int]) -> bool:
    """Same color give or take compression (Pillow stores PDF pages and JPEGs lossily)."""
    return sum(abs(a - b) for a, b in zip(pixel[:3], color, strict=True)) < 30


def previewed(ctx: Any, document_id: int) -> list[AuditEvent]:
    with Session(ctx.engine) as s:
        return list(
            s.exec(
                select(AuditEvent).where(
                    AuditEvent.action == "document.previewed",
                    AuditEvent.target_id == str(document_id),
                )
            ).all()
        )


def test_pdf_pages_at_allowed_widths(client: Any, demo: Any, put: Any) -> None:
    doc = put(files.pdf(3), "三ページ.pdf", "application/pdf")
    auth = demo.auth("tanaka")
    info = client.get(f"/api/v1/documents/{doc}/preview", headers=auth).json()
    assert (info["kind"], info["status"], info["pages"], info["text"]) == ("pdf", "ok", 3, None)
    for page, color in ((1, files.COLORS[0]), (3, files.COLORS[2])):
        r = client.get(f"/api/v1/documents/{doc}/pages/{page}.png?width=800", headers=auth)
        im = png_of(r).convert("RGB")
        assert im.width == 800 and abs(im.height - round(800 * 842 / 595)) <= 1
        assert near(im.getpixel((400, 600)), color)  # the right page
        assert r.headers["x-page-count"] == "3"
    # a width between the steps is rounded up; beyond the largest it is the largest
    assert (
        png_of(client.get(f"/api/v1/documents/{doc}/pages/1.png?width=900", headers=auth)).width
        == 1200
    )
    assert (
        png_of(client.get(f"/api/v1/documents/{doc}/pages/1.png?width=5000", headers=auth)).width
        == 1600
    )
    thumb = png_of(client.get(f"/api/v1/documents/{doc}/thumbnail.png", headers=auth))
    assert thumb.width == 160
    # beyond the last page: 404 with the count; absurd numbers: 422, never a 500
    r = client.get(f"/api/v1/documents/{doc}/pages/4.png", headers=auth)
    assert r.status_code == 404 and r.json()["error"]["code"] == "page_not_found"
    assert r.json()["error"]["details"] == {"page": 4, "pages": 3}
    for bad in ("0", str(2**70), "x"):
        r = client.get(f"/api/v1/documents/{doc}/pages/{bad}.png", headers=auth)
        assert r.status_code == 422, (bad, r.text)
    r = client.get(f"/api/v1/documents/{doc}/pages/1.png?width=0", headers=auth)
    assert r.status_code == 422


def test_images_multipage_tiff_and_formats(client: Any, demo: Any, put: Any) -> None:
    auth = demo.auth("tanaka")
    tif = put(files.tiff_pages(3), "fax.tif", "image/tiff")
    info = client.get(f"/api/v1/documents/{tif}/preview", headers=auth).json()
    assert (info["kind"], info["status"], info["pages"]) == ("image", "ok", 3)
    for page in (1, 2, 3):
        im = png_of(client.get(f"/api/v1/documents/{tif}/pages/{page}.png", headers=auth))
        assert im.width == 400  # never enlarged beyond the original
        assert near(im.convert("RGB").getpixel((200, 300)), files.COLORS[page - 1])
    r = client.get(f"/api/v1/documents/{tif}/pages/4.png", headers=auth)
    assert r.status_code == 404 and r.json()["error"]["code"] == "page_not_found"
    for fmt, mime in (
        ("PNG", "image/png"),
        ("JPEG", "image/jpeg"),
        ("WEBP", "image/webp"),
        ("GIF", "image/gif"),
    ):
        doc = put(files.image(fmt, color=files.COLORS[1]), f"写真.{fmt.lower()}", mime)
        im = png_of(client.get(f"/api/v1/documents/{doc}/pages/1.png?width=800", headers=auth))
        assert im.size == (800, 560)
        assert near(im.convert("RGB").getpixel((400, 280)), files.COLORS[1]), fmt
        assert (
            png_of(client.get(f"/api/v1/documents/{doc}/thumbnail.png", headers=auth)).width == 160
        )


@pytest.mark.parametrize(
    ("data", "filename", "mime", "code"),
    [
        (files.png_bomb(), "bomb.png", "image/png", "image_too_large"),
        (files.broken_tiff(), "broken.tif", "image/tiff", "image_broken"),
        (files.garbage_tiff(), "garbage.tif", "image/tiff", "image_broken"),
        (files.encrypted_pdf(), "秘密.pdf", "application/pdf", "pdf_encrypted"),
        (
            b"%PDF-1.7\n1 0 obj\n<< /Type /Catalog >>\nendobj\n%%EOF\n",
            "壊れた.pdf",
            "application/pdf",
            "pdf_broken",
        ),
    ],
    ids=["bomb", "broken-tiff", "garbage-tiff", "encrypted-pdf", "broken-pdf"],
)
def test_bad_input_gets_a_clear_status(
    client: Any, demo: Any, put: Any, ctx: Any, data: bytes, filename: str, mime: str, code: str
) -> None:
    auth = demo.auth("tanaka")
    doc = put(data, filename, mime)
    started = time.monotonic()
    info = client.get(f"/api/v1/documents/{doc}/preview", headers=auth)
    assert info.status_code == 200
    body = info.json()
    assert (body["status"], body["code"]) == ("failed", code)
    assert body["message"] and not body["message"].isascii()  # a sentence for people
    for url in (f"/api/v1/documents/{doc}/pages/1.png", f"/api/v1/documents/{doc}/thumbnail.png"):
        r = client.get(url, headers=auth)
        assert r.status_code == 422, r.text
        err = r.json()["error"]
        assert err["code"] == code
        assert "/" not in str(err["details"])  # no server paths leak
    assert time.monotonic() - started < 20
    # the download still works and the content is untouched
    r = client.get(f"/api/v1/documents/{doc}/content", headers=auth)
    assert r.status_code == 200 and r.content == data
    assert len(previewed(ctx, doc)) == 1  # the outline only: failed renders are not reads


def test_text_kinds_show_extracted_text(client: Any, demo: Any, put: Any, ctx: Any) -> None:
    auth = demo.auth("tanaka")
    html_doc = b"<html><body><h1>\xe9\x81\x93\xe8\xb7\xaf</h1><script>alert(1)</script><p>a &lt;b&gt;</p></body></html>"
    doc = put(html_doc, "page.html", "text/html")
    info = client.get(f"/api/v1/documents/{doc}/preview", headers=auth).json()
    assert (info["kind"], info["status"], info["code"]) == ("text", "pending", "text_pending")
    drain(ctx)
    info = client.get(f"/api/v1/documents/{doc}/preview", headers=auth).json()
    assert (info["kind"], info["status"], info["pages"]) == ("text", "ok", None)
    assert "道路" in info["text"] and "a <b>" in info["text"]
    assert "alert" not in info["text"]  # the extracted text, not the markup
    r = client.get(f"/api/v1/documents/{doc}/pages/1.png", headers=auth)
    assert r.status_code == 422 and r.json()["error"]["code"] == "no_page_images"
    csv_doc = put("番号,件名\n1,市道補修\n".encode(), "一覧.csv", "text/csv")
    drain(ctx)
    info = client.get(f"/api/v1/documents/{csv_doc}/preview", headers=auth).json()
    assert info["kind"] == "text" and "市道補修" in info["text"]
    zip_doc = put(b"\x00\x01binary\x02" * 10, "data.bin", "application/octet-stream")
    info = client.get(f"/api/v1/documents/{zip_doc}/preview", headers=auth).json()
    assert (info["kind"], info["status"]) == ("none", "unsupported")


def test_hidden_documents_are_404_and_nothing_is_audited(
    client: Any, demo: Any, put: Any, ctx: Any
) -> None:
    doc = put(files.pdf(1), "財政.pdf", "application/pdf")
    for url in ("preview", "pages/1.png", "thumbnail.png"):
        r = client.get(f"/api/v1/documents/{doc}/{url}", headers=demo.auth("ito"))  # 道路課
        assert r.status_code == 404, url
        assert r.json()["error"]["code"] == "document_not_found"
        assert client.get(f"/api/v1/documents/{doc}/{url}").status_code == 401
    assert previewed(ctx, doc) == []
    # nothing was rendered for them either
    assert not (ctx.settings.preview_dir).exists() or not any(
        ctx.settings.preview_dir.rglob("*.png")
    )
    r = client.get("/api/v1/documents/999999/pages/1.png", headers=demo.auth("tanaka"))
    assert r.status_code == 404


def test_every_preview_is_audited(
    client: Any, demo: Any, put: Any, ctx: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    doc = put(files.pdf(2), "監査.pdf", "application/pdf")
    auth = demo.auth("tanaka")
    client.get(f"/api/v1/documents/{doc}/thumbnail.png", headers=auth)
    client.get(f"/api/v1/documents/{doc}/preview", headers=auth)
    client.get(f"/api/v1/documents/{doc}/pages/2.png?width=1200", headers=auth)
    client.get(f"/api/v1/documents/{doc}/pages/2.png?width=1200", headers=auth)  # cached: a read
    # a thumbnail of a document previewed within the hour is not recorded again (search results
    # show 20 of them at a time) ...
    client.get(f"/api/v1/documents/{doc}/thumbnail.png", headers=auth)
    events = previewed(ctx, doc)
    assert [e.actor for e in events] == ["tanaka"] * 4
    assert [e.details.get("view") for e in events] == ["thumbnail", "outline", "page", "page"]
    assert events[2].details["page"] == 2 and events[2].details["width"] == 1200
    # ... after that it is
    monkeypatch.setattr(preview, "QUIET_SECONDS", 0)
    client.get(f"/api/v1/documents/{doc}/thumbnail.png", headers=auth)
    events = previewed(ctx, doc)
    assert [e.details.get("view") for e in events][-1] == "thumbnail" and len(events) == 5
    # in the hash chain like every other event
    with Session(ctx.engine) as s:
        chain = list(s.exec(select(AuditEvent).order_by(AuditEvent.seq)).all())  # type: ignore[arg-type]
    for before, after in itertools.pairwise(chain):
        assert after.prev_hash == before.hash
    for e in events:
        body = {k: getattr(e, k) for k in BODY}
        assert event_hash(body) == e.hash


def test_cache_is_derived_and_rebuilt(client: Any, demo: Any, put: Any, ctx: Any) -> None:
    data = files.pdf(2)
    doc = put(data, "再生成.pdf", "application/pdf")
    auth = demo.auth("tanaka")
    first = client.get(f"/api/v1/documents/{doc}/pages/2.png?width=800", headers=auth)
    assert first.status_code == 200
    root = ctx.settings.data_dir / "derived" / "previews"
    assert ctx.settings.preview_dir == root
    cached = sorted(p.name for p in root.rglob("*") if p.is_file())
    assert cached == ["outline.json", "p2-w800.png"]
    assert not any(p.name.startswith(".") for p in root.rglob("*"))  # no temporary leftovers
    shutil.rmtree(root)
    again = client.get(f"/api/v1/documents/{doc}/pages/2.png?width=800", headers=auth)
    assert again.status_code == 200 and again.content == first.content
    assert (root / files_sha(client, auth, doc)[:2]).is_dir()
    # the blob is the original bytes, never a rendering
    sha = files_sha(client, auth, doc)
    assert ctx.store.hash_blob(sha) == sha
    assert client.get(f"/api/v1/documents/{doc}/content", headers=auth).content == data
    # a damaged cache entry is not served: an outline that does not parse is worked out again
    (root / sha[:2] / sha / "outline.json").write_text("{broken", "utf-8")
    info = client.get(f"/api/v1/documents/{doc}/preview", headers=auth).json()
    assert (info["status"], info["pages"]) == ("ok", 2)


def files_sha(client: Any, auth: dict[str, str], doc: int) -> str:
    return str(client.get(f"/api/v1/documents/{doc}", headers=auth).json()["sha256"])


def test_openapi_declares_the_viewer(app: Any) -> None:
    paths = app.openapi()["paths"]
    page = paths["/api/v1/documents/{document_id}/pages/{page}.png"]["get"]
    assert set(page["responses"]["200"]["content"]) == {"image/png"}
    assert {"401", "404", "422"} <= set(page["responses"])
    names = {p["name"] for p in page["parameters"]}
    assert names == {"document_id", "page", "width"}
    thumb = paths["/api/v1/documents/{document_id}/thumbnail.png"]["get"]
    assert set(thumb["responses"]["200"]["content"]) == {"image/png"}
    outline = paths["/api/v1/documents/{document_id}/preview"]["get"]
    assert "application/json" in outline["responses"]["200"]["content"]


def test_a_rotated_page_gets_the_width_asked_for(client: Any, demo: Any, put: Any) -> None:
    doc = put(files.rotated_pdf(), "横向き.pdf", "application/pdf")
    r = client.get(f"/api/v1/documents/{doc}/pages/1.png?width=800", headers=demo.auth("tanaka"))
    im = png_of(r)
    assert im.width == 800 and abs(im.height - round(800 * 595 / 842)) <= 1  # landscape
