"""Text extraction, isolated so that a bad file never blocks or loses a deposit.

:func:`extract` never raises for a bad file: it returns an :class:`Extraction` whose ``status``
is ``ok`` (text found), ``empty`` (readable, no text), ``failed`` (broken, encrypted, hostile;
``reason`` says why) or ``unsupported`` (a type we do not read, e.g. images).

Plain text, CSV, Markdown, HTML and saved e-mail (:mod:`search.mail`) are decoded in this
process (bounded by size). PDF, OOXML (DOCX, XLSX, PPTX) and Office 97–2003 (DOC, XLS, PPT:
:mod:`search.legacy_office`) are parsed in a child process (``python -m genpon.search.extract``) with
a wall-clock timeout and an address-space limit, in its own process group, so a PDF that loops
or a zip bomb is killed with everything it started (pdftotext) and reported as ``failed``.

PDF: pypdf first; when it yields no text, mojibake (CJK fonts without a usable ToUnicode map),
replacement characters or CJK text in fragments (one character per line: vertical text, glyphs
drawn out of reading order), or asks for a password, poppler's ``pdftotext`` and then
pdfminer.six are tried and the best text wins (:class:`TextScore`). ``extractor`` records which
one produced the text and, when they were compared, ``reason`` why. Values filled into form
fields (AcroForm) are added to the text.

OCR (:mod:`search.ocr`, when ``settings.ocr_enabled``): PDF pages with (almost) no text layer
and images (PNG, JPEG, TIFF with all its pages) are read with Tesseract in the same child, each
page bounded by ``ocr_page_timeout_s``; the child's own timeout grows by that much per page it
may OCR. The text of OCR'd pages follows the text layer; ``extractor`` ends in ``ocr`` and
``details`` holds the engine, models and per-page confidence (stored in ``BlobText.details``).
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
from genpon.search.ocr import OcrOptions, image_ocr, ocr_options, pdf_ocr

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
    reason: str | None = None  # failed: why; ok from a PDF: why this extractor's text won
    extractor: str | None = None
    details: dict[str, Any] | None = None  # OCR: engine, models, per-page outcome


def _result(text: str | None, extractor: str) -> Extraction:
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


# --- PDF --------------------------------------------------------------------------------------


# characters that are not mojibake: mojibake from broken CJK fonts is mostly Greek, Coptic,
# Indic, Tibetan and private-use code points mixed together
_GOOD = re.compile(
    "["
    "\x00-\u024f"  # ASCII, Latin-1, Latin extended
    "\u2000-\u206f"  # punctuation
    "\u3000-\u30ff"  # CJK punctuation, kana
    "\u3400-\u9fff"  # ideographs
    "\ufe30-\ufe4f"  # vertical forms
    "\uff00-\uffef"  # full/half width
    "\u2460-\u27bf"  # enclosed numbers, shapes
    "]+"
)
_SPACE = re.compile(r"\s+")


CJK_HEAVY = 0.3  # share of CJK among the good characters from which layout is judged
MIN_CJK_RUN = 1.5  # mean CJK run below this: the text is broken into single characters
MIN_PER_LINE = 2.0  # mean characters per line below this: one character per line
MAX_REPLACEMENT = 0.01  # share of U+FFFD (characters the extractor could not map)


@dataclass(frozen=True)
class TextScore:
    """What a PDF text candidate looks like: mojibake, replacement characters, how long its
    lines and its CJK runs are (a CJK text split into one character per line is unsearchable
    even when every character is right)."""

    chars: int  # non-space characters
    good: int  # ... that are not mojibake (_GOOD)
    replacement: int  # U+FFFD
    cjk: int  # CJK characters (analyzer.char_class)
    lines: int  # non-empty lines
    cjk_runs: int  # maximal runs of CJK characters inside a line

    @property
    def share(self) -> float:
        return self.good / self.chars if self.chars else 0.0

    @property
    def per_line(self) -> float:
        return self.chars / self.lines if self.lines else 0.0

    @property
    def cjk_run(self) -> float:
        return self.cjk / self.cjk_runs if self.cjk_runs else 0.0

    @property
    def cjk_heavy(self) -> bool:
        return self.good > 0 and self.cjk >= CJK_HEAVY * self.good

    @property
    def fragmented(self) -> bool:
        """CJK text cut into pieces of one or two characters, or one character per line."""
        return self.cjk_heavy and (self.cjk_run < MIN_CJK_RUN or self.per_line < MIN_PER_LINE)

    @property
    def usable(self) -> bool:
        return self.good > 0 and self.share >= 0.5

    @property
    def fine(self) -> bool:
        """Good enough that no other extractor needs to be tried."""
        return (
            self.usable
            and self.share >= 0.9
            and self.replacement <= MAX_REPLACEMENT * self.chars
            and not self.fragmented
        )

    @property
    def value(self) -> float:
        """The characters worth indexing: good ones minus unmapped ones, and for CJK text in
        fragments only in proportion to how far its runs and lines fall short."""
        v = float(self.good - 2 * self.replacement)
        if self.cjk_heavy:
            v *= min(1.0, self.cjk_run / MIN_CJK_RUN, self.per_line / MIN_PER_LINE)
        return v

    def describe(self) -> str:
        if not self.chars:
            return "no text"
        out = f"{self.per_line:.1f} chars/line"
        if self.cjk:
            out += f", CJK runs {self.cjk_run:.1f}"
        if self.chars and self.share < 0.999:
            out += f", {1 - self.share:.0%} mojibake"
        if self.replacement:
            out += f", {self.replacement} unmapped"
        return out


SCORE_CHARS = 2_000_000  # a candidate is judged by its first this many characters


def score_text(text: str | None) -> TextScore:
    """:class:`TextScore` of an extractor's output (of its first ``SCORE_CHARS`` characters:
    the cost stays bounded on huge files, and the head shows how the extractor fared)."""
    from genpon.search.analyzer import CJK_RUN

    text = (text or "")[:SCORE_CHARS]
    solid = _SPACE.sub("", text)
    cjk_runs = CJK_RUN.findall(text)  # (a run ends at any space or other character)
    return TextScore(
        chars=len(solid),
        good=len(solid) - len(_GOOD.sub("", solid)),
        replacement=solid.count("\ufffd"),
        cjk=sum(map(len, cjk_runs)),
        lines=sum(1 for line in text.splitlines() if line.strip()),
        cjk_runs=len(cjk_runs),
    )


def _pdf_pypdf(path: Path) -> tuple[str | None, str | None, list[str]]:
    """(page text, why it failed, form field values): the text is None when pypdf could not
    read the file; the form values are read before the pages, so a page that breaks pypdf
    does not lose them."""
    import pypdf

    form: list[str] = []
    try:
        reader = pypdf.PdfReader(str(path))
        if reader.is_encrypted:
            try:
                ok = reader.decrypt("")
            except Exception as exc:
                return None, f"encrypted: {type(exc).__name__}", form
            if not ok:
                return None, "encrypted: password required", form
        form = form_values(reader)
        parts = []
        for page in reader.pages:
            parts.append(page.extract_text() or "")
        return "\n".join(parts), None, form
    except Exception as exc:
        return None, f"pypdf: {type(exc).__name__}: {str(exc)[:200]}", form


def form_values(reader: Any) -> list[str]:
    """The values filled into the text and choice fields of an open pypdf reader's AcroForm,
    in field order, each once."""
    try:
        fields = reader.get_fields() or {}
    except Exception:  # a broken form must not cost the page text
        return []
    from pypdf.generic import NameObject

    out: list[str] = []
    for field in fields.values():
        if not hasattr(field, "get") or field.get("/FT") not in ("/Tx", "/Ch"):
            continue  # buttons hold states, signatures hold signature dictionaries
        value = field.get("/V")
        for v in value if isinstance(value, list) else [value]:
            if not isinstance(v, str) or isinstance(v, NameObject):
                continue
            text = v.strip()
            if text and text not in out:
                out.append(text)
    return out


def _with_form_values(text: str | None, values: list[str]) -> str | None:
    """``text`` followed by the form values it does not show already (an extractor that draws
    the fields' appearances, such as pdftotext, often has them)."""
    missing = [v for v in values if not text or v not in text]
    if not missing:
        return text
    return ((text or "").rstrip() + "\n\n" if text and text.strip() else "") + "\n".join(missing)


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
    """The best text of three extractors (see :class:`TextScore`), with the form field values.

    pypdf is tried first and kept when its text is :attr:`TextScore.fine`; otherwise pdftotext
    and then pdfminer are tried (also when pypdf asks for a password: poppler reads files whose
    encryption covers only embedded files) and the candidate with the highest
    :attr:`TextScore.value` wins, a later one only when it is clearly (``CLEARLY``) better.
    When candidates were compared, ``reason`` says how each looked."""
    text, failure, form = _pdf_pypdf(path)
    failures = [failure] if failure else []
    tried: list[tuple[str, str, TextScore]] = []
    if text is not None:
        tried.append(("pypdf", text, score_text(text)))
    best = tried[0] if tried and tried[0][2].usable else None
    if best is None or not best[2].fine:
        for name, fn in (
            ("pdftotext", lambda: _pdf_pdftotext(path, timeout)),
            ("pdfminer", lambda: _pdf_pdfminer(path)),
        ):
            t, why = fn()
            if why or t is None:
                failures.append(why or f"{name}: no text")
                continue
            score = score_text(t)
            tried.append((name, t, score))
            if score.usable and (best is None or score.value > CLEARLY * best[2].value):
                best = (name, t, score)
            if best is not None and best[0] == name and score.fine:
                break
    if best is None:  # nothing usable: pypdf's text (empty, or mojibake) as before
        best = tried[0] if tried and tried[0][0] == "pypdf" else None
    if best is None:
        if form:
            return _result(_with_form_values(None, form), "pypdf")
        who = "pypdf" if failure and failure.startswith("encrypted") else None
        return Extraction(None, "failed", "; ".join(failures)[:500] or "no text", who)
    result = _result(_with_form_values(best[1], form), best[0])
    if result.status == "ok" and len(tried) + len(failures) > 1:
        result.reason = _choice_reason(best[0], tried, failures)
    return result


CLEARLY = 1.1  # a later extractor replaces an earlier one only when worth this much more


def _choice_reason(
    winner: str, tried: list[tuple[str, str, TextScore]], failures: list[str]
) -> str:
    """Why ``winner``'s text was kept: how every candidate looked, and what failed."""
    parts = [f"{name}: {score.describe()}" for name, _, score in tried]
    return (f"{winner} chosen; " + "; ".join(parts + failures))[:500]


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


def _in_child(
    path: Path, kind: str, timeout: float, memory_mb: int, ocr: OcrOptions | None = None
) -> Extraction:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(_ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env.setdefault("OMP_THREAD_LIMIT", "1")  # Tesseract on one core
    args = [sys.executable, "-m", "genpon.search.extract", str(path), kind, str(timeout)]
    if ocr is not None and kind in ("pdf", "image"):
        # every page OCR'd may take its own timeout; the child stops starting pages in time
        budget = ocr.page_timeout_s * ocr.max_pages
        args.append(json.dumps({**asdict(ocr), "deadline": None, "budget": budget}))
        timeout = timeout + budget * 1.1 + 10
    proc = subprocess.Popen(
        args,
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
                return _result(html_text(data), "html")
            if kind == "mail":
                return _result(mail_text(data), "mail")
            return _result(decode_text(data), "text")
        return _in_child(path, kind, timeout, memory_mb, ocr)
    except Exception as exc:  # a bad file must never break the caller
        return Extraction(None, "failed", f"{type(exc).__name__}: {str(exc)[:300]}", None)


def _main(argv: list[str]) -> int:
    path, kind, timeout = Path(argv[0]), argv[1], float(argv[2])
    ocr = None
    if len(argv) > 3:
        import time

        from genpon.search.ocr import child_env

        child_env()
        raw = json.loads(argv[3])
        budget = float(raw.pop("budget"))
        ocr = OcrOptions(**{**raw, "deadline": time.monotonic() + budget})
    try:
        result = extract_kind(path, kind, timeout, ocr)
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
