"""OCR of scanned pages and images with Tesseract's Japanese models, through pytesseract.

Runs inside the extraction child (:mod:`search.extract`), which bounds its memory and wall
clock; here every Tesseract call is bounded too (``page_timeout_s`` per page, shared by the
calls a page needs) and a page that fails is recorded while the others are kept.

Per page: the image is made grayscale with square pixels (fax TIFFs are 204×98 or 204×196 dpi),
straightened (deskew: the small angle at which the row or column profile of the ink is
sharpest), then read with the horizontal models (``languages``, default ``jpn``); a blank page
is not read. When that finds text with a low mean confidence, Tesseract's orientation detection (``--psm 0``, ``osd.traineddata``) turns a
page lying on its side or upside down, and the vertical model (``jpn_vert`` with ``--psm 5``,
one block of vertical text: the default layout mode loses columns) is tried; the reading with
the better mean confidence is kept.

pytesseract (not tesserocr, not OCRmyPDF): it calls the Debian ``tesseract`` binary, so the
models and engine are the system's (security updates through apt, no second copy of
libtesseract in a wheel), every call runs in its own process that pytesseract kills at its
timeout (an in-process binding cannot be interrupted), and ``image_to_data`` gives the word
confidences we store. OCRmyPDF makes searchable PDFs, which we do not keep (the original is the
record), and cannot choose the vertical model per page.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import tempfile
import time
import warnings
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from genpon.search.word_boxes import Turn, page_words

if TYPE_CHECKING:
    from genpon.core.settings import Settings
    from genpon.search.extract import Extraction
    from PIL import Image as PILImage

MAX_PIXELS = 120_000_000  # a page image larger than this is refused (about A0 at 300 dpi)
GOOD_CONFIDENCE = 80.0  # a horizontal reading this confident is kept without trying others
TEXT_LAYER_MIN = 20  # a PDF page with fewer non-space characters is OCR'd
OSD_MIN_CONFIDENCE = 1.5  # orientation confidence from which a page is turned

_CJK = r"\u3000-\u30ff\u3400-\u9fff\uf900-\ufaff\uff00-\uffef"
_SPACE_IN_CJK = re.compile(rf"(?<=[{_CJK}]) +(?=[{_CJK}])")


@dataclass(frozen=True)
class OcrOptions:
    languages: str = "jpn"
    dpi: int = 300
    page_timeout_s: float = 60.0
    max_pages: int = 200
    deadline: float | None = None  # time.monotonic() after which no page is started

    @property
    def vertical_languages(self) -> str | None:
        """The vertical models matching ``languages`` (``jpn`` → ``jpn_vert``), if installed."""
        have = installed_languages()
        vert = [f"{lang}_vert" for lang in self.languages.split("+") if f"{lang}_vert" in have]
        return "+".join(vert) or None


@dataclass
class PageResult:
    page: int
    status: str  # ok | empty | failed | skipped
    text: str = ""
    reason: str | None = None
    languages: str | None = None
    psm: int | None = None
    rotate: int = 0  # degrees turned clockwise before recognition
    deskew: float = 0.0  # degrees the page was straightened by
    confidence: float | None = None  # mean word confidence, 0-100, weighted by length
    chars: int = 0
    seconds: float = 0.0
    tried: list[str] = field(default_factory=list)  # "jpn/3:41.2", "jpn_vert/5:93.0"
    words: list[Any] | None = None  # lines of words with their boxes (search.word_boxes)

    def summary(self) -> dict[str, Any]:
        d = asdict(self)
        del d["text"], d["words"]
        return {k: v for k, v in d.items() if v not in (None, [], 0.0) or k == "page"}


# --- the engine -----------------------------------------------------------------------------------


def tesseract_available() -> bool:
    return shutil.which("tesseract") is not None


@lru_cache(maxsize=1)
def installed_languages() -> frozenset[str]:
    try:
        import pytesseract

        return frozenset(pytesseract.get_languages(config=""))
    except Exception:
        return frozenset()


@lru_cache(maxsize=1)
def engine_version() -> str:
    try:
        import pytesseract

        return str(pytesseract.get_tesseract_version())
    except Exception:
        return "unknown"


def engine_details(options: OcrOptions) -> dict[str, Any]:
    from importlib.metadata import version

    return {
        "engine": "tesseract",
        "engine_version": engine_version(),
        "library": f"pytesseract {version('pytesseract')}",
        "languages": options.languages,
        "vertical_languages": options.vertical_languages,
        "dpi": options.dpi,
    }


class PageTimeout(Exception):
    pass


def _remaining(deadline: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0.5:
        raise PageTimeout("page timeout")
    return left


@dataclass
class Reading:
    text: str
    confidence: float
    languages: str
    psm: int
    data: dict[str, list[Any]] = field(default_factory=dict, repr=False)  # image_to_data
    turns: list[Turn] = field(default_factory=list)  # the page's turns before this reading

    @property
    def label(self) -> str:
        return f"{self.languages}/{self.psm}:{self.confidence:.1f}"


def _recognize(img: PILImage.Image, languages: str, psm: int, dpi: int, deadline: float) -> Reading:
    """Text (lines from Tesseract's layout, no spaces between CJK characters) and its mean
    word confidence, weighted by word length."""
    import pytesseract

    try:
        data = pytesseract.image_to_data(
            img,
            lang=languages,
            config=f"--psm {psm} --dpi {dpi}",
            output_type=pytesseract.Output.DICT,
            timeout=_remaining(deadline),
        )
    except RuntimeError as exc:  # pytesseract's "Tesseract process timeout"
        if "timeout" in str(exc).lower():
            raise PageTimeout("page timeout") from exc
        raise
    lines: dict[tuple[int, int, int], list[str]] = {}
    weight = total = 0.0
    for i, word in enumerate(data["text"]):
        word = (word or "").strip()
        conf = float(data["conf"][i])
        if not word or conf < 0:
            continue
        key = (data["block_num"][i], data["par_num"][i], data["line_num"][i])
        lines.setdefault(key, []).append(word)
        weight += len(word)
        total += conf * len(word)
    text = "\n".join(_SPACE_IN_CJK.sub("", " ".join(words)) for words in lines.values())
    return Reading(text, total / weight if weight else 0.0, languages, psm, data)


def _orientation(img: PILImage.Image, deadline: float) -> int:
    """Degrees to turn the page clockwise (0, 90, 180, 270) by Tesseract's OSD, read on a
    reduced copy (it needs only the shapes); 0 when unsure or when OSD fails (too few
    characters)."""
    import pytesseract

    small = img
    if min(img.size) > 1600:
        f = 1600 / min(img.size)
        small = img.resize((round(img.width * f), round(img.height * f)))
    try:
        osd = pytesseract.image_to_osd(
            small,
            config="--psm 0",
            output_type=pytesseract.Output.DICT,
            timeout=min(_remaining(deadline), 30),
        )
    except RuntimeError as exc:
        if "timeout" in str(exc).lower():
            raise PageTimeout("page timeout") from exc
        return 0
    except Exception:  # TesseractError: too few characters to decide
        return 0
    if float(osd.get("orientation_conf", 0)) < OSD_MIN_CONFIDENCE:
        return 0
    return int(osd.get("rotate", 0)) % 360


# --- images -----------------------------------------------------------------------------------


def _profile_sharpness(img: PILImage.Image) -> float:
    """How sharply the ink falls into rows or columns: the larger variance of the row and the
    column means (text lines or columns aligned with the axes give tall peaks)."""
    from PIL import Image, ImageStat

    rows = img.resize((1, img.height), Image.Resampling.BOX)
    cols = img.resize((img.width, 1), Image.Resampling.BOX)
    return max(ImageStat.Stat(rows).var[0], ImageStat.Stat(cols).var[0])


def skew_angle(img: PILImage.Image, limit: float = 5.0) -> float:
    """The angle (degrees, counter-clockwise) that straightens ``img``, searched within
    ±``limit`` on a reduced, inverted copy: coarse steps of 0.5°, then 0.1° around the best."""
    from PIL import Image, ImageOps

    small = img.convert("L")
    if max(small.size) > 1000:
        f = 1000 / max(small.size)
        small = small.resize((max(1, round(small.width * f)), max(1, round(small.height * f))))
    ink = ImageOps.invert(small)

    def score(a: float) -> float:
        return _profile_sharpness(ink.rotate(a, resample=Image.Resampling.BILINEAR, fillcolor=0))

    base = score(0.0)
    coarse = [x / 2 for x in range(int(-limit * 2), int(limit * 2) + 1)]
    best = max(coarse, key=score)
    fine = [best + x / 10 for x in range(-4, 5)]
    best = max(fine, key=score)
    return best if abs(best) >= 0.2 and score(best) > base * 1.02 else 0.0


BLANK_INK = 0.0005  # share of dark pixels below which a page is blank


def blank(img: PILImage.Image) -> bool:
    """No ink worth reading: fewer than ``BLANK_INK`` of the pixels are dark."""
    hist = img.convert("L").histogram()
    return sum(hist[:128]) < BLANK_INK * img.width * img.height


def prepare(img: PILImage.Image, dpi: int) -> tuple[PILImage.Image, float, int]:
    """Grayscale, square pixels (the higher of the two resolutions; ``dpi`` when the image
    says none), straightened; returns the image, the deskew angle and its resolution."""
    from PIL import Image

    src_dpi = img.info.get("dpi") or (dpi, dpi)
    try:
        xd, yd = float(src_dpi[0]) or dpi, float(src_dpi[1]) or dpi
    except (TypeError, ValueError, IndexError):
        xd = yd = float(dpi)
    gray = img.convert("L")
    target = max(xd, yd)  # not enlarged beyond: enlarging a noisy scan makes specks into ink
    w, h = round(gray.width * target / xd), round(gray.height * target / yd)
    if (w, h) != gray.size and w * h <= MAX_PIXELS:
        gray = gray.resize((w, h), Image.Resampling.LANCZOS)
    angle = skew_angle(gray)
    frame = gray.size
    if angle:
        gray = gray.rotate(angle, resample=Image.Resampling.BICUBIC, expand=True, fillcolor=255)
    gray.info["frame"] = frame  # the page's size before the turn (search.word_boxes)
    return gray, angle, round(target)


def ocr_page(img: PILImage.Image, page: int, options: OcrOptions) -> PageResult:
    """One page image: see the module docstring. Never raises; a failure is the result's
    ``status`` and ``reason``."""
    start = time.monotonic()
    deadline = start + options.page_timeout_s
    result = PageResult(page=page, status="failed")
    try:
        gray, result.deskew, dpi = prepare(img, options.dpi)
        frame = gray.info["frame"]
        turns = [Turn(result.deskew, frame, gray.size)] if result.deskew else []
        if blank(gray):
            result.status, result.seconds = "empty", round(time.monotonic() - start, 2)
            return result
        best = _recognize(gray, options.languages, 3, dpi, deadline)
        best.turns = list(turns)
        result.tried.append(best.label)
        if best.text and best.confidence < GOOD_CONFIDENCE:
            turn = _orientation(gray, deadline)
            if turn:
                result.rotate = turn
                before = gray.size
                gray = gray.rotate(-turn, expand=True)
                turns.append(Turn(-turn, before, gray.size))
                turned = _recognize(gray, options.languages, 3, dpi, deadline)
                result.tried.append(f"rotate {turn}: {turned.label}")
                turned.turns = list(turns)
                best = max(best, turned, key=lambda r: r.confidence)
        vertical = options.vertical_languages
        if vertical and best.text and best.confidence < GOOD_CONFIDENCE:
            vert = _recognize(gray, vertical, 5, dpi, deadline)
            vert.turns = list(turns)
            result.tried.append(vert.label)
            if vert.confidence > best.confidence:
                best = vert
        result.text = best.text
        result.languages, result.psm = best.languages, best.psm
        result.confidence = round(best.confidence, 1)
        result.chars = len(re.sub(r"\s", "", best.text))
        result.status = "ok" if result.chars else "empty"
        if result.chars:  # boxes on the page as the viewer shows it (upright: search.render)
            result.words = page_words(best.data, best.turns, frame)
    except PageTimeout:
        result.reason = f"timeout after {options.page_timeout_s:g} s"
    except MemoryError:
        result.reason = "memory limit exceeded"
    except Exception as exc:
        result.reason = f"{type(exc).__name__}: {str(exc)[:200]}"
    result.seconds = round(time.monotonic() - start, 2)
    return result


@contextlib.contextmanager
def _bomb_limit() -> Iterator[None]:
    """Pillow refuses images above ``MAX_PIXELS`` (its decompression-bomb check) as an error."""
    from PIL import Image

    old = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = MAX_PIXELS // 2  # Pillow raises at twice this, warns above it
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            yield
    finally:
        Image.MAX_IMAGE_PIXELS = old


def image_frames(path: Path) -> Iterator[PILImage.Image]:
    """Every frame of a PNG, JPEG or (multi-page) TIFF, loaded one at a time."""
    from PIL import Image, ImageOps, ImageSequence

    with Image.open(path) as im:
        for frame in ImageSequence.Iterator(im):
            frame.load()
            out = ImageOps.exif_transpose(frame.copy())  # a phone photo's orientation tag
            out.info["dpi"] = frame.info.get("dpi", out.info.get("dpi"))
            yield out


def ocr_image_file(path: Path, options: OcrOptions) -> tuple[list[PageResult], str | None]:
    """OCR of every frame of an image file; (pages, why the file could not be read)."""
    from PIL import Image

    pages: list[PageResult] = []
    with _bomb_limit():
        try:
            for n, frame in enumerate(image_frames(path), 1):
                if n > options.max_pages:
                    pages.append(PageResult(page=n, status="skipped", reason="ocr_max_pages"))
                    break
                if options.deadline is not None and time.monotonic() > options.deadline:
                    pages.append(PageResult(page=n, status="skipped", reason="time budget"))
                    break
                pages.append(ocr_page(frame, n, options))
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            return pages, f"image too large (decompression bomb limit): {str(exc)[:200]}"
        except MemoryError:
            return pages, "memory limit exceeded"
        except Exception as exc:  # broken TIFF, truncated JPEG, unknown format
            return pages, f"broken image: {type(exc).__name__}: {str(exc)[:200]}"
    return pages, None


# --- PDF --------------------------------------------------------------------------------------


def pdf_page_texts(path: Path, timeout: float) -> list[str] | None:
    """The text layer of every page (pdftotext ends each page with a form feed); None when
    poppler cannot read the file."""
    exe = shutil.which("pdftotext")
    if exe is None:
        return None
    try:
        r = subprocess.run(
            [exe, "-q", "-enc", "UTF-8", str(path), "-"],
            capture_output=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return None
    if r.returncode != 0:
        return None
    pages = r.stdout.decode("utf-8", errors="replace").split("\f")
    return pages[:-1] if pages and not pages[-1].strip() else pages


def pages_without_text(texts: list[str]) -> list[int]:
    """1-based numbers of the pages with (almost) no text layer."""
    return [n for n, t in enumerate(texts, 1) if len(re.sub(r"\s", "", t)) < TEXT_LAYER_MIN]


def _page_dpi(path: Path, page: int, dpi: int) -> int:
    """``dpi``, lowered so that the rendered page stays within what :func:`_bomb_limit` lets
    Pillow open (``MAX_PIXELS // 2``: it warns above that, and the warning is an error), e.g. a
    poster of 44 × 21 inches is read at 260 dpi instead of failing."""
    try:
        import pypdf

        box = pypdf.PdfReader(str(path)).pages[page - 1].mediabox
        w_in, h_in = float(box.width) / 72, float(box.height) / 72
    except Exception:
        return dpi
    if w_in <= 0 or h_in <= 0:
        return dpi
    cap = (MAX_PIXELS // 2 / (w_in * h_in)) ** 0.5
    return max(1, min(dpi, int(cap)))


def render_pdf_page(path: Path, page: int, dpi: int, timeout: float) -> PILImage.Image:
    """One page rendered by poppler's pdftoppm (grayscale PNG) at ``dpi``."""
    from PIL import Image

    exe = shutil.which("pdftoppm")
    if exe is None:
        raise RuntimeError("pdftoppm not installed")
    dpi = _page_dpi(path, page, dpi)
    with tempfile.TemporaryDirectory(prefix="genpon-ocr-") as tmp:
        out = Path(tmp) / "page"
        try:
            r = subprocess.run(
                [
                    exe,
                    "-q",
                    "-f",
                    str(page),
                    "-l",
                    str(page),
                    "-r",
                    str(dpi),
                    "-gray",
                    "-png",
                    "-singlefile",
                    str(path),
                    str(out),
                ],
                capture_output=True,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise PageTimeout("page timeout") from exc
        png = out.with_suffix(".png")
        if r.returncode != 0 or not png.exists():
            raise RuntimeError(f"pdftoppm: exit {r.returncode}")
        with _bomb_limit(), Image.open(png) as im:
            im.load()
            img = im.copy()
    img.info["dpi"] = (dpi, dpi)
    return img


def ocr_pdf_pages(path: Path, pages: list[int], options: OcrOptions) -> list[PageResult]:
    """OCR of the given (1-based) pages of a PDF, each rendered at ``options.dpi``."""
    results: list[PageResult] = []
    for i, n in enumerate(pages):
        if i >= options.max_pages:
            results += [
                PageResult(page=m, status="skipped", reason="ocr_max_pages") for m in pages[i:]
            ]
            break
        if options.deadline is not None and time.monotonic() > options.deadline:
            results += [
                PageResult(page=m, status="skipped", reason="time budget") for m in pages[i:]
            ]
            break
        start = time.monotonic()
        try:
            img = render_pdf_page(path, n, options.dpi, options.page_timeout_s)
        except PageTimeout:
            results.append(PageResult(page=n, status="failed", reason="render timeout"))
            continue
        except Exception as exc:
            results.append(PageResult(page=n, status="failed", reason=f"render: {str(exc)[:200]}"))
            continue
        left = options.page_timeout_s - (time.monotonic() - start)
        page_opts = OcrOptions(
            options.languages, options.dpi, max(1.0, left), options.max_pages, options.deadline
        )
        results.append(ocr_page(img, n, page_opts))
    return results


def details(options: OcrOptions, pages: list[PageResult], **extra: Any) -> dict[str, Any]:
    """What is stored with the text (``BlobText.details``): engine, models, and per page its
    outcome, model, orientation, deskew and mean confidence."""
    confs = [p.confidence for p in pages if p.confidence is not None and p.status == "ok"]
    return {
        **engine_details(options),
        "mean_confidence": round(sum(confs) / len(confs), 1) if confs else None,
        "pages": [p.summary() for p in pages],
        **extra,
    }


# --- as the extractor's results (search.extract.Extraction) ------------------------------------


def ocr_options(settings: Settings | None, *, force: bool = False) -> OcrOptions | None:
    """The OCR options of ``settings``; None when OCR is off (``ocr_enabled`` false, or unset
    and Tesseract not installed) or without settings (the import's extractor), unless
    ``force`` (``genpon ocr``) and Tesseract is installed."""
    if settings is None:
        return OcrOptions() if force and tesseract_available() else None
    enabled = settings.ocr_enabled
    if enabled is None or force:
        enabled = tesseract_available()
    if not enabled:
        return None
    return OcrOptions(
        languages=settings.ocr_languages,
        dpi=settings.ocr_dpi,
        page_timeout_s=float(settings.ocr_page_timeout_s),
        max_pages=settings.ocr_max_pages,
    )


def _outcome(
    base: Extraction, pages: list[Any], ocr: OcrOptions, failure: str | None, **extra: Any
) -> Extraction:
    """The text layer's extraction (``base``) with the OCR'd pages' text after it."""
    from genpon.search.extract import Extraction, _result

    info = details(ocr, pages, **extra)
    if failure:
        info["error"] = failure
    ocr_text = "\n\n".join(p.text for p in pages if p.status == "ok" and p.text)
    layer = base.text if base.status == "ok" and base.text else None
    text = "\n\n".join(t for t in (layer, ocr_text) if t)
    if text.strip():
        out = _result(text, f"{base.extractor}+ocr" if layer and base.extractor else "ocr")
        out.reason = base.reason if layer else None
        out.details = info
        out.words = {str(p.page): p.words for p in pages if p.words} or None
        return out
    problems = [f"page {p.page}: {p.reason}" for p in pages if p.status == "failed"]
    if failure or (problems and not any(p.status == "empty" for p in pages)):
        why = "; ".join(([failure] if failure else []) + problems)
        return Extraction(None, "failed", f"ocr: {why}"[:500], "ocr", info)
    return Extraction(None, "empty", None, "ocr", info)


def image_ocr(path: Path, ocr: OcrOptions) -> Extraction:
    """PNG, JPEG or TIFF (every page): OCR."""
    from genpon.search.extract import Extraction

    pages, failure = ocr_image_file(path, ocr)
    return _outcome(Extraction(None, "empty"), pages, ocr, failure)


def pdf_ocr(path: Path, result: Extraction, ocr: OcrOptions, timeout: float) -> Extraction:
    """``result`` (the text layer) plus the OCR of the pages that have (almost) no text layer;
    ``result`` itself when every page has text, or the file is encrypted or unreadable."""
    if result.status == "failed" and (result.reason or "").startswith("encrypted"):
        return result
    texts = pdf_page_texts(path, timeout)  # poppler again: per page, split at form feeds
    if not texts:
        return result
    todo = pages_without_text(texts)
    if not todo:
        return result
    pages = ocr_pdf_pages(path, todo, ocr)
    return _outcome(result, pages, ocr, None, page_count=len(texts), ocr_pages=len(todo))


def child_env() -> None:
    """Tesseract on one core: the extraction child is one of several workers."""
    os.environ.setdefault("OMP_THREAD_LIMIT", "1")
