"""Worker fixtures: PostgreSQL with its search backend (the multi-node configuration), short
leases so an expired lease can be waited for."""

from __future__ import annotations

from pathlib import Path

import pytest
from genpon.core.settings import Settings


@pytest.fixture
def db_kind() -> str:
    return "postgres"


@pytest.fixture
def settings(tmp_path: Path, db_url: str) -> Settings:
    return Settings(
        environment="test",
        data_dir=tmp_path / "data",
        database_url=db_url,
        search_backend="postgres" if db_url.startswith("postgresql") else "tantivy",
        index_autostart=False,
        index_lease_seconds=2,
        extract_timeout_s=20,
        ocr_enabled=False,  # as tests/conftest.py: OCR is tested in tests/ocr
    )
