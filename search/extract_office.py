"""Office text: OOXML (DOCX, XLSX, PPTX) and Office 97–2003 (DOC, XLS, PPT, through
:mod:`search.legacy_office`); part of :mod:`search.extract`, runs in the bounded child.

A zip is checked for bombs (:func:`check_zip`) before any parser inflates it. python-docx,
openpyxl and python-pptx read the text; when python-docx or python-pptx find none or fail (text
boxes, strict OOXML, broken relationships), the text runs are read from the XML itself
(:func:`ooxml_raw_text`).
"""

from __future__ import annotations

import contextlib
import re
import zipfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from genpon.search.extract_text import Extraction, text_result

ZIP_MAX_TOTAL = 512 * 1024 * 1024  # uncompressed bytes an OOXML file may claim
ZIP_MAX_RATIO = 200


def ooxml_text(path: Path, kind: str) -> Extraction:
    """DOCX, XLSX or PPTX text (``kind``: docx | xlsx | pptx), never raising for a bad file."""
    bad = check_zip(path)
    if bad:
        return Extraction(None, "failed", bad, None)
    fn = {"docx": docx_text, "xlsx": xlsx_text, "pptx": pptx_text}[kind]
    try:
        result = text_result(fn(path), f"python-{kind}" if kind != "xlsx" else "openpyxl")
        failure = None
    except Exception as exc:
        result = Extraction(None, "failed", f"{kind}: {type(exc).__name__}: {str(exc)[:300]}")
        failure = result
    if result.status == "ok" or kind == "xlsx":
        return result
    # text boxes, strict OOXML, broken relationships: read the text runs from the XML itself
    try:
        raw = ooxml_raw_text(path, kind)
    except Exception:
        return failure or result
    fallback = text_result(raw, "ooxml-xml")
    return fallback if fallback.status == "ok" else (failure or result)


def check_zip(path: Path) -> str | None:
    """Refuse zip bombs before any parser inflates them."""
    try:
        with zipfile.ZipFile(path) as z:
            total = 0
            for info in z.infolist():
                total += info.file_size
                ratio = info.file_size / info.compress_size if info.compress_size else 0
                if ratio > ZIP_MAX_RATIO and info.file_size > 10 * 1024 * 1024:
                    return f"zip bomb suspected: {info.filename}"
            if total > ZIP_MAX_TOTAL:
                return "zip bomb suspected: too large uncompressed"
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        return f"broken zip: {exc}"
    return None


def docx_text(path: Path) -> str:
    import docx

    d = docx.Document(str(path))
    parts = [p.text for p in d.paragraphs]
    for table in d.tables:
        for row in table.rows:
            parts.append("\t".join(c.text for c in row.cells))
    for section in d.sections:
        for part in (section.header, section.footer):
            with contextlib.suppress(Exception):
                parts += [p.text for p in part.paragraphs]
    return "\n".join(parts)


def xlsx_text(path: Path) -> str:
    import openpyxl

    wb = openpyxl.load_workbook(str(path), read_only=True, data_only=True)
    try:
        return sheets_text((ws.title, ws.iter_rows(values_only=True)) for ws in wb.worksheets)
    finally:
        wb.close()


def sheets_text(sheets: Iterable[tuple[str, Iterable[Sequence[object]]]]) -> str:
    """Each sheet's name, then its non-empty cells, one row per line, tab-separated."""
    parts: list[str] = []
    for name, rows in sheets:
        parts.append(str(name))
        for row in rows:
            cells = [c for c in map(_cell_text, row) if c]
            if cells:
                parts.append("\t".join(cells))
    return "\n".join(parts)


def _cell_text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # .xls stores every number as a float
    return str(value).strip()


def pptx_text(path: Path) -> str:
    import pptx

    prs = pptx.Presentation(str(path))
    parts: list[str] = []

    def shape_text(shape: Any) -> None:
        if getattr(shape, "has_text_frame", False) and shape.has_text_frame:
            parts.append(shape.text_frame.text)
        if getattr(shape, "has_table", False) and shape.has_table:
            for row in shape.table.rows:
                parts.append("\t".join(c.text for c in row.cells))
        for sub in getattr(shape, "shapes", []) or []:
            shape_text(sub)

    for slide in prs.slides:
        for shape in slide.shapes:
            shape_text(shape)
        if slide.has_notes_slide:
            parts.append(slide.notes_slide.notes_text_frame.text)
    return "\n".join(parts)


def ole_text(path: Path) -> Extraction:
    """Word, Excel or PowerPoint 97–2003 text (:mod:`search.legacy_office`)."""
    from genpon.search.legacy_office import Encrypted, office97_text

    try:
        found = office97_text(path)
        if found is None:
            return Extraction(
                None, "unsupported", "compound file: not Word, Excel or PowerPoint", None
            )
        return text_result(found[1], found[0])
    except Encrypted as exc:
        return Extraction(None, "failed", f"encrypted: {str(exc)[:200]}", None)
    except Exception as exc:
        return Extraction(None, "failed", f"ole: {type(exc).__name__}: {str(exc)[:300]}", None)


_XML_TEXT = re.compile(rb"<(?:w|a):t(?:\s[^>]*)?>([^<]*)</(?:w|a):t>")
_XML_PARA = re.compile(rb"</(?:w|a):p>")


def ooxml_raw_text(path: Path, kind: str) -> str:
    from html import unescape

    prefix = {"docx": "word/", "pptx": "ppt/slides/"}[kind]
    parts: list[str] = []
    with zipfile.ZipFile(path) as z:
        for name in sorted(z.namelist()):
            if name.startswith(prefix) and name.endswith(".xml"):
                data = _XML_PARA.sub(b"<w:t>\n</w:t>", z.read(name))
                parts += [unescape(m.decode("utf-8", "replace")) for m in _XML_TEXT.findall(data)]
    return "".join(parts)
