"""Text extraction, isolated so that a bad file never blocks or loses a deposit.

:func:`extract` never raises for a bad file: it returns an :class:`Extraction` whose ``status``
is ``ok`` (text found), ``empty`` (readable, no text), ``failed`` (broken, encrypted, hostile;
``reason`` says why) or ``unsupported`` (a type we do not read, e.g. images).

Plain text, CSV, Markdown, HTML and saved e-mail (:mod:`search.mail`) are decoded in this
process (bounded by size; :mod:`search.extract_text`). PDF (:mod:`search.extract_pdf`: the best
text of pypdf, pdftotext and pdfminer, with form field values), OOXML (DOCX, XLSX, PPTX) and
Office 97–2003 (DOC, XLS, PPT; :mod:`search.extract_office`) are parsed in a process of their
own (:mod:`search.extract_child`, forked by a :mod:`search.extract_server` that has the parsers
imported) with a wall-clock timeout and an address-space limit, in its own session, so a PDF
that loops or a zip bomb is killed with everything it started (pdftotext) and reported as
``failed``.

OCR (:mod:`search.ocr`, when ``settings.ocr_enabled``): PDF pages with (almost) no text layer
and images (PNG, JPEG, TIFF with all its pages) are read with Tesseract in the same child, each
page bounded by ``ocr_page_timeout_s``; the child's own timeout grows by that much per page it
may OCR. The text of OCR'd pages follows the text layer; ``extractor`` ends in ``ocr`` and
``details`` holds the engine, models and per-page confidence (stored in ``BlobText.details``).

This module is the extraction API (the public names of the modules above are re-exported
here, for callers and for :mod:`search.ocr`, :mod:`search.mail`,
:mod:`search.legacy_office`).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from genpon.search.extract_child import OCR_KINDS, ocr_budget, ocr_wait, run_in_child
from genpon.search.extract_office import (
    ZIP_MAX_RATIO,
    ZIP_MAX_TOTAL,
    check_zip,
    docx_text,
    ole_text,
    ooxml_raw_text,
    ooxml_text,
    pptx_text,
    sheets_text,
    xlsx_text,
)
from genpon.search.extract_pdf import TextScore, form_values, pdf_text, score_text
from genpon.search.extract_text import (
    MAX_CHARS,
    Extraction,
    decode_text,
    detect_kind,
    html_text,
    text_result,
)
from genpon.search.mail import mail_text
from genpon.search.ocr import OcrOptions, image_ocr, ocr_options, pdf_ocr

if TYPE_CHECKING:
    from genpon.core.settings import Settings

_result = text_result  # the name search.ocr imports

__all__ = [
    "MAX_CHARS",
    "OCR_KINDS",
    "ZIP_MAX_RATIO",
    "ZIP_MAX_TOTAL",
    "Extraction",
    "OcrOptions",
    "TextScore",
    "check_zip",
    "decode_text",
    "detect_kind",
    "docx_text",
    "extract",
    "extract_kind",
    "form_values",
    "html_text",
    "ocr_budget",
    "ocr_options",
    "ocr_wait",
    "ole_text",
    "ooxml_raw_text",
    "pdf_text",
    "pptx_text",
    "score_text",
    "sheets_text",
    "text_result",
    "xlsx_text",
]


def extract_kind(
    path: Path, kind: str, timeout: float, ocr: OcrOptions | None = None
) -> Extraction:
    """PDF, OOXML, Office 97–2003 or image text (pdf/docx/xlsx/pptx/ole/image); meant to run in
    a child process with limits. With ``ocr``, PDF pages without a text layer and images are
    OCR'd."""
    if kind == "image":
        if ocr is None:
            return Extraction(None, "unsupported", "image: OCR is off", None)
        return image_ocr(path, ocr)
    if kind == "pdf":
        result = pdf_text(path, timeout=timeout)
        return pdf_ocr(path, result, ocr, timeout) if ocr is not None else result
    if kind == "ole":
        return ole_text(path)
    return ooxml_text(path, kind)


def extract(
    path: Path,
    mime: str | None,
    *,
    settings: Settings | None = None,
    ocr: OcrOptions | None = None,
    force_ocr: bool = False,
) -> Extraction:
    """Text of the file at ``path`` (never raises for a bad file; see the module docstring).
    OCR follows ``settings`` (:func:`ocr_options`) unless ``ocr`` is given; ``force_ocr``
    turns it on whatever ``ocr_enabled`` says (``genpon ocr``)."""
    timeout = float(settings.extract_timeout_s) if settings else 60.0
    memory_mb = settings.extract_memory_mb if settings else 1024
    max_bytes = settings.extract_max_bytes if settings else 200 * 1024 * 1024
    try:
        size = path.stat().st_size
        if size == 0:
            return Extraction(None, "empty", None, None)
        if size > max_bytes:
            return Extraction(None, "failed", f"too large to extract ({size} bytes)", None)
        kind = detect_kind(path, mime)
        if ocr is None:
            ocr = ocr_options(settings, force=force_ocr)
        if kind == "image" and ocr is None:
            return Extraction(None, "unsupported", f"type {mime or 'image'}: OCR is off", None)
        if kind == "unsupported":
            return Extraction(None, "unsupported", f"type {mime or 'unknown'}", None)
        if kind in ("text", "html", "mail"):
            data = path.read_bytes()
            if kind == "html":
                return text_result(html_text(data), "html")
            if kind == "mail":
                return text_result(mail_text(data), "mail")
            return text_result(decode_text(data), "text")
        return run_in_child(path, kind, timeout, memory_mb, ocr)
    except Exception as exc:  # a bad file must never break the caller
        return Extraction(None, "failed", f"{type(exc).__name__}: {str(exc)[:300]}", None)
