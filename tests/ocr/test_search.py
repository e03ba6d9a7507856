"""OCR text in use: a deposited scan is found by a word on it, a scan of a document already
held as a Word file is suggested as its near-duplicate, and ``genpon ocr DOC_ID`` re-reads a
document deposited while OCR was off."""

from __future__ import annotations

import hashlib
import json
from io import BytesIO
from pathlib import Path

import docx
import pytest
from genpon.migrate.near import scan_genpon
from genpon.records.access import SYSTEM_ACTOR
from genpon.records.models import Blob, BlobText
from genpon.search.indexer import drain
from genpon.storage.context import AppContext
from sqlmodel import Session

from tests.ocr.scans import HORIZONTAL, render, save_pdf
from tests.records.test_cli import Cli, cli  # noqa: F401  (the in-process CLI fixture)
from tests.search.helpers import all_ids, bulk_deposit

NOTICE = [
    *HORIZONTAL,
    "なお、申告の必要がない方には",
    "通知書を送付いたしません。",
]


def _scan_pdf(tmp_path: Path, lines: list[str]) -> bytes:
    page = render(lines, dpi=300, angle=1.0, noise=0.001)
    return save_pdf([page], tmp_path / "scan.pdf", 300).read_bytes()


def _docx(lines: list[str]) -> bytes:
    d = docx.Document()
    for line in lines:
        d.add_paragraph(line)
    buf = BytesIO()
    d.save(buf)
    return buf.getvalue()


@pytest.mark.slow
def test_scan_is_found_and_suggested_as_near_duplicate_of_the_word_file(
    tmp_path: Path, ctx: AppContext, demo: object
) -> None:
    scan, word = _scan_pdf(tmp_path, NOTICE), _docx(NOTICE)
    ids = bulk_deposit(ctx, [("市民税申告のお知らせ.docx", word), ("scan001.pdf", scan)])
    drain(ctx)
    sha = hashlib.sha256(scan).hexdigest()
    with Session(ctx.engine) as s:
        row = s.get(BlobText, sha)
        assert row is not None and row.status == "ok" and row.extractor == "ocr", row
        assert row.details and row.details["pages"][0]["confidence"] > 80
        blob = s.get(Blob, sha)
        assert blob is not None and blob.size == len(scan)  # the original untouched
    with ctx.store.as_file(sha, ctx.settings.spool_dir) as path:
        assert hashlib.sha256(path.read_bytes()).hexdigest() == sha
    _total, found = all_ids(ctx, "窓口へ提出")
    assert ids["scan001.pdf"] in found and ids["市民税申告のお知らせ.docx"] in found

    result = scan_genpon(ctx.engine, ctx.store, SYSTEM_ACTOR)
    word_sha = hashlib.sha256(word).hexdigest()
    pair = [p for c in result.clusters for p in c.pairs if {p[0], p[1]} == {sha, word_sha}]
    print(f"near-duplicate: scan vs. Word file, similarity {pair[0][2] if pair else None}")
    assert pair, [c.members for c in result.clusters]
    assert pair[0][2] >= 0.8


@pytest.mark.slow
def test_genpon_ocr_rereads_a_document(
    cli: Cli,  # noqa: F811  (the fixture imported above)
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("GENPON_OCR_ENABLED", "false")  # deposits get no OCR: genpon ocr adds it
    cli("init", "--demo", "--no-history")
    case_id = cli(
        "case", "create", "市民税", "--org", "SOUMU-ZAISEI", "--class", "B0101"
    ).stdout.split()[0]
    f = tmp_path / "scan.pdf"
    f.write_bytes(_scan_pdf(tmp_path, HORIZONTAL))
    doc = json.loads(cli("--json", "deposit", str(f), "--case", case_id).stdout)
    doc_id = str(doc.get("id") or doc.get("document", {}).get("id"))
    assert cli("search", "窓口へ提出").stdout.startswith("0 件")  # OCR off: no text
    denied = cli("--as", "tanaka", "ocr", doc_id, ok=False)
    assert "role_required" in denied.stderr
    done = json.loads(cli("--json", "ocr", doc_id).stdout)
    assert done["status"] == "ok" and done["extractor"] == "ocr" and done["ocr_pages"] == 1
    assert done["mean_confidence"] > 80
    assert cli("search", "窓口へ提出").stdout.startswith("1 件")
    missing = cli("ocr", "99999", ok=False)
    assert "document_not_found" in missing.stderr
