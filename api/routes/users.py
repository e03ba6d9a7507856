"""API keys: issued (shown once) and revoked."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from genpon.api import schemas
from genpon.api.contracts.common import errors
from genpon.api.contracts.records import KeyIssuedPublic, KeyRevokedPublic, KeysPublic
from genpon.api.deps import ActorDep, SessionDep
from genpon.records import users
from pydantic import BaseModel, Field

router = APIRouter(prefix="/api/v1", tags=["users"], responses=errors(401, 403, 404, 422))


class KeyIn(BaseModel):
    label: str = Field(default="", max_length=200)


@router.post("/users/{login}/keys", status_code=201, response_model=KeyIssuedPublic)
def issue_key(login: str, body: KeyIn, session: SessionDep, actor: ActorDep) -> dict[str, Any]:
    key, clear = users.issue_key(session, actor, login, body.label)
    return {
        "prefix": key.prefix,
        "label": key.label,
        "api_key": clear,
        "note": "このキーは今回しか表示されません。安全な場所に保管してください。",
    }


@router.get("/users/{login}/keys", response_model=KeysPublic)
def list_keys(login: str, session: SessionDep, actor: ActorDep) -> dict[str, Any]:
    data = [
        {
            "prefix": k.prefix,
            "label": k.label,
            "created_at": schemas.iso(k.created_at),
            "revoked_at": schemas.iso(k.revoked_at),
        }
        for k in users.list_keys(session, actor, login)
    ]
    return schemas.page(data, len(data), 0, len(data))


@router.delete("/keys/{prefix}", response_model=KeyRevokedPublic, responses=errors(409))
def revoke_key(prefix: str, session: SessionDep, actor: ActorDep) -> dict[str, Any]:
    key = users.revoke_key(session, actor, prefix)
    return {"prefix": key.prefix, "revoked_at": schemas.iso(key.revoked_at)}
