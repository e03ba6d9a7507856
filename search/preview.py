"""Document viewer: page images and text of a document, rendered on the server.

What a content looks like to the viewer (its *outline*) is one of:

- ``pdf``: pages rendered by poppler's ``pdftoppm``; the page count comes from ``pdfinfo``;
- ``image``: PNG, JPEG, TIFF (multi-page fax TIFFs too), GIF, WebP, BMP, decoded by Pillow with
  ``Image.MAX_IMAGE_PIXELS`` enforced and converted to PNG (the browser never gets the original
  bytes, so a TIFF shows and a hostile file is never handed to it);
- ``text``: text, CSV, HTML, mail and Office files, shown as the text extracted at indexing time
  (``BlobText``; never the raw HTML): the page escapes it;
- ``none``: nothing to show (download the file).

Page images are rendered by :mod:`genpon.search.render`, in bounded child processes, at most
``preview_concurrency`` at once per process. Bad input is a clear status, never a 500 and never
a hang: :class:`PreviewUnavailable` (HTTP 422) carries a machine-readable code
(``pdf_encrypted``, ``pdf_broken``, ``image_too_large``, ``image_broken``, ``render_timeout``,
``render_memory``, ``content_too_large``, ``no_page_images``); a page beyond the last is
``page_not_found`` (404).

Rendered pages live in a derived cache, ``<preview_dir>/<sha[:2]>/<sha>/p<page>-w<width>.png``
(``preview_dir`` is ``<data_dir>/derived/previews`` by default), keyed by the content hash, the
page and the width, written atomically (temporary file, then rename). The cache is never a copy
or version of the document and never touches the blob: delete it and the next request rebuilds
it. Outcomes (page count, or why a content cannot be shown) are cached beside the pages in
``outline.json``.

The service functions authorize a preview exactly like a content read (a document the caller
may not read is 404, a destroyed one 409) and record a ``document.previewed`` audit event after
the render succeeded: the outline and every page image each time; a thumbnail, or the search
terms' positions on a page, only when the person has not previewed the document in the last
hour (``QUIET_SECONDS``: a page of search results shows 20 thumbnails).

Word positions (:mod:`search.word_boxes`) give the boxes of the search terms on a page image
(:func:`page_highlights`, :func:`term_boxes`): of OCR'd pages from ``BlobText.words_z``, of a
PDF's text layer from ``pdftotext -bbox-layout``, cached as ``words.json.z`` beside the pages.
"""

from __future__ import annotations

import contextlib
import html
import json
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import asdict, dataclass
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from genpon.core.clock import utcnow
from genpon.core.errors import Conflict, InvalidInput, NotFound, Unavailable
from genpon.records import audit, documents
from genpon.records.audit.actions import AuditAction
from genpon.records.audit.format import format_time
from genpon.records.models import AuditEvent, BlobText, Case, Document
from genpon.search import word_boxes
from genpon.search.analyzer import normalize
from genpon.search.indexer import stored_text
from genpon.search.render import (
    OUTLINE_VERSION,
    Outline,
    PreviewUnavailable,
    file_outline,
    message_for,
    render_file,
    render_slot,
)
from genpon.search.word_boxes import Box, Line
from sqlmodel import Session, col, select

if TYPE_CHECKING:
    from genpon.core.settings import Settings
    from genpon.records.access import Actor
    from genpon.storage.base import BlobStore

KINDS = ("pdf", "image", "text", "none")
# A thumbnail or the highlights of a document the person previewed less than this long ago are
# not recorded again (a page of search results shows 20 thumbnails, each view of it would add
# 20 events); the outline and every page image are recorded each time.
QUIET_SECONDS = 3600
OUTLINE = "outline.json"
WORDS = "words.json.z"  # word boxes of a PDF's text layer (search.word_boxes)

# Content types whose extracted text is the preview (besides text/*).
TEXT_TYPES = (
    "application/json",
    "application/x-ndjson",
    "application/xml",
    "application/csv",
    "application/xhtml+xml",
    "message/rfc822",
    "application/msword",
    "application/vnd.ms-excel",
    "application/vnd.ms-powerpoint",
    "application/vnd.ms-office",
    "application/vnd.openxmlformats-officedocument.",
)


@dataclass
class Preview:
    """The answer of :func:`describe`: the outline of a document plus its text (text kinds)."""

    document_id: int
    sha256: str
    mime_type: str
    kind: str
    status: str
    pages: int | None
    code: str | None
    message: str | None
    text: str | None = None
    text_truncated: bool = False


@dataclass
class PageImage:
    png: bytes
    page: int
    pages: int
    width: int  # the width rendered (one of ``preview_widths``, or less for very tall pages)


# --- kinds --------------------------------------------------------------------------------------

_IMAGE_MAGIC = (
    b"\x89PNG\r\n\x1a\n",
    b"\xff\xd8\xff",  # JPEG
    b"II*\x00",  # TIFF little endian
    b"MM\x00*",  # TIFF big endian
    b"GIF87a",
    b"GIF89a",
    b"BM",  # BMP
)


def sniff_kind(head: bytes, mime: str) -> str:
    """pdf | image | text | none, from the first bytes of the content (then its type)."""
    if b"%PDF-" in head[:1024]:
        return "pdf"
    if head.startswith(_IMAGE_MAGIC) or (head[:4] == b"RIFF" and head[8:12] == b"WEBP"):
        return "image"
    mime = mime.split(";")[0].strip().lower()
    if mime.startswith("text/") or mime.startswith(TEXT_TYPES):
        return "text"
    if head.startswith((b"PK\x03\x04", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1")):
        return "text"  # Office files: their extracted text
    return "none"


# --- the cache ----------------------------------------------------------------------------------


def cache_dir(settings: Settings, sha256: str) -> Path:
    return settings.preview_dir / sha256[:2] / sha256


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=path.suffix)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _read_outline(settings: Settings, sha256: str) -> Outline | None:
    try:
        data = json.loads((cache_dir(settings, sha256) / OUTLINE).read_text("utf-8"))
        outline = Outline(**data)
    except (OSError, ValueError, TypeError):
        return None
    return outline if outline.version == OUTLINE_VERSION else None


def _write_outline(settings: Settings, sha256: str, outline: Outline) -> None:
    body = json.dumps(asdict(outline), ensure_ascii=False).encode("utf-8")
    _write_atomic(cache_dir(settings, sha256) / OUTLINE, body)


def allowed_width(settings: Settings, width: int | None) -> int:
    """The smallest configured width at least ``width`` (the largest when none is)."""
    widths = sorted(w for w in settings.preview_widths if w > 0) or [800]
    if width is None:
        return widths[1] if len(widths) > 1 else widths[0]
    return next((w for w in widths if w >= width), widths[-1])


# --- outlines and pages (no database, no authorization) ---------------------------------------


def content_outline(
    store: BlobStore, settings: Settings, sha256: str, mime: str, session: Session | None = None
) -> Outline:
    """The outline of a content: from the cache, else worked out (and cached for pdf/image)."""
    cached = _read_outline(settings, sha256)
    if cached is not None:
        return cached
    try:
        with store.open(sha256) as f:
            head = f.read(4096)
        size = store.size(sha256)
    except FileNotFoundError:
        raise NotFound(
            "content_missing",
            "文書の内容が保管領域に見つかりません（監査担当に連絡してください）。",
            {"sha256": sha256},
        ) from None
    kind = sniff_kind(head, mime)
    if kind == "text":
        return _text_outline(session, sha256)
    if kind == "none":
        return Outline("none", "unsupported", code="unsupported")
    if size > settings.preview_max_bytes:
        outline = Outline(kind, "failed", code="content_too_large", reason=f"{size} bytes")
    else:
        with render_slot(settings), store.as_file(sha256, settings.spool_dir) as path:
            outline = file_outline(kind, path, settings)
    if outline.code != "render_timeout":  # a timeout may be the machine's load: try again later
        _write_outline(settings, sha256, outline)
    return outline


def _text_outline(session: Session | None, sha256: str) -> Outline:
    row = session.get(BlobText, sha256) if session is not None else None
    if row is None:
        return Outline("text", "pending", code="text_pending")
    if row.status in ("ok", "empty"):
        return Outline("text", "ok", pages=None)
    if row.status == "unsupported":
        return Outline("none", "unsupported", code="unsupported", reason=row.reason)
    return Outline("text", "failed", code="text_failed", reason=row.reason)


def render_page(
    store: BlobStore,
    settings: Settings,
    sha256: str,
    mime: str,
    page: int,
    width: int | None = None,
) -> PageImage:
    """Page ``page`` of a content as PNG at an allowed width: from the cache or rendered (and
    cached). Raises :class:`PreviewUnavailable` (422) or ``page_not_found`` (404)."""
    if not settings.preview_enabled:
        raise Unavailable("preview_disabled", "文書の表示は無効に設定されています。")
    width = allowed_width(settings, width)
    outline = content_outline(store, settings, sha256, mime)
    if outline.kind not in ("pdf", "image"):
        raise PreviewUnavailable(
            "no_page_images", message_for("no_page_images"), {"kind": outline.kind}
        )
    if outline.status != "ok" or not outline.pages:
        code = outline.code or "render_failed"
        raise PreviewUnavailable(code, message_for(code, settings))
    if page > outline.pages:
        raise NotFound(
            "page_not_found",
            f"{page} ページ目はありません（全 {outline.pages} ページ）。",
            {"page": page, "pages": outline.pages},
        )
    target = cache_dir(settings, sha256) / f"p{page}-w{width}.png"
    with contextlib.suppress(FileNotFoundError):
        return PageImage(target.read_bytes(), page, outline.pages, width)
    with render_slot(settings), store.as_file(sha256, settings.spool_dir) as path:
        target.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=target.parent, prefix=".render-") as tmp:
            out = Path(tmp) / "page.png"
            render_file(outline.kind, path, page, width, out, settings)
            png = out.read_bytes()
            if not png.startswith(b"\x89PNG"):
                raise PreviewUnavailable("render_failed", message_for("render_failed"))
            os.replace(out, target)
    return PageImage(png, page, outline.pages, width)


# --- highlighting -------------------------------------------------------------------------------


def highlight_html(text: str, query: str | None) -> str:
    """``text`` escaped for HTML, every occurrence of the query's terms in ``<mark>`` (matched
    on the normalized text, as search does: full-width and half-width alike)."""
    needles = sorted(set(_needles(query)), key=len, reverse=True)
    if not needles:
        return html.escape(text)
    chars: list[str] = []
    idx: list[int] = []
    for i, ch in enumerate(text):
        for c in normalize(ch) if not ch.isascii() else ch.lower():
            chars.append(c)
            idx.append(i)
    norm = "".join(chars)
    pattern = re.compile("|".join(re.escape(n) for n in needles))
    out: list[str] = []
    pos = 0
    for m in pattern.finditer(norm):
        a, b = idx[m.start()], idx[m.end() - 1] + 1
        if a < pos:
            continue
        out.append(html.escape(text[pos:a]))
        out.append(f"<mark>{html.escape(text[a:b])}</mark>")
        pos = b
    out.append(html.escape(text[pos:]))
    return "".join(out)


def _needles(query: str | None) -> list[str]:
    """The normalized terms of a search query that are marked (none for a bad query)."""
    from genpon.search.service import parse_query

    if not query or not query.strip():
        return []
    try:
        return [n for n in parse_query(query).highlight if n]
    except InvalidInput:
        return []


@dataclass
class Highlights:
    """Where the terms of ``query`` are on page ``page``: ``boxes`` as fractions of the page;
    ``positions`` says whether the page has word positions at all (OCR'd pages and pages of a
    PDF's text layer do)."""

    document_id: int
    page: int
    query: str
    positions: bool
    boxes: list[Box]


def _layout_words(store: BlobStore, settings: Settings, sha256: str) -> dict[int, list[Line]]:
    """The word boxes of a PDF's text layer (``pdftotext -bbox-layout``, bounded like a
    render), from the derived cache or read and cached; {} when poppler cannot read them."""
    target = cache_dir(settings, sha256) / WORDS
    with contextlib.suppress(FileNotFoundError):
        return word_boxes.decode(target.read_bytes())
    exe = shutil.which("pdftotext")
    if exe is None:
        return {}
    with render_slot(settings), store.as_file(sha256, settings.spool_dir) as path:
        try:
            r = subprocess.run(
                [exe, "-q", "-enc", "UTF-8", "-bbox-layout", str(path), "-"],
                capture_output=True,
                timeout=settings.preview_timeout_s,
                check=False,
            )
        except subprocess.TimeoutExpired:
            return {}  # perhaps the machine's load: not cached, tried again next time
    pages = {}
    if r.returncode == 0:
        pages = word_boxes.pdf_layout_words(r.stdout.decode("utf-8", "replace"))
    _write_atomic(target, word_boxes.encode({k: v for k, v in pages.items() if v}) or b"")
    return pages


def page_words(
    session: Session, store: BlobStore, settings: Settings, doc: Document
) -> dict[int, list[Line]]:
    """The word positions of every page that has them: OCR'd pages (``BlobText.words_z``), and
    the pages of a PDF with a text layer."""
    row = session.get(BlobText, doc.sha256)
    pages = word_boxes.decode(row.words_z if row else None)
    outline = content_outline(store, settings, doc.sha256, doc.mime_type, session)
    if outline.kind != "pdf" or outline.status != "ok":
        return pages
    layer = _layout_words(store, settings, doc.sha256)
    return {**{k: v for k, v in layer.items() if v}, **pages}


def term_boxes(
    session: Session, store: BlobStore, settings: Settings, doc: Document, page: int, query: str
) -> tuple[bool, list[Box]]:
    """(the page has word positions, the boxes of the query's terms on it); no authorization:
    the caller has checked the document may be read."""
    lines = page_words(session, store, settings, doc).get(page)
    if lines is None:
        return False, []
    return True, word_boxes.term_boxes(lines, _needles(query))


def first_page_with(
    session: Session, store: BlobStore, settings: Settings, doc: Document, query: str
) -> int | None:
    """The first page on which the query's terms are marked, if any."""
    needles = _needles(query)
    for page, lines in sorted(page_words(session, store, settings, doc).items()):
        if needles and word_boxes.term_boxes(lines, needles):
            return page
    return None


def viewer_marks(
    session: Session,
    store: BlobStore,
    settings: Settings,
    doc: Document,
    shown: Preview | None,
    page: int | None,
    query: str,
) -> tuple[int, bool, list[Box]]:
    """For the document page: the page to show (without one asked for, the first where the
    query's terms are marked), whether it has word positions, and the terms' boxes on it."""
    paged = shown is not None and shown.kind in ("pdf", "image") and shown.status == "ok"
    if page is None:
        page = (
            first_page_with(session, store, settings, doc, query) if query and paged else 1
        ) or 1
    page = min(max(page, 1), (shown.pages or 1) if shown else 1)
    if not (query and paged):
        return page, False, []
    return page, *term_boxes(session, store, settings, doc, page, query)


# --- the service (authorized, audited) ----------------------------------------------------------


def readable_document(session: Session, actor: Actor, document_id: int) -> Document:
    """The document, if the actor may read its content (as a download: hidden is 404,
    destroyed or transferred is 409)."""
    doc = documents.get_document(session, actor, document_id)
    if doc.state != "live":
        raise Conflict(
            "document_not_live", "この文書は廃棄または移管済みです。", {"state": doc.state}
        )
    return doc


def _audit(session: Session, actor: Actor, doc: Document, details: dict[str, Any]) -> None:
    case = session.get(Case, doc.case_pk) if doc.case_pk else None
    audit.record(
        session,
        actor=actor.login,
        action=AuditAction.DOCUMENT_PREVIEWED,
        target_type="document",
        target_id=doc.id or 0,
        case_id=case.case_id if case else None,
        details={"sha256": doc.sha256, **details},
    )


def _previewed_recently(session: Session, actor: Actor, doc: Document) -> bool:
    """Whether ``actor`` has a ``document.previewed`` event for ``doc`` of the last
    ``QUIET_SECONDS`` (found through the index on the target)."""
    since = format_time(utcnow() - timedelta(seconds=QUIET_SECONDS))
    stmt = (
        select(AuditEvent.seq)
        .where(
            AuditEvent.target_type == "document",
            AuditEvent.target_id == str(doc.id),
            AuditEvent.action == AuditAction.DOCUMENT_PREVIEWED.value,
            AuditEvent.actor == actor.login,
            col(AuditEvent.at) >= since,
        )
        .limit(1)
    )
    return session.exec(stmt).first() is not None


def describe(
    session: Session, store: BlobStore, settings: Settings, actor: Actor, document_id: int
) -> Preview:
    """What the viewer shows for a document: its kind, page count or text, or why not."""
    doc = readable_document(session, actor, document_id)
    if not settings.preview_enabled:
        raise Unavailable("preview_disabled", "文書の表示は無効に設定されています。")
    outline = content_outline(store, settings, doc.sha256, doc.mime_type, session)
    text, truncated = None, False
    if outline.kind == "text" and outline.status == "ok":
        text = stored_text(session.get(BlobText, doc.sha256)) or ""
        if len(text) > settings.preview_max_text_chars:
            text, truncated = text[: settings.preview_max_text_chars], True
    _audit(session, actor, doc, {"view": "outline", "kind": outline.kind})
    return Preview(
        document_id=doc.id or 0,
        sha256=doc.sha256,
        mime_type=doc.mime_type,
        kind=outline.kind,
        status=outline.status,
        pages=outline.pages,
        code=outline.code,
        message=message_for(outline.code, settings) if outline.code else None,
        text=text,
        text_truncated=truncated,
    )


def page_image(
    session: Session,
    store: BlobStore,
    settings: Settings,
    actor: Actor,
    document_id: int,
    page: int,
    width: int | None = None,
    *,
    view: str = "page",
) -> PageImage:
    """Page ``page`` of a document as PNG (authorized and audited)."""
    doc = readable_document(session, actor, document_id)
    image = render_page(store, settings, doc.sha256, doc.mime_type, page, width)
    if view == "page" or not _previewed_recently(session, actor, doc):
        _audit(session, actor, doc, {"view": view, "page": page, "width": image.width})
    return image


def thumbnail(
    session: Session, store: BlobStore, settings: Settings, actor: Actor, document_id: int
) -> PageImage:
    """The first page at the smallest width (search results, folder lists)."""
    smallest = min(settings.preview_widths or (160,))
    return page_image(session, store, settings, actor, document_id, 1, smallest, view="thumbnail")


def page_highlights(
    session: Session,
    store: BlobStore,
    settings: Settings,
    actor: Actor,
    document_id: int,
    page: int,
    query: str,
) -> Highlights:
    """Where the terms of ``query`` are on page ``page`` (authorized like the page image and
    audited, it tells whether words occur on the page; it goes with a page image, recorded
    anyway, so not again within ``QUIET_SECONDS``)."""
    doc = readable_document(session, actor, document_id)
    if not settings.preview_enabled:
        raise Unavailable("preview_disabled", "文書の表示は無効に設定されています。")
    positions, boxes = term_boxes(session, store, settings, doc, page, query)
    if not _previewed_recently(session, actor, doc):
        _audit(session, actor, doc, {"view": "highlights", "page": page})
    return Highlights(doc.id or 0, page, query, positions, boxes)
