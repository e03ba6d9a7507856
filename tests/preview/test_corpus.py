"""Real PDFs (../shared/data/pdfs): page 1 of a sample renders, encrypted and malformed files
get a clear status, nothing answers 500 or hangs."""

from __future__ import annotations

import csv
import io
import time
from typing import Any

import pytest
from genpon.records.models import Folder
from PIL import Image
from sqlmodel import Session, select

from tests.records.helpers import deposit

pytestmark = [pytest.mark.corpus, pytest.mark.slow]

CODES = {"pdf_encrypted", "pdf_broken", "render_timeout", "render_memory", "content_too_large"}


def test_sample_of_real_pdfs(
    client: Any, demo: Any, ctx: Any, shared_data: Any, capsys: Any
) -> None:
    with (shared_data / "pdfs" / "MANIFEST.csv").open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    # every 8th file, plus every encrypted and every malformed one
    sample = [
        r
        for i, r in enumerate(rows)
        if i % 8 == 0 or r["encrypted"] == "yes" or r["intentionally_malformed"].startswith("yes")
    ]
    assert len(sample) >= 15
    with Session(ctx.engine) as s:
        team = s.exec(select(Folder.id).where(Folder.name == "財政課チーム")).one()
    auth = demo.auth("tanaka")
    outcomes: dict[str, list[str]] = {}
    for row in sample:
        data = (shared_data / "pdfs" / row["file"]).read_bytes()
        r = deposit(
            client, auth, data, filename=row["file"], folder_id=team, content_type="application/pdf"
        )
        if r.status_code not in (200, 201):
            continue  # refused at deposit (not a PDF at all): nothing to show
        doc = r.json()["id"]
        started = time.monotonic()
        info = client.get(f"/api/v1/documents/{doc}/preview", headers=auth)
        assert info.status_code == 200, (row["file"], info.text)
        body = info.json()
        page = client.get(f"/api/v1/documents/{doc}/pages/1.png?width=800", headers=auth)
        elapsed = time.monotonic() - started
        assert elapsed < 2 * ctx.settings.preview_timeout_s + 10, row["file"]
        if body["kind"] == "pdf" and body["status"] == "ok" and page.status_code == 422:
            # pdfinfo reads it, the page itself does not draw (e.g. a broken page tree)
            code = page.json()["error"]["code"]
            assert code in CODES, (row["file"], code)
            outcomes.setdefault(f"page: {code}", []).append(row["file"])
        elif body["kind"] == "pdf" and body["status"] == "ok":
            assert page.status_code == 200, (row["file"], page.text)
            im = Image.open(io.BytesIO(page.content))
            assert 16 <= im.width <= 800 and im.height > 0
            outcomes.setdefault("ok", []).append(row["file"])
        else:
            assert page.status_code in (404, 422), (row["file"], page.status_code, page.text)
            code = body["code"] or page.json()["error"]["code"]
            assert code in CODES | {"unsupported", "text_pending", "no_page_images"}, (
                row["file"],
                code,
            )
            outcomes.setdefault(code, []).append(row["file"])
        if (
            row["encrypted"] == "yes"
            and "user=" in row["password"]
            and "user=," not in row["password"]
        ):
            assert body["code"] == "pdf_encrypted", row["file"]
    with capsys.disabled():
        print("\npreview outcomes:", {k: len(v) for k, v in outcomes.items()})
        for code, names in outcomes.items():
            if code != "ok":
                print(f"  {code}: {', '.join(names)}")
    assert len(outcomes.get("ok", [])) >= len(sample) // 2
