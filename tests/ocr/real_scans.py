"""The real PDFs of ``../shared/data`` that have pages without a text layer (scans, image-only
pages, drawings): which they are, and the outcome table of their OCR. Used by
``tests/ocr/test_real_scans.py`` (a sample, in the suite) and ``bench/ocr.py --real`` (every
page at the configured resolution)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from genpon.records.models import BlobText
from genpon.search.ocr import pages_without_text, pdf_page_texts
from sqlmodel import Session

_TOKEN = re.compile(r"[A-Za-z0-9]{4,}|[\u3041-\u30ff\u4e00-\u9fff]{2,}")


@dataclass
class Textless:
    path: Path
    pages: int  # pages of the file
    textless: list[int]  # 1-based numbers of the pages with (almost) no text layer
    layer: str  # the text layer poppler finds (all pages)


def textless_pdfs(root: Path) -> list[Textless]:
    """Every PDF under ``root`` with a page whose text layer has fewer than
    ``search.ocr.TEXT_LAYER_MIN`` characters, by the same test the extractor applies; files
    poppler cannot read (encrypted, broken) are not among them."""
    found = []
    for path in sorted(p for p in root.rglob("*") if p.suffix.lower() == ".pdf"):
        texts = pdf_page_texts(path, 30)
        todo = pages_without_text(texts) if texts else []
        if texts and todo:
            found.append(Textless(path, len(texts), todo, "\n".join(texts)))
    return found


@dataclass
class Outcome:
    name: str
    pages: int
    ocr_pages: int  # pages OCR was asked for (pages without a text layer)
    status: str  # the file's text status: ok | empty | failed
    reason: str | None
    extractor: str | None
    page_counts: dict[str, int]  # outcomes of the pages OCR was asked for: ok, empty, ...
    ocr_chars: int  # non-space characters OCR found
    confidence: float | None  # mean over the pages OCR read text on
    ocr_seconds: float  # OCR (rendering included) of its pages, by the extraction child
    seconds: float | None  # deposit to searchable, when measured per file
    token: str | None = None  # a word only OCR found, searched for
    found: bool | None = None


def outcome(session: Session, sha256: str, scan: Textless, seconds: float | None = None) -> Outcome:
    row = session.get(BlobText, sha256)
    assert row is not None, scan.path.name
    details = row.details or {}
    pages = details.get("pages", [])
    counts: dict[str, int] = {}
    for p in pages:
        counts[p["status"]] = counts.get(p["status"], 0) + 1
    return Outcome(
        name=scan.path.name,
        pages=scan.pages,
        ocr_pages=len(scan.textless),
        status=str(row.status.value if hasattr(row.status, "value") else row.status),
        reason=row.reason,
        extractor=row.extractor,
        page_counts=counts,
        ocr_chars=sum(int(p.get("chars", 0)) for p in pages),
        confidence=details.get("mean_confidence"),
        ocr_seconds=round(sum(float(p.get("seconds", 0.0)) for p in pages), 1),
        seconds=None if seconds is None else round(seconds, 1),
    )


def ocr_token(text: str, layer: str) -> str | None:
    """The longest word of ``text`` (4+ letters or digits, or 2+ kana/kanji) that the text
    layer does not have: a word only OCR can have found."""
    words = sorted(set(_TOKEN.findall(text)), key=lambda w: (-len(w), w))
    low = layer.lower()
    return next((w for w in words if w.lower() not in low), None)


def table(rows: list[Outcome]) -> str:
    head = (
        f"{'file':58} {'pages':>5} {'ocr':>3}  {'status':7} {'ocr pages':18} {'chars':>5} "
        f"{'conf':>5} {'ocr s':>5} {'s':>5}  searched"
    )
    lines = [head, "-" * len(head)]
    for r in rows:
        conf = f"{r.confidence:.1f}" if r.confidence is not None else "-"
        pages = ", ".join(f"{k} {v}" for k, v in sorted(r.page_counts.items()))
        took = "-" if r.seconds is None else f"{r.seconds:.1f}"
        searched = "-" if r.token is None else f"{r.token!r} {'found' if r.found else 'MISSED'}"
        lines.append(
            f"{r.name[:58]:58} {r.pages:>5} {r.ocr_pages:>3}  {r.status:7} {pages:18} "
            f"{r.ocr_chars:>5} {conf:>5} {r.ocr_seconds:>5.1f} {took:>5}  {searched}"
        )
        if r.status != "ok" and r.reason:
            lines.append(f"{'':60}reason: {r.reason[:120]}")
    by: dict[str, int] = {}
    for r in rows:
        by[r.status] = by.get(r.status, 0) + 1
    lines.append(
        f"{len(rows)} files, {sum(r.pages for r in rows)} pages, "
        f"{sum(r.ocr_pages for r in rows)} without a text layer; file status "
        + ", ".join(f"{k} {v}" for k, v in sorted(by.items()))
        + f"; OCR read text on {sum(1 for r in rows if r.ocr_chars)} files"
    )
    return "\n".join(lines)
