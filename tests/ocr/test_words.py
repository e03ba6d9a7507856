"""Word positions of OCR'd pages (search.word_boxes): boxes mapped back through the turns the
OCR made (deskew, orientation) into the page as shown, and the search terms found across the
short words Tesseract splits Japanese into."""

from __future__ import annotations

from typing import Any

import pytest
from genpon.search.word_boxes import SCALE, Box, Turn, decode, encode, page_words, term_boxes
from PIL import Image, ImageDraw


def _data(boxes: list[tuple[str, int, int, int, int]], line: int = 1) -> dict[str, list[Any]]:
    """An ``image_to_data`` answer with one line of words ``(text, left, top, width, height)``."""
    n = len(boxes)
    return {
        "text": [b[0] for b in boxes],
        "conf": [90.0] * n,
        "left": [b[1] for b in boxes],
        "top": [b[2] for b in boxes],
        "width": [b[3] for b in boxes],
        "height": [b[4] for b in boxes],
        "block_num": [1] * n,
        "par_num": [1] * n,
        "line_num": [line] * n,
    }


def _ink_box(im: Image.Image) -> tuple[int, int, int, int]:
    box = Image.eval(im, lambda v: 255 - v).getbbox()
    assert box is not None
    return box


@pytest.mark.parametrize("angles", [[90], [-90], [180], [3.0], [-2.5, 90]])
def test_boxes_are_mapped_back_through_the_turns(angles: list[float]) -> None:
    """A block drawn on the page, turned the way Pillow turns it for OCR: its box in the turned
    image maps back onto where it was drawn."""
    page = Image.new("L", (1000, 600), 255)
    ImageDraw.Draw(page).rectangle((700, 100, 799, 139), fill=0)
    im, turns = page, []
    for a in angles:
        turned = im.rotate(a, expand=True, fillcolor=255)
        turns.append(Turn(a, im.size, turned.size))
        im = turned
    x0, y0, x1, y1 = _ink_box(im)
    [[word]] = page_words(_data([("語", x0, y0, x1 - x0, y1 - y0)]), turns, page.size)
    # a box turned by a small angle grows: its corners reach out by at most sin(angle) × side
    tol = 0.012 * SCALE if any(a % 90 for a in angles) else 0.003 * SCALE
    want = [700 / 1000, 100 / 600, 800 / 1000, 140 / 600]
    for got, exp in zip(word[1:], want, strict=True):
        assert abs(got - exp * SCALE) <= tol, (word, want)


def test_terms_are_found_across_words_and_normalized() -> None:
    lines = [
        [["市民", 1000, 1000, 2000, 1200], ["税の", 2000, 1000, 3000, 1200]],
        [["ＡＢＣ窓口", 1000, 3000, 6000, 3200]],
        [["縦", 8000, 1000, 8200, 2000], ["書きの列", 8000, 2000, 8200, 6000]],
    ]
    # 市民税: across two words, the end within the second (half of 税の)
    [b] = term_boxes(lines, ["市民税"])
    assert b == Box(0.1, 0.1, 0.15, 0.02)
    # abc: full-width letters of a word match the normalized term, the word's first 3 of 5
    [b] = term_boxes(lines, ["abc"])
    assert b == Box(0.1, 0.3, 0.3, 0.02)
    # a vertical word (taller than wide): the share runs down the box
    [b] = term_boxes(lines, ["書き"])
    assert b == Box(0.8, 0.2, 0.02, 0.2)
    assert term_boxes(lines, ["道路"]) == [] and term_boxes(lines, []) == []
    assert len(term_boxes(lines, ["市民", "窓口"])) == 2


def test_encoding_round_trip() -> None:
    pages = {2: [[["語", 1, 2, 3, 4]]]}
    assert decode(encode(pages)) == pages
    assert encode({}) is None and decode(None) == {} and decode(b"garbage") == {}
