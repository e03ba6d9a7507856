"""Generated scans for the OCR tests: Japanese text drawn with the IPA Gothic font, horizontal
or vertical (縦書き), at a given resolution, slightly rotated and with speckle noise, saved as
PNG, TIFF (multi-page) or image-only PDF."""

from __future__ import annotations

import random
import re
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

FONT = Path("/usr/share/fonts/opentype/ipafont-gothic/ipag.ttf")

# short lines of an ordinary municipal notice (horizontal) and a 決裁 memo (vertical)
HORIZONTAL = [
    "令和六年度市民税の申告について",
    "申告書は三月十五日までに市役所",
    "税務課の窓口へ提出してください。",
    "郵送による提出も受け付けます。",
]
VERTICAL = [
    "道路補修工事の決裁",
    "本件は予算の範囲内",
    "で執行するものとし",
    "工期は九月末とする。",
]


def render(
    lines: list[str],
    *,
    vertical: bool = False,
    dpi: int = 300,
    angle: float = 0.0,
    noise: float = 0.0,
    seed: int = 1,
) -> Image.Image:
    """A grayscale page (about A6) with ``lines`` in 12 pt type: rows top to bottom, or
    columns right to left; rotated by ``angle`` degrees; ``noise`` is the share of pixels
    flipped to black or white."""
    size = round(12 * dpi / 72)
    font = ImageFont.truetype(str(FONT), size)
    w, h = round(4.1 * dpi), round(5.8 * dpi)
    if vertical:
        w, h = h * 2 // 3, h
    im = Image.new("L", (w, h), 255)
    d = ImageDraw.Draw(im)
    margin = dpi // 2
    step = round(size * 1.8)
    for i, line in enumerate(lines):
        if vertical:
            d.text(
                (w - margin - size - i * step, margin),
                line,
                font=font,
                fill=0,
                direction="ttb",
                features=["vert"],
            )
        else:
            d.text((margin, margin + i * step), line, font=font, fill=0)
    if angle:
        im = im.rotate(angle, resample=Image.Resampling.BICUBIC, expand=True, fillcolor=255)
    if noise:
        rnd = random.Random(seed)
        px = im.load()
        for _ in range(int(im.width * im.height * noise)):
            x, y = rnd.randrange(im.width), rnd.randrange(im.height)
            px[x, y] = 0 if rnd.random() < 0.5 else 255
    im.info["dpi"] = (dpi, dpi)
    return im


def save_pdf(pages: list[Image.Image], path: Path, dpi: int) -> Path:
    pages[0].save(path, "PDF", resolution=dpi, save_all=True, append_images=pages[1:])
    return path


def save_tiff(pages: list[Image.Image], path: Path, dpi: int, *, fax: bool = False) -> Path:
    """Multi-page TIFF; ``fax``: bilevel with CCITT Group 4 compression, as a fax server
    stores it."""
    frames = [p.convert("1") for p in pages] if fax else pages
    frames[0].save(
        path,
        "TIFF",
        dpi=(dpi, dpi),
        save_all=True,
        append_images=frames[1:],
        compression="group4" if fax else "tiff_lzw",
    )
    return path


_WS = re.compile(r"\s+")


def cer(found: str, truth: str) -> float:
    """Character error rate: edit distance over the length of the truth, whitespace ignored."""
    a, b = _WS.sub("", found), _WS.sub("", truth)
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1] / max(1, len(b))
