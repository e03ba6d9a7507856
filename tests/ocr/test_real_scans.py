"""Real PDFs without a text layer (``../shared/data``: 39 files with 47 such pages when this was
written): each deposited through the API with OCR on, then indexed; no 500, no hang, a clear
text status for every file, and what OCR read is found by search.

In the suite a deterministic sample is OCR'd: every third of those files (by name), the first
page without a text layer of each (``ocr_max_pages=1``, the others recorded as ``skipped``) at
100 dpi (all 39 took 115 s of a suite that must stay well under 10 minutes); OCR is most of the
time (on a busy machine about 1.5 s a file at 100 dpi, 3 s at 150). Every page at 300 dpi:
``bench/ocr.py --real``."""

from __future__ import annotations

import time
from typing import Any

import pytest
from genpon.core.settings import Settings
from genpon.records.models import BlobText, Folder
from genpon.search.extract import ocr_wait
from genpon.search.indexer import drain, stored_text
from genpon.search.ocr import ocr_options
from sqlmodel import Session, select

from tests.ocr.real_scans import Outcome, ocr_token, outcome, table, textless_pdfs
from tests.records.helpers import deposit

pytestmark = [pytest.mark.corpus, pytest.mark.slow]


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(
        update={"ocr_dpi": 100, "ocr_max_pages": 1, "ocr_page_timeout_s": 30}
    )


def test_real_scans_get_a_clear_status_and_are_searchable(
    client: Any, demo: Any, ctx: Any, shared_data: Any, capsys: Any
) -> None:
    scans = textless_pdfs(shared_data)
    assert len(scans) >= 30, [s.path.name for s in scans]
    scans = scans[::3]
    options = ocr_options(ctx.settings)
    assert options is not None and options.max_pages == 1
    # what one file may take: the extraction child's own limit, then indexing
    bound = ocr_wait(float(ctx.settings.extract_timeout_s), options) + 15
    auth = demo.auth("tanaka")
    with Session(ctx.engine) as s:
        team = s.exec(select(Folder.id).where(Folder.name == "財政課チーム")).one()
    docs: list[tuple[int, str]] = []
    for scan in scans:
        r = deposit(
            client,
            auth,
            scan.path.read_bytes(),
            filename=scan.path.name,
            folder_id=team,
            content_type="application/pdf",
        )
        assert r.status_code == 201, (scan.path.name, r.status_code, r.text)
        docs.append((int(r.json()["id"]), r.json()["sha256"]))
    start = time.monotonic()
    drain(ctx)  # one pass: extraction (the child bounds every file) and indexing in batches
    took = time.monotonic() - start
    assert took < bound * len(scans), took
    rows: list[Outcome] = []
    for scan, (doc, sha) in zip(scans, docs, strict=True):
        view = client.get(f"/api/v1/documents/{doc}", headers=auth)
        assert view.status_code == 200, view.text
        text = view.json()["text"]
        assert text["status"] in ("ok", "empty", "failed"), (scan.path.name, text)
        assert text["indexed_at"] is not None, (scan.path.name, text)
        assert text["status"] != "failed" or text["reason"], (scan.path.name, text)
        with Session(ctx.engine) as s:
            row = outcome(s, sha, scan)
            stored = stored_text(s.get(BlobText, sha)) or ""
        # every page without a text layer has its own outcome: read, empty, failed or skipped
        assert row.extractor and row.extractor.endswith("ocr"), row
        assert sum(row.page_counts.values()) == len(scan.textless), row
        assert row.ocr_seconds < bound, row
        if row.ocr_chars:
            row.token = ocr_token(stored, scan.layer)
        if row.token:
            hits = client.get("/api/v1/search", params={"q": row.token}, headers=auth)
            assert hits.status_code == 200, hits.text
            row.found = doc in {h["document_id"] for h in hits.json()["hits"]}
        rows.append(row)
    with capsys.disabled():
        print("\nreal scans (every third file, its first page without text, 100 dpi):")
        print(table(rows))
        print(f"deposited {len(rows)} files; extracted, OCR'd and indexed in {took:.1f} s")
    missed = [(r.name, r.token) for r in rows if r.token and not r.found]
    assert not missed, missed
    assert any(r.ocr_chars for r in rows)  # OCR read something somewhere
