"""Search fixtures: the backend under test (``search_backend``), settings with the index worker
off (tests drain the outbox themselves), and helpers."""

from __future__ import annotations

from pathlib import Path

import pytest
from genpon.core.settings import Settings

ALL_BACKENDS = pytest.mark.parametrize(
    "search_backend",
    ["tantivy", "whoosh", pytest.param("postgres", marks=pytest.mark.postgres)],
)


@pytest.fixture
def search_backend() -> str:
    return "tantivy"


@pytest.fixture
def db_kind(search_backend: str) -> str:
    return "postgres" if search_backend == "postgres" else "sqlite"


@pytest.fixture
def settings(tmp_path: Path, db_url: str, search_backend: str) -> Settings:
    return Settings(
        environment="test",
        data_dir=tmp_path / "data",
        database_url=db_url,
        gc_grace_seconds=3600,
        search_backend=search_backend,  # type: ignore[arg-type]
        index_autostart=False,
        extract_timeout_s=20,
        ocr_enabled=False,  # as tests/conftest.py: OCR is tested in tests/ocr
    )
