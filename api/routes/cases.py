"""案件: create (issue an ID), register an external ID, read, members, close/reopen, timeline."""

from __future__ import annotations

from datetime import date
from typing import Any

from fastapi import APIRouter, Response
from genpon.api import schemas
from genpon.api.contracts.common import errors
from genpon.api.contracts.records import CasePublic, CasesPublic, EventsPublic
from genpon.api.deps import ActorDep, CtxDep, Limit, Offset, SessionDep
from genpon.records import cases
from genpon.records.folders import case_root_folder
from pydantic import BaseModel, Field

router = APIRouter(prefix="/api/v1/cases", tags=["cases"], responses=errors(401, 403, 422))

# A case read or changed alone carries its codes and members, a listed one does not: the
# declared optional fields appear only when the route filled them.
ONE: dict[str, Any] = {"response_model": CasePublic, "response_model_exclude_unset": True}


class CaseCreate(BaseModel):
    title: str = Field(min_length=1, max_length=500)
    organization_code: str = Field(min_length=1, max_length=32)
    class_code: str = Field(min_length=1, max_length=32)
    opened_on: date | None = None
    members: list[str] = Field(default_factory=list, max_length=500)


class CaseRegister(CaseCreate):
    issuer: str | None = Field(default=None, max_length=64)


class MembersIn(BaseModel):
    logins: list[str] = Field(min_length=1, max_length=500)


@router.post("", status_code=201, **ONE, responses=errors(404, 409))
def create_case(
    body: CaseCreate, session: SessionDep, actor: ActorDep, ctx: CtxDep
) -> dict[str, Any]:
    case, folder = cases.create_case(
        session,
        actor,
        title=body.title,
        organization_code=body.organization_code,
        class_code=body.class_code,
        case_id_format=ctx.settings.case_id_format,
        timezone=ctx.settings.timezone,
        opened_on=body.opened_on,
        members=body.members,
    )
    return schemas.case(case, session, folder)


@router.put("/{case_id}", **ONE, responses={201: {"model": CasePublic}, **errors(404, 409)})
def register_case(
    case_id: str,
    body: CaseRegister,
    response: Response,
    session: SessionDep,
    actor: ActorDep,
    ctx: CtxDep,
) -> dict[str, Any]:
    """Register a case ID issued by another platform (idempotent upsert)."""
    case, folder, created = cases.register_case(
        session,
        actor,
        case_id=case_id,
        title=body.title,
        organization_code=body.organization_code,
        class_code=body.class_code,
        timezone=ctx.settings.timezone,
        issuer=body.issuer or actor.login,
        case_id_format=ctx.settings.case_id_format,
        opened_on=body.opened_on,
        members=body.members,
    )
    response.status_code = 201 if created else 200
    return schemas.case(case, session, folder)


@router.get(
    "", response_model=CasesPublic, response_model_exclude_unset=True, responses=errors(404)
)
def list_cases(
    session: SessionDep,
    actor: ActorDep,
    organization: str | None = None,
    status: str | None = None,
    offset: Offset = 0,
    limit: Limit = 50,
) -> dict[str, Any]:
    page = cases.list_cases(
        session, actor, organization_code=organization, status=status, offset=offset, limit=limit
    )
    return schemas.page([schemas.case(c) for c in page.items], page.count, offset, limit)


@router.get("/{case_id}", **ONE, responses=errors(404))
def get_case(case_id: str, session: SessionDep, actor: ActorDep) -> dict[str, Any]:
    case = cases.get_case(session, actor, case_id)
    return schemas.case(case, session, case_root_folder(session, case))


@router.post("/{case_id}/members", **ONE, responses=errors(404))
def add_members(
    case_id: str, body: MembersIn, session: SessionDep, actor: ActorDep
) -> dict[str, Any]:
    case = cases.add_members(session, actor, case_id, body.logins)
    return schemas.case(case, session)


@router.post("/{case_id}/close", **ONE, responses=errors(404, 409))
def close_case(case_id: str, session: SessionDep, actor: ActorDep, ctx: CtxDep) -> dict[str, Any]:
    return schemas.case(
        cases.close_case(session, actor, case_id, timezone=ctx.settings.timezone), session
    )


@router.post("/{case_id}/reopen", **ONE, responses=errors(404, 409))
def reopen_case(case_id: str, session: SessionDep, actor: ActorDep, ctx: CtxDep) -> dict[str, Any]:
    return schemas.case(
        cases.reopen_case(session, actor, case_id, timezone=ctx.settings.timezone), session
    )


@router.get("/{case_id}/timeline", response_model=EventsPublic, responses=errors(404))
def timeline(case_id: str, session: SessionDep, actor: ActorDep) -> dict[str, Any]:
    events = [schemas.event(e) for e in cases.timeline(session, actor, case_id)]
    return schemas.page(events, len(events), 0, len(events))
