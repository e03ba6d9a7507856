"""Many concurrent deposits of the same content through the HTTP API: one original, one blob."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx
from genpon.records.models import Blob, Document
from sqlmodel import Session, select

from tests.conftest import BOTH_DBS
from tests.live import serve
from tests.records.helpers import team_folder


@BOTH_DBS
def test_same_content_concurrently(app, demo, ctx):
    folder = team_folder(ctx)
    auth = demo.auth("tanaka")
    content = "同時に登録される同じ文書".encode() * 100

    with serve(app) as base:

        def one(i: int) -> tuple[int, dict]:
            with httpx.Client(base_url=base, timeout=60) as c:
                r = c.post(
                    "/api/v1/documents",
                    headers=auth,
                    data={"folder_id": str(folder)},
                    files={"file": (f"同じ{i}.txt", content, "text/plain")},
                )
                return r.status_code, r.json()

        with ThreadPoolExecutor(max_workers=12) as pool:
            results = list(pool.map(one, range(24)))
    assert [s for s, _ in results] == [201] * 24, results
    originals = [b for _, b in results if b["is_original"]]
    assert len(originals) == 1
    assert all(
        b["original"]["id"] == originals[0]["id"] for _, b in results if not b["is_original"]
    )
    with Session(ctx.engine) as s:
        docs = s.exec(select(Document)).all()
        assert len(docs) == 24
        assert len([d for d in docs if d.original_id is None]) == 1
        assert len(s.exec(select(Blob)).all()) == 1
    assert len(list(ctx.store.iter_blobs())) == 1
    assert list(ctx.store.iter_staging()) == []
