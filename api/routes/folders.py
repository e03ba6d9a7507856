"""Folders: create (team/shared top level or any subfolder), list with paging, documents in a folder."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from genpon.api import schemas
from genpon.api.contracts.common import errors
from genpon.api.contracts.records import DocumentsPublic, FolderPublic, FoldersPublic
from genpon.api.deps import ActorDep, Id, Limit, Offset, SessionDep
from genpon.records import documents, folders
from pydantic import BaseModel, Field

router = APIRouter(prefix="/api/v1/folders", tags=["folders"], responses=errors(401, 403, 422))


class FolderCreate(BaseModel):
    name: str = Field(min_length=1, max_length=255)
    kind: str | None = None
    organization_code: str | None = None
    parent_id: Id | None = None


@router.post("", status_code=201, response_model=FolderPublic, responses=errors(404, 409))
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


@router.get("", response_model=FoldersPublic, responses=errors(404))
def list_folders(
    session: SessionDep,
    actor: ActorDep,
    kind: str | None = None,
    organization: str | None = None,
    parent_id: Id | None = None,
    offset: Offset = 0,
    limit: Limit = 50,
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


@router.get("/{folder_id}", response_model=FolderPublic, responses=errors(404))
def get_folder(folder_id: Id, session: SessionDep, actor: ActorDep) -> dict[str, Any]:
    f, _case = folders.get_folder(session, actor, folder_id)
    return schemas.folder(f, folders.folder_path(session, f))


@router.get("/{folder_id}/documents", response_model=DocumentsPublic, responses=errors(404))
def folder_documents(
    folder_id: Id, session: SessionDep, actor: ActorDep, offset: Offset = 0, limit: Limit = 50
) -> dict[str, Any]:
    items, count = documents.list_folder_documents(
        session, actor, folder_id, offset=offset, limit=limit
    )
    return schemas.page([schemas.document(d) for d in items], count, offset, limit)
