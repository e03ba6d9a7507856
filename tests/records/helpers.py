"""Small helpers for records tests."""

from __future__ import annotations

import json
from typing import Any

from fastapi.testclient import TestClient
from genpon.records.models import AuditEvent, Blob, Case, Document, Folder
from genpon.storage.context import AppContext
from sqlalchemy import func
from sqlmodel import Session, select


def deposit(
    client: TestClient,
    auth: dict[str, str],
    content: bytes,
    *,
    filename: str = "文書.txt",
    case_id: str | None = None,
    folder_id: int | None = None,
    approval: dict[str, Any] | None = None,
    content_type: str = "text/plain",
    headers: dict[str, str] | None = None,
    **fields: str,
) -> Any:
    data: dict[str, str] = dict(fields)
    if case_id is not None:
        data["case_id"] = case_id
    if folder_id is not None:
        data["folder_id"] = str(folder_id)
    if approval is not None:
        data["approval"] = json.dumps(approval, ensure_ascii=False)
    return client.post(
        "/api/v1/documents",
        files={"file": (filename, content, content_type)},
        data=data,
        headers={**auth, **(headers or {})},
    )


def new_case(
    client: TestClient,
    auth: dict[str, str],
    org: str = "SOUMU-ZAISEI",
    cls: str = "B0101",
    title: str = "令和8年度予算要求",
) -> dict[str, Any]:
    r = client.post(
        "/api/v1/cases",
        json={"title": title, "organization_code": org, "class_code": cls},
        headers=auth,
    )
    assert r.status_code == 201, r.text
    return r.json()


def copy_to(client: TestClient, auth: dict[str, str], document_id: int, folder_id: int) -> int:
    """File a copy (写し) of a document in another folder; returns the copy's id."""
    r = client.post(
        f"/api/v1/documents/{document_id}/copies", json={"folder_id": folder_id}, headers=auth
    )
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


def team_folder(ctx: AppContext, name: str = "財政課チーム") -> int:
    with Session(ctx.engine) as s:
        f = s.exec(select(Folder).where(Folder.name == name)).one()
        return f.id or 0


def snapshot(ctx: AppContext) -> dict[str, Any]:
    """Row counts and stored blobs: compared before/after a rejected request."""
    with Session(ctx.engine) as s:
        counts = {
            m.__name__: s.exec(select(func.count()).select_from(m)).one()
            for m in (Document, Blob, Case, Folder, AuditEvent)
        }
    return {
        "rows": counts,
        "blobs": sorted(h for h, _ in ctx.store.iter_blobs()),
        "staging": sorted(str(p) for p, _ in ctx.store.iter_staging()),
    }
