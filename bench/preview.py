"""Preview rendering benchmark (表示用画像の作成性能): prints its figures; not a test.

Renders pages into an empty cache through :func:`genpon.search.preview.render_page` (the path a
page request takes after authorization: bounded child, atomic write into the derived cache),
one at a time (the figure is per core), and reports pages/s for:

1. a generated PDF (image pages drawn with Pillow) at the thumbnail width and at 800 / 1600 px;
2. text PDFs from ``../shared/data/pdfs`` (the first pages of up to ``--corpus`` files);
3. JPEG photos (3000 x 2000) and a multi-page fax TIFF;
4. pages served from the cache (the second request for the same page).

Usage: ``.venv/bin/python bench/preview.py [--pages 30] [--corpus 20] [--workdir DIR]``
"""

from __future__ import annotations

import argparse
import csv
import io
import shutil
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image, ImageDraw

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"


def _store(settings):  # type: ignore[no-untyped-def]
    from genpon.storage.registry import make_store

    return make_store(settings)


def _put(store, data: bytes) -> str:  # type: ignore[no-untyped-def]
    staged = store.stage([data])
    store.put_staged(staged)
    return staged.sha256


def _pdf(pages: int) -> bytes:
    ims = []
    for i in range(pages):
        im = Image.new("RGB", (1240, 1754), (255, 255, 255))  # A4 at 150 dpi
        d = ImageDraw.Draw(im)
        for y in range(100, 1700, 40):
            d.line((100, y, 1140, y), fill=(i * 7 % 255, 0, 0), width=3)
        ims.append(im)
    buf = io.BytesIO()
    ims[0].save(buf, "PDF", save_all=True, append_images=ims[1:], resolution=150)
    return buf.getvalue()


def _jpeg() -> bytes:
    im = Image.effect_noise((3000, 2000), 40).convert("RGB")
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=85)
    return buf.getvalue()


def _tiff(pages: int) -> bytes:
    ims = [Image.effect_noise((1728, 2200), 60).convert("1") for _ in range(pages)]  # fax size
    buf = io.BytesIO()
    ims[0].save(buf, "TIFF", save_all=True, append_images=ims[1:], compression="group4")
    return buf.getvalue()


def run(label: str, jobs: list[tuple[str, str, int, int]], store, settings) -> None:  # type: ignore[no-untyped-def]
    from genpon.search.preview import PreviewUnavailable, render_page

    ok = failed = 0
    started = time.perf_counter()
    for sha, mime, page, width in jobs:
        try:
            render_page(store, settings, sha, mime, page, width)
            ok += 1
        except PreviewUnavailable:
            failed += 1
    took = time.perf_counter() - started
    rate = ok / took if took else 0.0
    extra = f", {failed} not renderable" if failed else ""
    print(f"{label:<44} {ok:>4} pages {took:7.2f} s  {rate:7.1f} pages/s{extra}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pages", type=int, default=30)
    ap.add_argument("--corpus", type=int, default=20)
    ap.add_argument("--workdir", type=Path, default=None)
    args = ap.parse_args()
    from genpon.core.settings import Settings

    work = Path(tempfile.mkdtemp(prefix="genpon-bench-preview-", dir=args.workdir))
    try:
        settings = Settings(environment="test", data_dir=work / "data", preview_concurrency=1)
        settings.data_dir.mkdir(parents=True)
        store = _store(settings)
        pdf = _put(store, _pdf(args.pages))
        for width in (160, 800, 1600):
            jobs = [(pdf, "application/pdf", p, width) for p in range(1, args.pages + 1)]
            run(f"generated PDF, A4 image pages, {width} px", jobs, store, settings)
        run(
            "the same pages again (from the cache)",
            [(pdf, "application/pdf", p, 800) for p in range(1, args.pages + 1)],
            store,
            settings,
        )
        manifest = SHARED / "pdfs" / "MANIFEST.csv"
        if manifest.exists():
            with manifest.open(encoding="utf-8") as f:
                rows = [r for r in csv.DictReader(f) if r["encrypted"] != "yes"][: args.corpus]
            shas = [_put(store, (SHARED / "pdfs" / r["file"]).read_bytes()) for r in rows]
            run(
                f"shared/data PDFs, page 1, 800 px ({len(shas)} files)",
                [(s, "application/pdf", 1, 800) for s in shas],
                store,
                settings,
            )
        else:
            print(f"(no corpus at {SHARED}: real PDFs skipped)")
        jpeg = _put(store, _jpeg())
        from genpon.search.preview import render_page

        started = time.perf_counter()
        rounds = max(1, args.pages // 3)
        for _ in range(rounds):  # the same photo, the cache cleared before each render
            shutil.rmtree(settings.preview_dir, ignore_errors=True)
            render_page(store, settings, jpeg, "image/jpeg", 1, 800)
        took = time.perf_counter() - started
        print(
            f"{'JPEG 3000x2000, 800 px, cache cleared':<44} {rounds:>4} pages {took:7.2f} s  {rounds / took:7.1f} pages/s"
        )
        tif = _put(store, _tiff(10))
        run(
            "fax TIFF 1728x2200 G4, 10 pages, 800 px",
            [(tif, "image/tiff", p, 800) for p in range(1, 11)],
            store,
            settings,
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
