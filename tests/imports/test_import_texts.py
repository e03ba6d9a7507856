"""The import keeps the text it extracted for the near-duplicate signatures as each content's
stored text, so the search indexer does not extract the share a second time."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from genpon.migrate.service import ImportOptions, run_import
from genpon.records.access import SYSTEM_ACTOR
from genpon.records.models import BlobText
from genpon.search import indexer
from genpon.search.extract import extract
from genpon.search.indexer import drain, stored_text
from sqlmodel import Session, select

from tests.conftest import BOTH_DBS
from tests.search.helpers import ids, search

FILES = {
    "通知.txt": "市道の舗装補修工事について通知します。\n工事期間は令和六年四月からです。\n".encode(),
    "旧文書.txt": (
        "文書番号 第12号\n件名 公文書の保存期間満了に伴う廃棄について\n"
        "各課において保存期間が満了した文書の廃棄について協議します。\n"
    ).encode("cp932"),
    "案内.html": (
        '<html><head><meta charset="utf-8"></head><body><p>図書館の開館時間を変更します。</p>'
        "</body></html>"
    ).encode(),
    "資料.bin": b"\x00\x01\x02GENPON" * 200,
}


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def share(tmp_path: Path) -> Path:
    root = tmp_path / "share"
    (root / "課").mkdir(parents=True)
    for name, data in FILES.items():
        (root / "課" / name).write_bytes(data)
    return root


@BOTH_DBS
def test_import_stores_texts_for_search(ctx, demo, client, share, monkeypatch):
    dry = run_import(
        ctx.engine,
        ctx.store,
        ctx.settings,
        SYSTEM_ACTOR,
        ImportOptions(root=share, org_code="SOUMU-ZAISEI", kind="team", dry_run=True),
    )
    dry.close()
    with Session(ctx.engine) as s:
        assert not s.exec(select(BlobText)).all()  # a dry run stores nothing
    result = run_import(
        ctx.engine,
        ctx.store,
        ctx.settings,
        SYSTEM_ACTOR,
        ImportOptions(root=share, org_code="SOUMU-ZAISEI", kind="team"),
    )
    assert result.summary["imported"] == len(FILES), result.summary
    with Session(ctx.engine) as s:
        rows = {r.sha256: r for r in s.exec(select(BlobText)).all()}
    for name, data in FILES.items():
        path = share / "課" / name
        want = extract(path, "text/html" if name.endswith(".html") else "text/plain")
        row = rows[_sha(data)]
        if name.endswith(".bin"):
            assert row.status in ("unsupported", "empty", "failed") and row.text_z is None
            continue
        assert row.status == "ok" and stored_text(row) == want.text, name
        assert row.chars == len(want.text or "") and row.extractor == want.extractor

    def no_second_extraction(*_args, **_kw):
        raise AssertionError("the indexer extracted a text the import had stored")

    monkeypatch.setattr(indexer, "_extract_blob", no_second_extraction)
    assert drain(ctx) >= len(FILES)
    auth = demo.auth("tanaka")
    for q in ("舗装補修", "保存期間満了", "開館時間"):
        assert len(ids(search(client, auth, q))) == 1, q
