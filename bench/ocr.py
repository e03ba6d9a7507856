"""OCR benchmark (OCR性能): prints its figures; not a test.

1. pages/s per core: generated A4 scans (IPA Gothic 10.5 pt, 30 lines, horizontal; and
   vertical) OCR'd one page at a time with ``OMP_THREAD_LIMIT=1`` at 300 dpi
   (``search.ocr.ocr_page``, the code the extraction child runs);
2. end to end: ``--pages`` scanned pages (default 100, as 10-page image-only PDFs) deposited
   through the records service into a throwaway SQLite + local store, then the outbox drained
   (extraction child, OCR, index) until a word of the last page is found by search: seconds;
   then every page of those PDFs rendered for the viewer (800 px, and thumbnails), cold cache;
3. ``--real``: the real PDFs of ``../shared/data`` with pages without a text layer, each
   deposited and indexed with OCR at 300 dpi, every such page: the outcome table (status,
   confidence, whether a word only OCR read is found by search).

Usage: ``.venv/bin/python bench/ocr.py [--pages 100] [--per-file 10] [--sample 4] [--real]``
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_THREAD_LIMIT", "1")
os.environ.setdefault("GENPON_ENVIRONMENT", "test")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from genpon.records.models import BlobText
from sqlmodel import Session

from tests.ocr.scans import HORIZONTAL, VERTICAL, render, save_pdf

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


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
        ids = bulk_deposit(ctx, files)
        deposited = time.perf_counter() - start
        drain(ctx)
        total, _ = all_ids(ctx, last)
        took = time.perf_counter() - start
        assert total >= 1, "the last page's number was not found"
        print(
            f"end to end: {pages} scanned pages in {len(files)} PDFs deposited in "
            f"{deposited:.1f} s, searchable after {took:.1f} s ({pages / took:.2f} pages/s)"
        )
        rendering(ctx, list(ids.values()))


def rendering(ctx: Any, doc_ids: list[int]) -> None:
    """Every page of the deposited scans rendered for the viewer, one at a time, cold cache."""
    from genpon.records.models import Document
    from genpon.search.preview import content_outline, render_page
    from sqlmodel import Session

    with Session(ctx.engine) as s:
        shas = [s.get(Document, i).sha256 for i in doc_ids]  # type: ignore[union-attr]
    for width in (800, min(ctx.settings.preview_widths)):
        n, start = 0, time.perf_counter()
        for sha in shas:
            outline = content_outline(ctx.store, ctx.settings, sha, "application/pdf")
            for page in range(1, (outline.pages or 0) + 1):
                render_page(ctx.store, ctx.settings, sha, "application/pdf", page, width)
                n += 1
        took = time.perf_counter() - start
        print(f"preview {width:>4} px (300 dpi scans): {n / took:.2f} pages/s per core ({n} pages)")


def real_scans() -> None:
    from genpon.api.context import build_context
    from genpon.core.settings import Settings
    from genpon.records.bootstrap import initialize
    from genpon.search.indexer import drain, stored_text

    from tests.ocr.real_scans import ocr_token, outcome, table, textless_pdfs
    from tests.search.helpers import all_ids, bulk_deposit

    scans = textless_pdfs(SHARED)
    with tempfile.TemporaryDirectory(prefix="genpon-bench-ocr-") as tmp:
        settings = Settings(
            data_dir=Path(tmp) / "data", index_autostart=False, ocr_enabled=True, ocr_dpi=300
        )
        ctx = build_context(settings)
        initialize(settings, ctx.engine, demo=True)
        rows, begin = [], time.perf_counter()
        for scan in scans:
            data = scan.path.read_bytes()
            start = time.perf_counter()
            doc = bulk_deposit(ctx, [(scan.path.name, data)])[scan.path.name]
            drain(ctx)
            took = time.perf_counter() - start
            sha = hashlib.sha256(data).hexdigest()
            with Session(ctx.engine) as s:
                row = outcome(s, sha, scan, took)
                text = stored_text(s.get(BlobText, sha)) or ""
            row.token = ocr_token(text, scan.layer) if row.ocr_chars else None
            if row.token:
                row.found = doc in all_ids(ctx, row.token)[1]
            rows.append(row)
        print(f"real scans, every page without a text layer at {settings.ocr_dpi} dpi:")
        print(table(rows))
        print(f"real scans: {time.perf_counter() - begin:.1f} s in all")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pages", type=int, default=100)
    ap.add_argument("--per-file", type=int, default=10)
    ap.add_argument("--sample", type=int, default=4)
    ap.add_argument("--real", action="store_true", help="only the real scans of ../shared/data")
    a = ap.parse_args()
    if a.real:
        real_scans()
        return
    pages_per_second(a.sample)
    end_to_end(a.pages, a.per_file)


if __name__ == "__main__":
    main()
