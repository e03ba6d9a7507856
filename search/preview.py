"""Document viewer: page images and text of a document, rendered on the server.

What a content looks like to the viewer (its *outline*) is one of:

- ``pdf``: pages rendered by poppler's ``pdftoppm``; the page count comes from ``pdfinfo``;
- ``image``: PNG, JPEG, TIFF (multi-page fax TIFFs too), GIF, WebP, BMP, decoded by Pillow with
  ``Image.MAX_IMAGE_PIXELS`` enforced and converted to PNG (the browser never gets the original
  bytes, so a TIFF shows and a hostile file is never handed to it);
- ``text``: text, CSV, HTML, mail and Office files, shown as the text extracted at indexing time
  (``BlobText``; never the raw HTML): the page escapes it;
- ``none``: nothing to show (download the file).

Every render runs in a child process (``pdftoppm``, or ``python -m genpon.search.preview`` for
images) in its own process group with a wall-clock timeout and an address-space limit, as text
extraction does (:mod:`genpon.search.extract`), and at most ``preview_concurrency`` at once per
process. Bad input is a clear status, never a 500 and never a hang: :class:`PreviewUnavailable`
(HTTP 422) carries a machine-readable code (``pdf_encrypted``, ``pdf_broken``,
``image_too_large``, ``image_broken``, ``render_timeout``, ``render_memory``,
``content_too_large``, ``no_page_images``); a page beyond the last is ``page_not_found`` (404).

Rendered pages live in a derived cache, ``<preview_dir>/<sha[:2]>/<sha>/p<page>-w<width>.png``
(``preview_dir`` is ``<data_dir>/derived/previews`` by default), keyed by the content hash, the
page and the width, written atomically (temporary file, then rename). The cache is never a copy
or version of the document and never touches the blob: delete it and the next request rebuilds
it. Outcomes (page count, or why a content cannot be shown) are cached beside the pages in
``outline.json``.

The service functions authorize a preview exactly like a content read (a document the caller
may not read is 404, a destroyed one 409) and record a ``document.previewed`` audit event after
the render succeeded.
"""

from __future__ import annotations

import contextlib
import html
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from genpon.core.errors import Conflict, InvalidInput, NotFound, Unavailable
from genpon.records import audit, documents
from genpon.records.audit.actions import AuditAction
from genpon.records.models import BlobText, Case, Document
from genpon.search.analyzer import normalize
from genpon.search.indexer import stored_text
from sqlmodel import Session

if TYPE_CHECKING:
    from genpon.core.settings import Settings
    from genpon.records.access import Actor
    from genpon.storage.base import BlobStore

KINDS = ("pdf", "image", "text", "none")
MAX_PAGE_HEIGHT_RATIO = 4  # a page image is at most 4x as tall as the widest allowed width
OUTLINE = "outline.json"
OUTLINE_VERSION = 1  # bump when the outline format or its rules change

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

MESSAGES = {
    "pdf_encrypted": "パスワードで保護された PDF のため表示できません。ダウンロードして開いてください。",
    "pdf_broken": "PDF が壊れているため表示できません。",
    "image_too_large": "画像の画素数が大きすぎるため表示できません（上限 {limit} 画素）。",
    "image_broken": "画像ファイルが壊れているか、読めない形式のため表示できません。",
    "render_timeout": "表示用の画像を時間内に作れませんでした。",
    "render_memory": "表示用の画像を作るのに必要なメモリが上限を超えました。",
    "content_too_large": "ファイルが大きすぎるため表示できません。ダウンロードしてください。",
    "no_page_images": "この形式の文書にはページ画像がありません。",
    "unsupported": "この形式の文書は画面に表示できません。ダウンロードして開いてください。",
    "text_pending": "本文をまだ取り出していません。しばらくしてから開き直してください。",
    "text_failed": "本文を取り出せなかったため表示できません。",
    "render_failed": "表示用の画像を作れませんでした。",
}


class PreviewUnavailable(InvalidInput):
    """A content that cannot be shown (encrypted, broken, too large, …): HTTP 422 with the
    reason as ``code``; the download still works."""


def _message(code: str, settings: Settings | None = None) -> str:
    limit = f"{settings.preview_max_pixels:,}" if settings else ""
    return MESSAGES.get(code, MESSAGES["render_failed"]).format(limit=limit)


@dataclass
class Outline:
    """What a content looks like to the viewer; cached per blob for pdf and image kinds."""

    kind: str  # pdf | image | text | none
    status: str  # ok | failed | pending | unsupported
    pages: int | None = None
    code: str | None = None  # why not ok (machine-readable)
    reason: str | None = None  # tool output, for the cache file only (may name server paths)
    version: int = OUTLINE_VERSION


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


# --- bounded children ---------------------------------------------------------------------------


class _Timeout(Exception):
    pass


def _limit_memory(mb: int) -> Callable[[], None]:
    def apply() -> None:
        import resource

        limit = mb * 1024 * 1024
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    return apply


def _run(argv: Sequence[str], *, timeout: float, memory_mb: int) -> tuple[int, bytes, bytes]:
    """Run ``argv`` in its own process group with an address-space limit; kill the whole group
    on timeout (:class:`_Timeout`) and in any case when it is done."""
    proc = subprocess.Popen(
        list(argv),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
        preexec_fn=_limit_memory(memory_mb),
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise _Timeout() from None
    finally:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
    return proc.returncode, out, err


_slots_guard = threading.Lock()
_slots: dict[int, threading.BoundedSemaphore] = {}


def _slot(settings: Settings) -> threading.BoundedSemaphore:
    n = max(1, settings.preview_concurrency)
    with _slots_guard:
        return _slots.setdefault(n, threading.BoundedSemaphore(n))


@contextlib.contextmanager
def _render_slot(settings: Settings) -> Any:
    sem = _slot(settings)
    if not sem.acquire(timeout=max(10.0, settings.preview_timeout_s * 4.0)):
        raise Unavailable("preview_busy", "表示用の画像の作成が混み合っています。")
    try:
        yield
    finally:
        sem.release()


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


# --- PDF ----------------------------------------------------------------------------------------

_PAGES = re.compile(rb"^Pages:\s+(\d+)", re.M)
_SIZE = re.compile(rb"^Page\s+\d+\s+size:\s+([\d.]+)\s+x\s+([\d.]+)", re.M)
_ROT = re.compile(rb"^Page\s+\d+\s+rot:\s+(\d+)", re.M)


def _poppler_failure(err: bytes, returncode: int) -> Outline:
    text = err.decode("utf-8", "replace").strip()
    tail = text.splitlines()[-1][:300] if text else f"exit {returncode}"
    if b"Incorrect password" in err or returncode == 3:
        return Outline("pdf", "failed", code="pdf_encrypted", reason=tail)
    return Outline("pdf", "failed", code="pdf_broken", reason=tail)


def _pdfinfo(path: Path, settings: Settings, page: int | None = None) -> tuple[Outline, bytes]:
    exe = shutil.which("pdfinfo")
    if exe is None:
        raise Unavailable("poppler_missing", "PDF の表示に必要な poppler-utils がありません。")
    argv = [exe]
    if page is not None:
        argv += ["-f", str(page), "-l", str(page)]
    argv.append(str(path))
    try:
        rc, out, err = _run(
            argv, timeout=settings.preview_timeout_s, memory_mb=settings.preview_memory_mb
        )
    except _Timeout:
        return Outline("pdf", "failed", code="render_timeout", reason="pdfinfo: timeout"), b""
    if rc != 0:
        return _poppler_failure(err, rc), out
    m = _PAGES.search(out)
    if m is None or int(m.group(1)) < 1:
        return Outline("pdf", "failed", code="pdf_broken", reason="no pages"), out
    return Outline("pdf", "ok", pages=int(m.group(1))), out


def _pdf_width(info: bytes, width: int, settings: Settings) -> int:
    """``width``, or less for a page so tall that its image would be huge."""
    size, rot = _SIZE.search(info), _ROT.search(info)
    if size is None:
        return width
    w, h = float(size.group(1)), float(size.group(2))
    if rot is not None and int(rot.group(1)) % 180 == 90:
        w, h = h, w
    if w <= 0 or h <= 0:
        return width
    max_height = max(settings.preview_widths or (1600,)) * MAX_PAGE_HEIGHT_RATIO
    if width * h / w > max_height:
        return max(16, int(max_height * w / h))
    return width


def _render_pdf(path: Path, page: int, width: int, out: Path, settings: Settings) -> int:
    exe = shutil.which("pdftoppm")
    if exe is None:
        raise Unavailable("poppler_missing", "PDF の表示に必要な poppler-utils がありません。")
    info_outline, info = _pdfinfo(path, settings, page)
    if info_outline.status != "ok":
        raise PreviewUnavailable(
            info_outline.code or "render_failed", _message(info_outline.code or "", settings)
        )
    width = _pdf_width(info, width, settings)
    rot = _ROT.search(info)
    # pdftoppm scales before it rotates: a page turned by 90° gets its width as -scale-to-y
    sideways = rot is not None and int(rot.group(1)) % 180 == 90
    scale = (
        ["-scale-to-x", "-1", "-scale-to-y", str(width)]
        if sideways
        else ["-scale-to-x", str(width), "-scale-to-y", "-1"]
    )
    prefix = out.with_suffix("")
    argv = [exe, "-png", "-cropbox", "-f", str(page), "-l", str(page), "-singlefile"]
    argv += [*scale, str(path), str(prefix)]
    try:
        rc, _out, err = _run(
            argv, timeout=settings.preview_timeout_s, memory_mb=settings.preview_memory_mb
        )
    except _Timeout:
        raise PreviewUnavailable("render_timeout", _message("render_timeout")) from None
    produced = prefix.with_suffix(".png")
    if rc != 0 or not produced.exists():
        failed = _poppler_failure(err, rc)
        if rc < 0 or b"std::bad_alloc" in err or b"out of memory" in err.lower():
            failed.code = "render_memory"
        raise PreviewUnavailable(
            failed.code or "render_failed", _message(failed.code or "", settings)
        )
    if produced != out:
        os.replace(produced, out)
    return width


# --- images (in a child: ``python -m genpon.search.preview``) ----------------------------------


def _image_child(args: list[str], settings: Settings) -> dict[str, Any]:
    argv = [sys.executable, "-m", "genpon.search.preview", *args]
    argv.append(str(settings.preview_max_pixels))
    try:
        rc, out, err = _run(
            argv, timeout=settings.preview_timeout_s, memory_mb=settings.preview_memory_mb
        )
    except _Timeout:
        return {"status": "failed", "code": "render_timeout", "reason": "timeout"}
    if rc != 0:
        why = "render_memory" if b"MemoryError" in err else "image_broken"
        tail = err.decode("utf-8", "replace").strip().splitlines()[-1:] or [f"exit {rc}"]
        return {"status": "failed", "code": why, "reason": tail[0][:300]}
    try:
        result: dict[str, Any] = json.loads(out)
    except ValueError:
        return {"status": "failed", "code": "image_broken", "reason": "garbage from the child"}
    return result


def _open_image(path: Path, max_pixels: int) -> Any:
    import warnings

    from PIL import Image

    Image.MAX_IMAGE_PIXELS = max_pixels
    warnings.simplefilter("error", Image.DecompressionBombWarning)  # above the limit: refuse
    im = Image.open(path)
    w, h = im.size
    if w * h > max_pixels:
        raise Image.DecompressionBombError(f"{w}x{h} pixels")
    return im


def _child_main(argv: list[str]) -> dict[str, Any]:
    """``info PATH MAX`` -> {pages}; ``render PATH PAGE WIDTH OUT MAX`` -> {pages, width}."""
    from PIL import Image, UnidentifiedImageError

    op, path = argv[0], Path(argv[1])
    max_pixels = int(argv[-1])
    try:
        im = _open_image(path, max_pixels)
        pages = max(1, int(getattr(im, "n_frames", 1) or 1))
        if op == "info":
            im.draft("RGB", (256, 256)) if im.format == "JPEG" else None
            im.load()  # decode the first frame: a broken file fails here, not on the page
            return {"status": "ok", "pages": pages}
        page, width, out = int(argv[2]), int(argv[3]), Path(argv[4])
        if page > pages:
            return {"status": "ok", "pages": pages, "missing": True}
        im.seek(page - 1)
        w, h = im.size
        if w * h > max_pixels:
            raise Image.DecompressionBombError(f"{w}x{h} pixels")
        target = min(width, w)
        height = max(1, round(h * target / w))
        if im.format == "JPEG":
            im.draft("RGB", (target, height))  # decode at a reduced scale: much faster
        im.load()
        if im.mode not in ("RGB", "RGBA", "L", "LA"):
            im = im.convert("RGBA" if "A" in im.getbands() or "transparency" in im.info else "RGB")
        if im.size != (target, height):
            im = im.resize((target, height), Image.Resampling.LANCZOS)
        im.save(out, "PNG", optimize=False)
        return {"status": "ok", "pages": pages, "width": target}
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        return {"status": "failed", "code": "image_too_large", "reason": str(exc)[:300]}
    except MemoryError:
        return {"status": "failed", "code": "render_memory", "reason": "MemoryError"}
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError) as exc:
        reason = f"{type(exc).__name__}: {str(exc)[:300]}"
        return {"status": "failed", "code": "image_broken", "reason": reason}


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
        with _render_slot(settings), store.as_file(sha256, settings.spool_dir) as path:
            if kind == "pdf":
                outline = _pdfinfo(path, settings)[0]
            else:
                r = _image_child(["info", str(path)], settings)
                outline = Outline(
                    "image", r["status"], r.get("pages"), r.get("code"), r.get("reason")
                )
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
            "no_page_images", _message("no_page_images"), {"kind": outline.kind}
        )
    if outline.status != "ok" or not outline.pages:
        code = outline.code or "render_failed"
        raise PreviewUnavailable(code, _message(code, settings))
    if page > outline.pages:
        raise NotFound(
            "page_not_found",
            f"{page} ページ目はありません（全 {outline.pages} ページ）。",
            {"page": page, "pages": outline.pages},
        )
    target = cache_dir(settings, sha256) / f"p{page}-w{width}.png"
    with contextlib.suppress(FileNotFoundError):
        return PageImage(target.read_bytes(), page, outline.pages, width)
    with _render_slot(settings), store.as_file(sha256, settings.spool_dir) as path:
        target.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=target.parent, prefix=".render-") as tmp:
            out = Path(tmp) / "page.png"
            if outline.kind == "pdf":
                _render_pdf(path, page, width, out, settings)
            else:
                r = _image_child(["render", str(path), str(page), str(width), str(out)], settings)
                if r["status"] != "ok":
                    code = r.get("code") or "render_failed"
                    raise PreviewUnavailable(code, _message(code, settings))
            png = out.read_bytes()
            if not png.startswith(b"\x89PNG"):
                raise PreviewUnavailable("render_failed", _message("render_failed"))
            os.replace(out, target)
    return PageImage(png, page, outline.pages, width)


# --- highlighting -------------------------------------------------------------------------------


def highlight_html(text: str, query: str | None) -> str:
    """``text`` escaped for HTML, every occurrence of the query's terms in ``<mark>`` (matched
    on the normalized text, as search does: full-width and half-width alike)."""
    from genpon.search.service import parse_query

    needles: list[str] = []
    if query and query.strip():
        try:
            needles = sorted({n for n in parse_query(query).highlight if n}, key=len, reverse=True)
        except InvalidInput:
            needles = []
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
        message=_message(outline.code, settings) if outline.code else None,
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
    _audit(session, actor, doc, {"view": view, "page": page, "width": image.width})
    return image


def thumbnail(
    session: Session, store: BlobStore, settings: Settings, actor: Actor, document_id: int
) -> PageImage:
    """The first page at the smallest width (search results, folder lists)."""
    smallest = min(settings.preview_widths or (160,))
    return page_image(session, store, settings, actor, document_id, 1, smallest, view="thumbnail")


if __name__ == "__main__":
    result = _child_main(sys.argv[1:])
    sys.stdout.write(json.dumps(result))
    sys.stdout.flush()
