"""監査 (auditor) API: events, checkpoints, Merkle proofs, fixity runs, public keys.

Routes only parse, call :mod:`records.audit_query` / :mod:`records.checkpoints` /
:mod:`records.fixity` (which check the auditor/admin role) and shape the answer.
``install(app)`` also starts the checkpointer thread outside tests.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from fastapi import APIRouter, FastAPI, Query
from genpon.api import schemas
from genpon.api.contracts.audit import (
    AuditKeysPublic,
    CheckpointPublic,
    CheckpointsPublic,
    ConsistencyProofPublic,
    EventPagePublic,
    FixityRunDetailPublic,
    FixityRunPublic,
    FixityRunsPublic,
    InclusionProofPublic,
    LogCheckPublic,
)
from genpon.api.contracts.common import errors
from genpon.api.contracts.records import EventPublic
from genpon.api.deps import ActorDep, CtxDep, Id, Offset, SessionDep
from genpon.core.errors import Conflict, InvalidInput
from genpon.core.signing import SystemKeyring
from genpon.records.access import require_role
from genpon.records.audit import query as q
from genpon.records.audit.checkpoints import (
    keyring_ready,
    request_checkpoint,
    statement,
)
from genpon.records.audit.fixity import run_fixity
from genpon.records.audit.models import Checkpoint, FixityFinding, FixityRun
from genpon.storage.context import AppContext
from pydantic import BaseModel, Field

router = APIRouter(prefix="/api/v1/audit", tags=["audit"], responses=errors(401, 403))


def keyring_of(ctx: AppContext) -> SystemKeyring:
    ring = SystemKeyring.from_settings(ctx.settings, ctx.engine)
    if not keyring_ready(ring):
        raise Conflict("system_key_missing", "システム署名鍵がありません（genpon init）。")
    return ring


def checkpoint_out(cp: Checkpoint) -> dict[str, Any]:
    return {"id": cp.id, **statement(cp)}


def _dump(row: FixityRun | FixityFinding) -> dict[str, Any]:
    out = row.model_dump(mode="json")
    for name, value in row:  # SQLite gives naive UTC back: the schema's date-time needs a zone
        if isinstance(value, datetime):
            out[name] = schemas.iso(value)
    return out


def run_out(run: FixityRun) -> dict[str, Any]:
    return _dump(run)


def finding_out(f: FixityFinding) -> dict[str, Any]:
    return _dump(f)


# --- events ----------------------------------------------------------------------------------


@router.get("/events", response_model=EventPagePublic, responses=errors(422))
def events(
    session: SessionDep,
    actor: ActorDep,
    ctx: CtxDep,
    target_type: str | None = Query(None, max_length=32),
    target_id: str | None = Query(None, max_length=128),
    actor_login: str | None = Query(None, alias="actor", max_length=64),
    action: str | None = Query(None, max_length=64),
    case_id: str | None = Query(None, max_length=64),
    since: datetime | None = None,
    until: datetime | None = None,
    on: date | None = Query(None, alias="date", description="業務日（市の時刻）"),
    after_seq: Offset | None = None,
    before_seq: Id | None = None,
    limit: int = Query(100, ge=1, le=q.MAX_LIMIT),
    order: Literal["asc", "desc"] = "asc",
) -> dict[str, Any]:
    if on is not None:
        if since is not None or until is not None:
            raise InvalidInput("bad_range", "date と since/until は同時に指定できません。")
        since, until = q.local_day_range(on, ctx.settings.timezone)
    page = q.list_events(
        session,
        actor,
        target_type=target_type,
        target_id=target_id,
        actor_login=actor_login,
        action=action,
        case_id=case_id,
        since=since,
        until=until,
        after_seq=after_seq,
        before_seq=before_seq,
        limit=limit,
        newest_first=order == "desc",
    )
    return page.as_dict()


@router.get("/events/{seq}", response_model=EventPublic, responses=errors(404, 422))
def event(seq: Id, session: SessionDep, actor: ActorDep) -> dict[str, Any]:
    from genpon.records.audit.checkpoints import event_dict

    return event_dict(q.get_event(session, actor, seq))


# --- checkpoints -----------------------------------------------------------------------------


@router.get("/checkpoints", response_model=CheckpointsPublic, responses=errors(422))
def checkpoints(
    session: SessionDep,
    actor: ActorDep,
    offset: Offset = 0,
    limit: int = Query(50, ge=1, le=q.MAX_LIMIT),
) -> dict[str, Any]:
    rows, total = q.list_checkpoints(session, actor, offset=offset, limit=limit)
    return {
        "items": [checkpoint_out(c) for c in rows],
        "count": total,
        "offset": offset,
        "limit": limit,
    }


@router.get("/checkpoints/latest", response_model=CheckpointPublic, responses=errors(409))
def checkpoint_latest(session: SessionDep, actor: ActorDep) -> dict[str, Any]:
    cp = q.latest_checkpoint(session, actor)
    if cp is None:
        raise Conflict("not_checkpointed", "チェックポイントがまだありません。")
    return checkpoint_out(cp)


@router.get(
    "/checkpoints/{checkpoint_id}", response_model=CheckpointPublic, responses=errors(404, 422)
)
def checkpoint(checkpoint_id: Id, session: SessionDep, actor: ActorDep) -> dict[str, Any]:
    return checkpoint_out(q.get_checkpoint(session, actor, checkpoint_id))


@router.post(
    "/checkpoints", status_code=201, response_model=CheckpointPublic, responses=errors(409)
)
def make_checkpoint(session: SessionDep, actor: ActorDep, ctx: CtxDep) -> dict[str, Any]:
    require_role(actor, *q.AUDIT_ROLES)  # before the keyring: others learn nothing of it
    return checkpoint_out(request_checkpoint(session, keyring_of(ctx), actor))


# --- proofs ----------------------------------------------------------------------------------


@router.get(
    "/proofs/inclusion", response_model=InclusionProofPublic, responses=errors(404, 409, 422)
)
def proof_inclusion(
    session: SessionDep,
    actor: ActorDep,
    seq: Id,
    tree_size: Id | None = None,
) -> dict[str, Any]:
    return q.inclusion_proof(session, actor, seq, tree_size=tree_size).as_dict()


@router.get(
    "/proofs/document/{document_id}",
    response_model=InclusionProofPublic,
    responses=errors(404, 409, 422),
)
def proof_document(document_id: Id, session: SessionDep, actor: ActorDep) -> dict[str, Any]:
    return q.document_proof(session, actor, document_id).as_dict()


@router.get(
    "/proofs/consistency", response_model=ConsistencyProofPublic, responses=errors(409, 422)
)
def proof_consistency(
    session: SessionDep,
    actor: ActorDep,
    first: Id,
    second: Id | None = None,
) -> dict[str, Any]:
    return q.consistency_proof(session, actor, first, second).as_dict()


# --- fixity ----------------------------------------------------------------------------------


class FixityIn(BaseModel):
    mode: Literal["all", "sample", "older_than"] = "sample"
    sample: int | None = Field(default=None, ge=1, le=1_000_000)
    older_than_days: int | None = Field(default=None, ge=0, le=36500)
    workers: int | None = Field(default=None, ge=1, le=16)


@router.post("/fixity", status_code=201, response_model=FixityRunPublic, responses=errors(409, 422))
def fixity(body: FixityIn, actor: ActorDep, ctx: CtxDep) -> dict[str, Any]:
    run = run_fixity(
        ctx.engine,
        ctx.store,
        actor,
        mode=body.mode,
        sample=body.sample,
        older_than_days=body.older_than_days,
        workers=body.workers or ctx.settings.fixity_workers,
    )
    return run_out(run)


@router.get("/fixity/runs", response_model=FixityRunsPublic, responses=errors(422))
def fixity_runs(
    session: SessionDep,
    actor: ActorDep,
    offset: Offset = 0,
    limit: int = Query(50, ge=1, le=q.MAX_LIMIT),
) -> dict[str, Any]:
    rows, total = q.list_fixity_runs(session, actor, offset=offset, limit=limit)
    return {"items": [run_out(r) for r in rows], "count": total, "offset": offset, "limit": limit}


@router.get(
    "/fixity/runs/{run_id}", response_model=FixityRunDetailPublic, responses=errors(404, 422)
)
def fixity_run(run_id: Id, session: SessionDep, actor: ActorDep) -> dict[str, Any]:
    run, findings = q.get_fixity_run(session, actor, run_id)
    return {**run_out(run), "findings": [finding_out(f) for f in findings]}


# --- keys and a quick server-side check ------------------------------------------------------


@router.get("/keys", response_model=AuditKeysPublic, responses=errors(409))
def public_keys(actor: ActorDep, ctx: CtxDep) -> dict[str, Any]:
    """Public keys of the system (any signed-in user may fetch them: they are public)."""
    ring = keyring_of(ctx)
    return {"current": ring.key_id, "keys": ring.public_keys_pem()}


@router.get("/verify", response_model=LogCheckPublic, responses=errors(409))
def verify(session: SessionDep, actor: ActorDep, ctx: CtxDep) -> dict[str, Any]:
    require_role(actor, *q.AUDIT_ROLES)  # before the keyring: others learn nothing of it
    return q.check_log(session, actor, keyring_of(ctx)).as_dict()


def install(app: FastAPI) -> None:
    """Include the router. The checkpointer runs in `genpon worker`, or in the server itself
    in the embedded default (see :func:`genpon.api.routes.search.install`)."""
    app.include_router(router)
