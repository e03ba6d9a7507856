"""Bad input and limits: a giant image, a broken TIFF, a password-protected scan, a page that
takes too long, OCR switched off, and a PDF mixing text and scanned pages."""

from __future__ import annotations

import struct
import time
import zlib
from io import BytesIO
from pathlib import Path

import pypdf
import pytest
from genpon.core.settings import Settings
from genpon.search.extract import extract
from PIL import Image

from tests.ocr.scans import HORIZONTAL, render, save_pdf, save_tiff


def _png_claiming(path: Path, width: int, height: int) -> Path:
    """A small PNG whose header claims ``width`` × ``height`` pixels."""
    buf = BytesIO()
    Image.new("1", (8, 8), 1).save(buf, "PNG")
    data = bytearray(buf.getvalue())
    ihdr = 8 + 8  # signature, then length and type of the IHDR chunk
    data[ihdr : ihdr + 8] = struct.pack(">II", width, height)
    crc = zlib.crc32(bytes(data[ihdr - 4 : ihdr + 13]))
    data[ihdr + 13 : ihdr + 17] = struct.pack(">I", crc)
    path.write_bytes(bytes(data))
    return path


def test_giant_image_is_refused(tmp_path: Path, settings: Settings) -> None:
    path = _png_claiming(tmp_path / "bomb.png", 30_000, 30_000)
    start = time.monotonic()
    ex = extract(path, "image/png", settings=settings)
    assert ex.status == "failed" and "decompression bomb" in (ex.reason or ""), ex
    assert time.monotonic() - start < 15


def test_broken_tiff_is_a_clear_failure(tmp_path: Path, settings: Settings) -> None:
    good = save_tiff([render(["試験"], dpi=100)], tmp_path / "good.tif", 100)
    data = good.read_bytes()
    path = tmp_path / "broken.tif"
    path.write_bytes(data[:200] + b"\xff" * 64)  # header kept, image data and IFD gone
    ex = extract(path, "image/tiff", settings=settings)
    assert ex.status == "failed" and ex.reason and "ocr" in ex.reason, ex


def test_password_protected_scan_is_not_rendered(tmp_path: Path, settings: Settings) -> None:
    plain = save_pdf([render(HORIZONTAL, dpi=100)], tmp_path / "plain.pdf", 100)
    writer = pypdf.PdfWriter(clone_from=str(plain))
    writer.encrypt(user_password="secret", owner_password="owner")
    path = tmp_path / "locked.pdf"
    with path.open("wb") as f:
        writer.write(f)
    ex = extract(path, "application/pdf", settings=settings)
    assert ex.status == "failed" and (ex.reason or "").startswith("encrypted"), ex
    assert ex.details is None  # no page was OCR'd


@pytest.mark.slow
def test_page_timeout_fails_the_page_not_the_file(tmp_path: Path, settings: Settings) -> None:
    """A page over its time is recorded as failed, the next page still read; no hang."""
    dense = render(HORIZONTAL * 12, dpi=300)  # many lines: well over a second of Tesseract
    dense = dense.resize((dense.width, dense.height * 3))
    short = render(["市民税"], dpi=300)
    path = save_pdf([dense, short], tmp_path / "slow.pdf", 300)
    quick = settings.model_copy(update={"ocr_page_timeout_s": 1})
    start = time.monotonic()
    ex = extract(path, "application/pdf", settings=quick)
    assert time.monotonic() - start < 60
    assert ex.details is not None
    first, second = ex.details["pages"]
    assert first["status"] == "failed" and "timeout" in first["reason"], first
    assert second["page"] == 2 and second["status"] in ("ok", "failed"), second


def test_ocr_off_keeps_the_old_behaviour(tmp_path: Path, settings: Settings) -> None:
    off = settings.model_copy(update={"ocr_enabled": False})
    png = tmp_path / "page.png"
    render(["市民税"], dpi=100).save(png)
    assert extract(png, "image/png", settings=off).status == "unsupported"
    pdf = save_pdf([render(["市民税"], dpi=100)], tmp_path / "scan.pdf", 100)
    ex = extract(pdf, "application/pdf", settings=off)
    assert ex.status == "empty" and ex.details is None


def _text_page_pdf(path: Path, line: str) -> Path:
    """One A6 page with ``line`` in Helvetica as a real text layer."""
    writer = pypdf.PdfWriter()
    page = writer.add_blank_page(width=298, height=420)
    from pypdf.generic import DecodedStreamObject, DictionaryObject, NameObject

    font = DictionaryObject(
        {
            NameObject("/Type"): NameObject("/Font"),
            NameObject("/Subtype"): NameObject("/Type1"),
            NameObject("/BaseFont"): NameObject("/Helvetica"),
        }
    )
    page[NameObject("/Resources")] = DictionaryObject(
        {NameObject("/Font"): DictionaryObject({NameObject("/F1"): writer._add_object(font)})}
    )
    stream = DecodedStreamObject()
    stream.set_data(f"BT /F1 12 Tf 30 380 Td ({line}) Tj ET".encode("ascii"))
    page[NameObject("/Contents")] = writer._add_object(stream)
    with path.open("wb") as f:
        writer.write(f)
    return path


def test_only_pages_without_text_are_ocrd(tmp_path: Path, settings: Settings) -> None:
    text_pdf = _text_page_pdf(tmp_path / "text.pdf", "Minutes of the budget committee 2024")
    scan_pdf = save_pdf([render(HORIZONTAL[:1], dpi=300)], tmp_path / "scan.pdf", 300)
    writer = pypdf.PdfWriter()
    writer.append(str(text_pdf))
    writer.append(str(scan_pdf))
    path = tmp_path / "mixed.pdf"
    with path.open("wb") as f:
        writer.write(f)
    ex = extract(path, "application/pdf", settings=settings)
    assert ex.status == "ok" and ex.extractor and ex.extractor.endswith("+ocr"), ex
    assert "Minutes of the budget committee" in (ex.text or "")
    assert HORIZONTAL[0] in (ex.text or "").replace(" ", "")
    assert ex.details is not None and ex.details["page_count"] == 2
    assert [p["page"] for p in ex.details["pages"]] == [2]


def test_poster_sized_page_is_rendered_within_the_pixel_limit(tmp_path: Path) -> None:
    """A 44 × 21 inch page (a real file in ../shared/data has one) is read at a resolution whose
    image Pillow opens: at 300 dpi it would be 83 million pixels, refused as a bomb."""
    from genpon.search.ocr import MAX_PIXELS, _page_dpi

    writer = pypdf.PdfWriter()
    writer.add_blank_page(width=3146, height=1529)
    path = tmp_path / "poster.pdf"
    with path.open("wb") as f:
        writer.write(f)
    dpi = _page_dpi(path, 1, 300)
    assert 200 < dpi < 300
    assert (3146 / 72 * dpi) * (1529 / 72 * dpi) <= MAX_PIXELS // 2
    assert _page_dpi(path, 1, 150) == 150  # already small enough
