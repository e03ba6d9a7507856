"""Folders: create (team/shared top level or any subfolder), list with paging, documents in a folder."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from genpon.api import schemas
from genpon.api.deps import ActorDep, SessionDep
from genpon.records import documents, folders
from pydantic import BaseModel, Field

router = APIRouter(prefix="/api/v1/folders", tags=["folders"])


class FolderCreate(BaseModel):
    name: str = Field(min_length=1, max_length=255)
    kind: str | None = None
    organization_code: str | None = None
    parent_id: int | None = None


@router.post("", status_code=201)
def create_folder(body: FolderCreate, session: SessionDep, actor: ActorDep) -> dict[str, Any]:
    f = folders.create_folder(
        session,
        actor,
        name=body.name,
        kind=body.kind,
        organization_code=body.organization_code,
        parent_id=body.parent_id,
    )
    return schemas.folder(f, folders.folder_path(session, f))


@router.get("")
def list_folders(
    session: SessionDep,
    actor: ActorDep,
    kind: str | None = None,
    organization: str | None = None,
    parent_id: int | None = None,
    offset: int = 0,
    limit: int = 50,
) -> dict[str, Any]:
    page = folders.list_folders(
        session,
        actor,
        kind=kind,
        organization_code=organization,
        parent_id=parent_id,
        offset=offset,
        limit=limit,
    )
    return schemas.page([schemas.folder(f) for f in page.items], page.count, offset, limit)


@router.get("/{folder_id}")
def get_folder(folder_id: int, session: SessionDep, actor: ActorDep) -> dict[str, Any]:
    f, _case = folders.get_folder(session, actor, folder_id)
    return schemas.folder(f, folders.folder_path(session, f))


@router.get("/{folder_id}/documents")
def folder_documents(
    folder_id: int, session: SessionDep, actor: ActorDep, offset: int = 0, limit: int = 50
) -> dict[str, Any]:
    items, count = documents.list_folder_documents(
        session, actor, folder_id, offset=offset, limit=limit
    )
    return schemas.page([schemas.document(d) for d in items], count, offset, limit)
