"""Text extraction, isolated so that a bad file never blocks or loses a deposit.

:func:`extract` never raises for a bad file: it returns an :class:`Extraction` whose ``status``
is ``ok`` (text found), ``empty`` (readable, no text), ``failed`` (broken, encrypted, hostile;
``reason`` says why) or ``unsupported`` (a type we do not read, e.g. images).

Plain text, CSV, Markdown, HTML and saved e-mail (:mod:`search.mail`) are decoded in this
process (bounded by size). PDF, OOXML (DOCX, XLSX, PPTX) and Office 97–2003 (DOC, XLS, PPT:
:mod:`search.legacy_office`) are parsed in a child process (``python -m genpon.search.extract``) with
a wall-clock timeout and an address-space limit, in its own process group, so a PDF that loops
or a zip bomb is killed with everything it started (pdftotext) and reported as ``failed``.

PDF: pypdf first; when it yields no text or mojibake (CJK fonts without a usable ToUnicode map,
vertical text), poppler's ``pdftotext`` and then pdfminer.six are tried, and the best text wins.
``extractor`` records which one produced the text.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import TYPE_CHECKING, Any

from genpon.search.mail import looks_like_mail, mail_text

if TYPE_CHECKING:
    from genpon.core.settings import Settings

MAX_CHARS = 20_000_000  # text kept per content
ZIP_MAX_TOTAL = 512 * 1024 * 1024  # uncompressed bytes an OOXML file may claim
ZIP_MAX_RATIO = 200
_ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Extraction:
    text: str | None
    status: str  # ok | empty | failed | unsupported
    reason: str | None = None
    extractor: str | None = None


def _result(text: str | None, extractor: str) -> Extraction:
    text = (text or "").replace("\x00", "")
    if len(text) > MAX_CHARS:
        text = text[:MAX_CHARS]
    if not text.strip():
        return Extraction(None, "empty", None, extractor)
    return Extraction(text, "ok", None, extractor)


# --- kind detection -------------------------------------------------------------------------

OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # Office 97-2003 compound file

OOXML_PARTS = {
    "word/document.xml": "docx",
    "xl/workbook.xml": "xlsx",
    "ppt/presentation.xml": "pptx",
}


def detect_kind(path: Path, mime: str | None) -> str:
    """pdf | docx | xlsx | pptx | ole | html | mail | text | unsupported, from the content first
    (``ole``: an Office 97–2003 compound file, told apart in the child)."""
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


# --- PDF --------------------------------------------------------------------------------------


def text_quality(text: str) -> tuple[int, float]:
    """(good characters, share of good characters): mojibake from broken CJK fonts is mostly
    Greek, Coptic, Indic, Tibetan and private-use code points mixed together."""
    good = bad = 0
    for ch in text:
        if ch.isspace():
            continue
        o = ord(ch)
        if (
            o < 0x250  # ASCII, Latin-1, Latin extended
            or 0x2000 <= o <= 0x206F  # punctuation
            or 0x3000 <= o <= 0x30FF  # CJK punctuation, kana
            or 0x3400 <= o <= 0x9FFF  # ideographs
            or 0xFE30 <= o <= 0xFE4F  # vertical forms
            or 0xFF00 <= o <= 0xFFEF  # full/half width
            or 0x2460 <= o <= 0x27BF  # enclosed numbers, shapes
        ):
            good += 1
        else:
            bad += 1
    total = good + bad
    return good, (good / total if total else 0.0)


def _pdf_pypdf(path: Path) -> tuple[str | None, str | None]:
    import pypdf

    try:
        reader = pypdf.PdfReader(str(path))
        if reader.is_encrypted:
            try:
                ok = reader.decrypt("")
            except Exception as exc:
                return None, f"encrypted: {type(exc).__name__}"
            if not ok:
                return None, "encrypted: password required"
        parts = []
        for page in reader.pages:
            parts.append(page.extract_text() or "")
        return "\n".join(parts), None
    except Exception as exc:
        return None, f"pypdf: {type(exc).__name__}: {str(exc)[:200]}"


def _pdf_pdftotext(path: Path, timeout: float) -> tuple[str | None, str | None]:
    exe = shutil.which("pdftotext")
    if exe is None:
        return None, "pdftotext not installed"
    try:
        r = subprocess.run(
            [exe, "-q", "-enc", "UTF-8", str(path), "-"],
            capture_output=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return None, "pdftotext: timeout"
    if r.returncode != 0:
        return None, f"pdftotext: exit {r.returncode}"
    return r.stdout.decode("utf-8", errors="replace"), None


def _pdf_pdfminer(path: Path) -> tuple[str | None, str | None]:
    try:
        from pdfminer.high_level import extract_text

        return extract_text(str(path)), None
    except Exception as exc:
        return None, f"pdfminer: {type(exc).__name__}: {str(exc)[:200]}"


def pdf_text(path: Path, timeout: float = 30) -> Extraction:
    text, reason = _pdf_pypdf(path)
    if reason and reason.startswith("encrypted"):
        return Extraction(None, "failed", reason, "pypdf")
    good, share = text_quality(text or "")
    if text is not None and good > 0 and share >= 0.9:
        return _result(text, "pypdf")
    best: tuple[int, str | None, str] = (good if share >= 0.5 else 0, text, "pypdf")
    reasons = [reason] if reason else []
    for name, fn in (
        ("pdftotext", lambda: _pdf_pdftotext(path, timeout)),
        ("pdfminer", lambda: _pdf_pdfminer(path)),
    ):
        t, why = fn()
        if why:
            reasons.append(why)
            continue
        g, s = text_quality(t or "")
        if s >= 0.5 and g > best[0]:
            best = (g, t, name)
        if g > 0 and s >= 0.9:
            break
    if best[1] is None:
        return Extraction(None, "failed", "; ".join(reasons)[:500] or "no text", None)
    return _result(best[1], best[2])


# --- OOXML ------------------------------------------------------------------------------------


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


def extract_kind(path: Path, kind: str, timeout: float) -> Extraction:
    """PDF, OOXML or Office 97–2003 text (pdf/docx/xlsx/pptx/ole); meant to run in a child
    process with limits."""
    if kind == "pdf":
        return pdf_text(path, timeout=timeout)
    if kind == "ole":
        return ole_text(path)
    bad = check_zip(path)
    if bad:
        return Extraction(None, "failed", bad, None)
    fn = {"docx": docx_text, "xlsx": xlsx_text, "pptx": pptx_text}[kind]
    try:
        result = _result(fn(path), f"python-{kind}" if kind != "xlsx" else "openpyxl")
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
    fallback = _result(raw, "ooxml-xml")
    return fallback if fallback.status == "ok" else (failure or result)


def ole_text(path: Path) -> Extraction:
    """Word, Excel or PowerPoint 97–2003 text (:mod:`search.legacy_office`)."""
    from genpon.search.legacy_office import Encrypted, office97_text

    try:
        found = office97_text(path)
        if found is None:
            return Extraction(
                None, "unsupported", "compound file: not Word, Excel or PowerPoint", None
            )
        return _result(found[1], found[0])
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


def _limit_memory(mb: int) -> Any:
    def apply() -> None:
        import resource

        limit = mb * 1024 * 1024
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    return apply


def _in_child(path: Path, kind: str, timeout: float, memory_mb: int) -> Extraction:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(_ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    proc = subprocess.Popen(
        [sys.executable, "-m", "genpon.search.extract", str(path), kind, str(timeout)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,  # its own process group: pdftotext dies with it
        preexec_fn=_limit_memory(memory_mb),
        env=env,
        cwd=str(_ROOT),
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        return Extraction(None, "failed", f"timeout after {timeout:g} s", None)
    finally:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
    if proc.returncode != 0:
        tail = err.decode("utf-8", "replace").strip().splitlines()[-1:] or [""]
        why = "memory limit exceeded" if b"MemoryError" in err else f"exit {proc.returncode}"
        return Extraction(None, "failed", f"{kind}: {why} {tail[0][:200]}".strip(), None)
    try:
        data = json.loads(out)
        return Extraction(**data)
    except (ValueError, TypeError):
        return Extraction(None, "failed", "extractor returned garbage", None)


def extract(path: Path, mime: str | None, *, settings: Settings | None = None) -> Extraction:
    """Text of the file at ``path`` (never raises for a bad file; see the module docstring)."""
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
        if kind == "unsupported":
            return Extraction(None, "unsupported", f"type {mime or 'unknown'}", None)
        if kind in ("text", "html", "mail"):
            data = path.read_bytes()
            if kind == "html":
                return _result(html_text(data), "html")
            if kind == "mail":
                return _result(mail_text(data), "mail")
            return _result(decode_text(data), "text")
        return _in_child(path, kind, timeout, memory_mb)
    except Exception as exc:  # a bad file must never break the caller
        return Extraction(None, "failed", f"{type(exc).__name__}: {str(exc)[:300]}", None)


def _main(argv: list[str]) -> int:
    path, kind, timeout = Path(argv[0]), argv[1], float(argv[2])
    try:
        result = extract_kind(path, kind, timeout)
    except MemoryError:
        result = Extraction(None, "failed", "memory limit exceeded", None)
    except RecursionError:
        result = Extraction(None, "failed", "recursion limit (hostile structure)", None)
    out = io.TextIOWrapper(sys.stdout.buffer, encoding="utf-8")
    json.dump(asdict(result), out, ensure_ascii=False)
    out.flush()
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
