"""共通マスタ: read endpoints and CSV import."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from genpon.api import schemas
from genpon.api.contracts.common import errors
from genpon.api.contracts.records import (
    DocumentClassesPublic,
    DocumentClassPublic,
    MasterImportPublic,
    MePublic,
    OrganizationPublic,
    OrganizationsPublic,
    UsersPublic,
)
from genpon.api.deps import ActorDep, SessionDep
from genpon.core.errors import InvalidInput
from genpon.records import master
from genpon.records.models import Organization
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool

router = APIRouter(prefix="/api/v1", tags=["master"], responses=errors(401))


def _parent_code(session: Session, org: Organization) -> str | None:
    parent = session.get(Organization, org.parent_id) if org.parent_id else None
    return parent.code if parent else None


@router.get("/organizations", response_model=OrganizationsPublic)
def list_organizations(session: SessionDep, actor: ActorDep) -> dict[str, Any]:
    orgs = master.list_organizations(session)
    by_id = {o.id: o.code for o in orgs}
    data = [schemas.organization(o, by_id.get(o.parent_id)) for o in orgs]
    return schemas.page(data, len(data), 0, len(data))


@router.get("/organizations/{code}", response_model=OrganizationPublic, responses=errors(404, 422))
def get_organization(code: str, session: SessionDep, actor: ActorDep) -> dict[str, Any]:
    org = master.get_organization(session, code)
    return schemas.organization(org, _parent_code(session, org))


@router.get("/document-classes", response_model=DocumentClassesPublic)
def list_classes(session: SessionDep, actor: ActorDep) -> dict[str, Any]:
    data = [schemas.document_class(c) for c in master.list_classes(session)]
    return schemas.page(data, len(data), 0, len(data))


@router.get(
    "/document-classes/{code}", response_model=DocumentClassPublic, responses=errors(404, 422)
)
def get_class(code: str, session: SessionDep, actor: ActorDep) -> dict[str, Any]:
    return schemas.document_class(master.get_class(session, code))


@router.get("/users", response_model=UsersPublic, responses=errors(403))
def list_users(session: SessionDep, actor: ActorDep) -> dict[str, Any]:
    data = [schemas.user(u) for u in master.list_users(session, actor)]
    return schemas.page(data, len(data), 0, len(data))


@router.get("/me", response_model=MePublic)
def me(session: SessionDep, actor: ActorDep) -> dict[str, Any]:
    return {
        "login": actor.login,
        "kind": actor.kind,
        "roles": sorted(actor.roles),
        "organization_id": actor.organization_id,
    }


@router.post(
    "/masters/{kind}/import",
    response_model=MasterImportPublic,
    responses=errors(403, 422),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"text/csv": {"schema": {"type": "string", "format": "binary"}}},
        }
    },
)
async def import_master(
    kind: str, request: Request, session: SessionDep, actor: ActorDep
) -> dict[str, Any]:
    """Body: the CSV file itself (text/csv), UTF-8 with or without BOM."""
    data = bytearray()
    async for chunk in request.stream():
        data += chunk
        if len(data) > master.MAX_CSV_BYTES:
            raise InvalidInput("csv_too_large", "CSVファイルが大きすぎます。")
    result = await run_in_threadpool(master.import_csv, session, actor, kind, bytes(data))
    return result.as_dict()
