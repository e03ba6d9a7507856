"""Where each word is on a page, so the viewer can mark the search terms on a page image: read
by OCR, or from a PDF's text layer.

Tesseract's ``image_to_data`` gives a box per word in the image it read, which
:func:`search.ocr.ocr_page` may have straightened (deskew) and turned (orientation) with
``Image.rotate(expand=True)``. :func:`page_words` maps every box back through those turns into
the page as rendered (the PDF page from poppler, the image frame) and keeps it as fractions of
the page's width and height (in units of 1/10000), so it fits a page image of any width.

Stored per content in ``BlobText.words_z`` (zlib-compressed JSON ``{"<page>": [line, ...]}``,
a line being ``[[word, x0, y0, x1, y1], ...]``): derived data, rebuilt with the text.
:func:`term_boxes` finds the search terms (normalized as search does) in a page's lines, also
across the words of a line (Tesseract splits Japanese into short words), and answers one box
per occurrence.

Pages with a text layer: :func:`pdf_layout_words` reads the word boxes of poppler's
``pdftotext -bbox-layout`` (points on the page poppler renders), kept by
:mod:`search.preview` in the derived cache beside the rendered pages.
"""

from __future__ import annotations

import html
import json
import math
import re
import zlib
from dataclasses import dataclass
from typing import Any

from genpon.search.analyzer import normalize

SCALE = 10_000  # box coordinates are fractions of the page in these units

Line = list[list[Any]]  # [[word, x0, y0, x1, y1], ...]


@dataclass(frozen=True)
class Turn:
    """One ``Image.rotate(angle, expand=True)``: the angle (degrees, counter-clockwise) and the
    image size before and after."""

    angle: float
    before: tuple[int, int]
    after: tuple[int, int]


def _unturn(x: float, y: float, turn: Turn) -> tuple[float, float]:
    """A point of the turned image, in the image before the turn (both centred)."""
    dx, dy = x - turn.after[0] / 2, y - turn.after[1] / 2
    a = math.radians(turn.angle)
    ox = dx * math.cos(a) - dy * math.sin(a)
    oy = dx * math.sin(a) + dy * math.cos(a)
    return ox + turn.before[0] / 2, oy + turn.before[1] / 2


def page_words(data: dict[str, list[Any]], turns: list[Turn], page: tuple[int, int]) -> list[Line]:
    """The words of an ``image_to_data`` answer by line, each with its box in the page frame of
    size ``page`` (the image before the ``turns``, applied in order) as fractions × ``SCALE``."""
    lines: dict[tuple[int, int, int], Line] = {}
    w, h = page
    for i, word in enumerate(data["text"]):
        word = (word or "").strip()
        if not word or float(data["conf"][i]) < 0:
            continue
        left, top = float(data["left"][i]), float(data["top"][i])
        right, bottom = left + float(data["width"][i]), top + float(data["height"][i])
        corners = [(left, top), (right, top), (left, bottom), (right, bottom)]
        for turn in reversed(turns):
            corners = [_unturn(x, y, turn) for x, y in corners]
        xs, ys = [c[0] for c in corners], [c[1] for c in corners]

        def frac(v: float, size: int) -> int:
            return max(0, min(SCALE, round(v / size * SCALE)))

        box = [frac(min(xs), w), frac(min(ys), h), frac(max(xs), w), frac(max(ys), h)]
        key = (data["block_num"][i], data["par_num"][i], data["line_num"][i])
        lines.setdefault(key, []).append([word, *box])
    return list(lines.values())


def encode(pages: dict[int, list[Line]]) -> bytes | None:
    if not pages:
        return None
    body = json.dumps({str(k): v for k, v in pages.items()}, ensure_ascii=False)
    return zlib.compress(body.encode("utf-8"), 6)


def decode(blob: bytes | None) -> dict[int, list[Line]]:
    if not blob:
        return {}
    try:
        data = json.loads(zlib.decompress(blob).decode("utf-8"))
        return {int(k): v for k, v in data.items()}
    except (zlib.error, ValueError, AttributeError):
        return {}


@dataclass(frozen=True)
class Box:
    """A highlighted area: fractions (0-1) of the page's width and height."""

    x: float
    y: float
    w: float
    h: float


def _norm(text: str) -> tuple[str, list[int]]:
    """``text`` normalized as search does (lower case, full-width as half-width), with the
    index in ``text`` of every normalized character."""
    chars: list[str] = []
    idx: list[int] = []
    for i, ch in enumerate(text):
        for c in normalize(ch) if not ch.isascii() else ch.lower():
            chars.append(c)
            idx.append(i)
    return "".join(chars), idx


def _part(word: list[Any], a: int, b: int) -> tuple[float, float, float, float]:
    """The box of characters ``a``..``b`` of a word: a share of its box along its longer side
    (a vertical word runs down)."""
    text, x0, y0, x1, y1 = word
    n = max(1, len(text))
    if (y1 - y0) > (x1 - x0) * 1.5 and n > 1:
        return x0, y0 + (y1 - y0) * a / n, x1, y0 + (y1 - y0) * b / n
    return x0 + (x1 - x0) * a / n, y0, x0 + (x1 - x0) * b / n, y1


def term_boxes(lines: list[Line], needles: list[str]) -> list[Box]:
    """One box per occurrence of a needle (already normalized) in a line of words."""
    needles = sorted({n for n in needles if n}, key=len, reverse=True)
    if not needles:
        return []
    pattern = re.compile("|".join(re.escape(n) for n in needles))
    boxes: list[Box] = []
    for line in lines:
        joined = "".join(str(w[0]) for w in line)
        owner = [(i, j) for i, w in enumerate(line) for j in range(len(str(w[0])))]
        norm, idx = _norm(joined)
        for m in pattern.finditer(norm):
            first, last = owner[idx[m.start()]], owner[idx[m.end() - 1]]
            parts = []
            for wi in range(first[0], last[0] + 1):
                a = first[1] if wi == first[0] else 0
                b = last[1] + 1 if wi == last[0] else len(str(line[wi][0]))
                parts.append(_part(line[wi], a, b))
            x0, y0 = min(p[0] for p in parts), min(p[1] for p in parts)
            x1, y1 = max(p[2] for p in parts), max(p[3] for p in parts)
            boxes.append(
                Box(x0 / SCALE, y0 / SCALE, max(x1 - x0, 1) / SCALE, max(y1 - y0, 1) / SCALE)
            )
    return boxes


_PAGE = re.compile(r'<page width="([\d.]+)" height="([\d.]+)">(.*?)</page>', re.S)
_LINE = re.compile(r"<line [^>]*>(.*?)</line>", re.S)
_WORD = re.compile(
    r'<word xMin="([-\d.]+)" yMin="([-\d.]+)" xMax="([-\d.]+)" yMax="([-\d.]+)">(.*?)</word>',
    re.S,
)


def pdf_layout_words(xhtml: str) -> dict[int, list[Line]]:
    """Every page's lines of words from ``pdftotext -bbox-layout`` output, boxes as fractions of
    the page × ``SCALE`` (pages without words have an empty list)."""
    pages: dict[int, list[Line]] = {}
    for n, m in enumerate(_PAGE.finditer(xhtml), 1):
        w, h = float(m.group(1)) or 1.0, float(m.group(2)) or 1.0
        lines: list[Line] = []
        for line in _LINE.finditer(m.group(3)):
            words: Line = []
            for x0, y0, x1, y1, text in _WORD.findall(line.group(1)):

                def frac(v: str, size: float) -> int:
                    return max(0, min(SCALE, round(float(v) / size * SCALE)))

                text = html.unescape(text).strip()
                if text:
                    words.append([text, frac(x0, w), frac(y0, h), frac(x1, w), frac(y1, h)])
            if words:
                lines.append(words)
        pages[n] = lines
    return pages
