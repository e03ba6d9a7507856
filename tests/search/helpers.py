"""Helpers for search tests."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from genpon.search.indexer import drain
from genpon.storage.context import AppContext


def search(client: TestClient, auth: dict[str, str], q: str, **params: Any) -> Any:
    r = client.get("/api/v1/search", params={"q": q, **params}, headers=auth)
    assert r.status_code == 200, r.text
    return r.json()


def ids(result: dict[str, Any]) -> set[int]:
    return {h["document_id"] for h in result["hits"]}


def sync(ctx: AppContext) -> int:
    return drain(ctx)


def bulk_deposit(
    ctx: AppContext, files: list[tuple[str, bytes]], folder_name: str = "財政課チーム"
) -> dict[str, int]:
    """Deposit many files through the records service (no HTTP): name -> document id."""
    from genpon.records import documents
    from genpon.records.access import SYSTEM_ACTOR
    from genpon.records.models import Folder
    from sqlmodel import Session, select

    out: dict[str, int] = {}
    with Session(ctx.engine) as s:
        folder_id = s.exec(select(Folder.id).where(Folder.name == folder_name)).one()
    for start in range(0, len(files), 100):
        with Session(ctx.engine, expire_on_commit=False) as s:
            for name, data in files[start : start + 100]:
                staged = ctx.store.stage([data])
                o = documents.deposit(
                    s,
                    ctx.store,
                    SYSTEM_ACTOR,
                    staged,
                    documents.DepositIn(filename=name, folder_id=folder_id),
                    allowed_types=ctx.settings.allowed_types,
                    timezone=ctx.settings.timezone,
                )
                out[name] = o.document.id or 0
            s.commit()
    return out


def all_ids(ctx: AppContext, q: str, **kw: Any) -> tuple[int, set[int]]:
    """Total and every document id for ``q`` as a city-wide reader (paging through)."""
    from genpon.records.access import SYSTEM_ACTOR
    from genpon.search.service import search_documents
    from sqlmodel import Session

    found: set[int] = set()
    with Session(ctx.engine) as s:
        page = 1
        while True:
            r = search_documents(
                ctx, s, SYSTEM_ACTOR, q, page=page, per_page=100, facets=False, **kw
            )
            found |= {h.document_id for h in r.hits}
            if page * 100 >= r.total:
                return r.total, found
            page += 1
