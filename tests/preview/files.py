"""Files made for the viewer tests: PDFs and images drawn with Pillow, an encrypted PDF (pypdf),
a multi-page TIFF, a decompression bomb and a broken TIFF."""

from __future__ import annotations

import io
import struct
import zlib

from PIL import Image, ImageDraw

COLORS = [(200, 30, 30), (30, 160, 30), (30, 30, 200), (200, 200, 30)]


def page_images(n: int, size: tuple[int, int] = (595, 842)) -> list[Image.Image]:
    """``n`` pages, each filled with its own color and its number written on it."""
    pages = []
    for i in range(n):
        im = Image.new("RGB", size, COLORS[i % len(COLORS)])
        ImageDraw.Draw(im).text((40, 40), f"page {i + 1}", fill=(255, 255, 255))
        pages.append(im)
    return pages


def pdf(n: int = 3) -> bytes:
    first, *rest = page_images(n)
    buf = io.BytesIO()
    first.save(buf, "PDF", save_all=True, append_images=rest, resolution=72)
    return buf.getvalue()


def encrypted_pdf(password: str = "himitsu") -> bytes:
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(pdf(1))))
    writer.encrypt(user_password=password, owner_password="owner-" + password)
    buf = io.BytesIO()
    writer.write(buf)
    return buf.getvalue()


def image(
    fmt: str, size: tuple[int, int] = (1000, 700), color: tuple[int, int, int] = COLORS[0]
) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, fmt)
    return buf.getvalue()


def tiff_pages(n: int = 3) -> bytes:
    """A multi-page TIFF like a fax: one frame per page, each its own color."""
    first, *rest = page_images(n, (400, 560))
    buf = io.BytesIO()
    first.save(buf, "TIFF", save_all=True, append_images=rest, compression="tiff_deflate")
    return buf.getvalue()


def broken_tiff() -> bytes:
    """An uncompressed TIFF cut in half: its header and directory read, its pixels do not."""
    buf = io.BytesIO()
    Image.new("RGB", (300, 300), COLORS[1]).save(buf, "TIFF")
    data = buf.getvalue()
    return data[: len(data) // 2]


def garbage_tiff() -> bytes:
    """TIFF magic followed by nonsense: not even the directory reads."""
    return b"II*\x00" + bytes(range(256)) * 4


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_bomb(side: int = 100_000) -> bytes:
    """A tiny PNG that claims ``side`` x ``side`` pixels (10 gigapixels by default)."""
    ihdr = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 1024)
    return (
        b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")
    )


def rotated_pdf() -> bytes:
    """One portrait A4 page turned by 90° (/Rotate): it shows landscape."""
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(pdf(1))))
    writer.pages[0].rotate(90)
    buf = io.BytesIO()
    writer.write(buf)
    return buf.getvalue()
