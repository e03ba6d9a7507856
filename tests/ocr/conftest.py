"""OCR fixtures: settings with the index worker off (tests drain the outbox themselves) and OCR
on; the whole directory is skipped where Tesseract or its Japanese models are missing."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from genpon.core.settings import Settings
from genpon.search.ocr import installed_languages, tesseract_available

if (
    os.environ.get("CI") != "true"  # CI has them (scripts/setup installs them): fail there
    and not (tesseract_available() and {"jpn", "jpn_vert", "osd"} <= installed_languages())
):
    pytest.skip("tesseract with jpn, jpn_vert and osd is not installed", allow_module_level=True)


@pytest.fixture
def settings(tmp_path: Path, db_url: str) -> Settings:
    return Settings(
        environment="test",
        data_dir=tmp_path / "data",
        database_url=db_url,
        gc_grace_seconds=3600,
        index_autostart=False,
        extract_timeout_s=20,
        ocr_enabled=True,
        ocr_page_timeout_s=60,
    )
