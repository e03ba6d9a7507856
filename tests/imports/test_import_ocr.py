"""With OCR on in the settings, the legacy-share import reads scanned pages and images as the
search extractor does (its persistent extractor child is given the settings' OCR options), so a
scanned PDF or a photographed page brought in from a share is searchable by its text."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
from genpon.core.settings import Settings
from genpon.migrate import extract_pool
from genpon.migrate.service import ImportOptions, run_import
from genpon.records.access import SYSTEM_ACTOR
from genpon.records.models import BlobText
from genpon.search.indexer import stored_text
from genpon.search.ocr import installed_languages, tesseract_available
from sqlmodel import Session, select

from tests.ocr.scans import FONT, HORIZONTAL, cer, render, save_pdf

if os.environ.get("CI") != "true" and not (  # CI has them (scripts/setup installs them)
    tesseract_available() and {"jpn", "osd"} <= installed_languages() and FONT.is_file()
):
    pytest.skip("tesseract with jpn and osd, or the IPA font, is missing", allow_module_level=True)

pytestmark = pytest.mark.slow


@pytest.fixture
def settings(tmp_path: Path, db_url: str) -> Settings:
    return Settings(
        environment="test",
        data_dir=tmp_path / "data",
        database_url=db_url,
        gc_grace_seconds=3600,
        index_autostart=False,
        ocr_enabled=True,
        ocr_page_timeout_s=60,
    )


@pytest.fixture
def share(tmp_path: Path) -> Path:
    root = tmp_path / "share" / "税務課"
    root.mkdir(parents=True)
    save_pdf([render(HORIZONTAL[:2], dpi=300, angle=0.8, seed=1)], root / "申告.pdf", 300)
    render(HORIZONTAL[2:], dpi=300, angle=-0.6, seed=2).save(root / "窓口.png", dpi=(300, 300))
    return root.parent


@pytest.mark.parametrize("workers", [1, 2])  # in this process, and in forked workers
def test_import_ocrs_scanned_pdf_and_image(ctx, demo, share: Path, workers: int) -> None:
    try:
        result = run_import(
            ctx.engine,
            ctx.store,
            ctx.settings,
            SYSTEM_ACTOR,
            ImportOptions(root=share, org_code="SOUMU-ZAISEI", kind="team", workers=workers),
        )
        assert result.summary["imported"] == 2, result.summary
    finally:
        extract_pool.shared().close()
        extract_pool.configure(None)  # later tests in this worker get the default again
    with Session(ctx.engine) as s:
        rows = {r.sha256: r for r in s.exec(select(BlobText)).all()}
    for name, truth in (("申告.pdf", HORIZONTAL[:2]), ("窓口.png", HORIZONTAL[2:])):
        row = rows[hashlib.sha256((share / "税務課" / name).read_bytes()).hexdigest()]
        assert row.status == "ok" and row.extractor == "ocr", (name, row.status, row.reason)
        text = stored_text(row) or ""
        assert cer(text, "".join(truth)) < 0.1, (name, text)
