"""What a file is, and the text of the kinds read in this process (part of :mod:`search.extract`).

:class:`Extraction` is every extractor's result. :func:`detect_kind` tells a file's kind from its
content first, its MIME type second. Plain text, CSV, Markdown, JSON and HTML are decoded here
(:func:`decode_text`: UTF-8, UTF-16 with BOM, Shift_JIS/CP932, EUC-JP, then a guess); saved
e-mail is read by :mod:`search.mail`. Everything else is parsed in the bounded child
(:mod:`search.extract_child`).
"""

from __future__ import annotations

import re
import zipfile
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from genpon.search.mail import looks_like_mail

MAX_CHARS = 20_000_000  # text kept per content


@dataclass
class Extraction:
    text: str | None
    status: str  # ok | empty | failed | unsupported
    reason: str | None = None  # failed: why; ok from a PDF: why this extractor's text won
    extractor: str | None = None
    details: dict[str, Any] | None = None  # OCR: engine, models, per-page outcome
    words: dict[str, Any] | None = None  # OCR: per page its words' boxes (search.word_boxes)


def text_result(text: str | None, extractor: str) -> Extraction:
    """``ok`` with ``text`` (NULs removed, cut at ``MAX_CHARS``), or ``empty`` when it has no
    visible character."""
    text = (text or "").replace("\x00", "")
    if len(text) > MAX_CHARS:
        text = text[:MAX_CHARS]
    if not text.strip():
        return Extraction(None, "empty", None, extractor)
    return Extraction(text, "ok", None, extractor)


# --- kind detection -------------------------------------------------------------------------

OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # Office 97-2003 compound file
IMAGE_MAGIC = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"II*\x00", b"MM\x00*")  # PNG JPEG TIFF

OOXML_PARTS = {
    "word/document.xml": "docx",
    "xl/workbook.xml": "xlsx",
    "ppt/presentation.xml": "pptx",
}


def detect_kind(path: Path, mime: str | None) -> str:
    """pdf | docx | xlsx | pptx | ole | image | html | mail | text | unsupported, from the
    content first (``ole``: an Office 97–2003 compound file, told apart in the child;
    ``image``: PNG, JPEG or TIFF, read only by OCR)."""
    mime = (mime or "").split(";")[0].strip().lower()
    with path.open("rb") as f:
        head = f.read(4096)
    if b"%PDF-" in head[:1024]:
        return "pdf"
    if head.startswith(b"PK\x03\x04"):
        try:
            with zipfile.ZipFile(path) as z:
                names = set(z.namelist())
        except (zipfile.BadZipFile, OSError, ValueError):
            return "unsupported"
        for part, kind in OOXML_PARTS.items():
            if part in names:
                return kind
        return "unsupported"
    if head.startswith(OLE_MAGIC):
        return "ole"
    if head.startswith(IMAGE_MAGIC):
        return "image"
    if mime == "application/pdf":
        return "pdf"
    low = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if mime in ("text/html", "application/xhtml+xml") or low.startswith(
        (b"<!doctype html", b"<html")
    ):
        return "html"
    if mime == "message/rfc822" or (
        (mime.startswith("text/") or mime in ("application/octet-stream", ""))
        and looks_like_mail(head)
    ):
        return "mail"
    if mime.startswith("text/") or mime in (
        "application/json",
        "application/x-ndjson",
        "application/xml",
        "application/csv",
        "application/x-empty",
    ):
        return "text"
    if mime in ("application/octet-stream", "") and _looks_textual(head):
        return "text"
    return "unsupported"


def _looks_textual(head: bytes) -> bool:
    if not head or b"\x00" in head:
        return False
    return decode_text(head, partial=True) is not None


# --- text and HTML --------------------------------------------------------------------------

_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_\-]+)""", re.I)


def decode_text(data: bytes, *, partial: bool = False, hint: str | None = None) -> str | None:
    """UTF-8 (with or without BOM), UTF-16 with BOM, then Shift_JIS/CP932, EUC-JP, then a guess."""
    if data.startswith(b"\xef\xbb\xbf"):
        return data[3:].decode("utf-8", errors="replace")
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16", errors="replace")
    candidates = []
    if hint:
        h = hint.lower()
        candidates.append("cp932" if h in ("shift_jis", "shift-jis", "sjis", "x-sjis") else h)
    candidates += ["utf-8", "cp932", "euc_jp"]
    for enc in candidates:
        try:
            return data.decode(enc)
        except (UnicodeDecodeError, LookupError):
            if partial and enc == "utf-8":
                # a multi-byte character may be cut at the end of the sample
                try:
                    return data[:-3].decode(enc)
                except UnicodeDecodeError:
                    pass
            continue
    try:
        from charset_normalizer import from_bytes

        best = from_bytes(data).best()
    except Exception:  # pragma: no cover - charset_normalizer is robust
        best = None
    if best is None:
        return None if partial else data.decode("utf-8", errors="replace")
    return str(best)


class _HTMLText(HTMLParser):
    SKIP = frozenset({"script", "style", "noscript", "template"})
    BLOCK = frozenset({"p", "div", "br", "li", "tr", "td", "th", "h1", "h2", "h3", "h4", "title"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: Any) -> None:
        if tag in self.SKIP:
            self._skip += 1
        elif tag in self.BLOCK:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self.SKIP and self._skip:
            self._skip -= 1

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


def html_text(data: bytes) -> str:
    m = _META_CHARSET.search(data[:4096])
    raw = decode_text(data, hint=m.group(1).decode("ascii") if m else None) or ""
    p = _HTMLText()
    p.feed(raw)
    p.close()
    return re.sub(r"\n{3,}", "\n\n", "".join(p.parts))
