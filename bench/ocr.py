"""OCR benchmark (OCR性能): prints its figures; not a test.

1. pages/s per core: generated A4 scans (IPA Gothic 10.5 pt, 30 lines, horizontal; and
   vertical) OCR'd one page at a time with ``OMP_THREAD_LIMIT=1`` at 300 dpi
   (``search.ocr.ocr_page``, the code the extraction child runs);
2. end to end: ``--pages`` scanned pages (default 100, as 10-page image-only PDFs) deposited
   through the records service into a throwaway SQLite + local store, then the outbox drained
   (extraction child, OCR, index) until a word of the last page is found by search: seconds.

Usage: ``.venv/bin/python bench/ocr.py [--pages 100] [--per-file 10] [--sample 4]``
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_THREAD_LIMIT", "1")
os.environ.setdefault("GENPON_ENVIRONMENT", "test")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.ocr.scans import HORIZONTAL, VERTICAL, render, save_pdf


def a4_page(n: int, vertical: bool = False) -> tuple[object, str]:
    lines = (VERTICAL if vertical else HORIZONTAL) * 8
    marker = f"第{n:04d}号"
    page = render([marker, *lines[:24]], vertical=vertical, dpi=300, angle=0.7, noise=0.001)
    return page, marker


def pages_per_second(sample: int) -> None:
    from genpon.search.ocr import OcrOptions, ocr_page

    opts = OcrOptions()
    for vertical in (False, True):
        pages = [a4_page(i, vertical)[0] for i in range(sample)]
        start = time.perf_counter()
        for i, p in enumerate(pages, 1):
            r = ocr_page(p, i, opts)  # type: ignore[arg-type]
            assert r.status == "ok", r.reason
        took = time.perf_counter() - start
        kind = "vertical  " if vertical else "horizontal"
        print(
            f"OCR {kind} 300 dpi: {sample / took:.2f} pages/s per core ({took / sample:.2f} s/page)"
        )


def end_to_end(pages: int, per_file: int) -> None:
    from genpon.api.context import build_context
    from genpon.core.settings import Settings
    from genpon.records.bootstrap import initialize
    from genpon.search.indexer import drain

    from tests.search.helpers import all_ids, bulk_deposit

    with tempfile.TemporaryDirectory(prefix="genpon-bench-ocr-") as tmp:
        root = Path(tmp)
        settings = Settings(data_dir=root / "data", index_autostart=False, ocr_enabled=True)
        ctx = build_context(settings)
        initialize(settings, ctx.engine, demo=True)
        files, last = [], ""
        for f in range(0, pages, per_file):
            imgs = []
            for n in range(f, min(pages, f + per_file)):
                img, last = a4_page(n)
                imgs.append(img)
            files.append((f"scan{f:04d}.pdf", save_pdf(imgs, root / f"s{f}.pdf", 300).read_bytes()))
        start = time.perf_counter()
        bulk_deposit(ctx, files)
        deposited = time.perf_counter() - start
        drain(ctx)
        total, _ = all_ids(ctx, last)
        took = time.perf_counter() - start
        assert total >= 1, "the last page's number was not found"
        print(
            f"end to end: {pages} scanned pages in {len(files)} PDFs deposited in "
            f"{deposited:.1f} s, searchable after {took:.1f} s ({pages / took:.2f} pages/s)"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pages", type=int, default=100)
    ap.add_argument("--per-file", type=int, default=10)
    ap.add_argument("--sample", type=int, default=4)
    a = ap.parse_args()
    pages_per_second(a.sample)
    end_to_end(a.pages, a.per_file)


if __name__ == "__main__":
    main()
