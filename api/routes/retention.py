"""保存期間・廃棄・移管 (retention): disposition list, holds, extensions, reviewed batches,
destroy with a signed certificate, transfer, file register. Roles are checked in the services."""

from __future__ import annotations

import io
from datetime import date
from typing import Any, Literal, TypedDict

from fastapi import APIRouter, Query, Response
from genpon.api.contracts.common import BINARY, errors
from genpon.api.contracts.retention import (
    BatchesPublic,
    BatchItemsPublic,
    BatchPublic,
    CertificatePublic,
    DuePublic,
    ExecutionReportPublic,
    ExtensionResultPublic,
    ExtensionsPublic,
    HoldPublic,
    HoldsPublic,
    PublicKeysPublic,
    RegisterPublic,
    SignedCertificate,
)
from genpon.api.deps import ActorDep, CtxDep, Id, Int64, Limit, Offset, SessionDep
from genpon.api.retention_shapes import (
    batch_out,
    certificate_out,
    due_out,
    extension_out,
    hold_out,
    report_out,
)
from genpon.core import clock
from genpon.core.db import session_scope
from genpon.retention import (
    batches,
    certificates,
    disposal,
    disposition_list,
    extension,
    holding,
    register,
    service,
    transfers,
)
from pydantic import BaseModel, Field

router = APIRouter(prefix="/api/v1/retention", tags=["retention"], responses=errors(401, 403, 422))

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


# --- the disposition list -------------------------------------------------------------------


class _DueFilters(TypedDict):
    """The filters ``iter_due`` and ``due_list`` share."""

    as_of: date | None
    organization_code: str | None
    class_code: str | None
    disposition: str | None
    case_id: str | None


@router.get(
    "/due",
    response_model=DuePublic,
    responses={
        200: {"content": {"text/csv": BINARY}, "description": "format=csv: CSV"},
        **errors(404),
    },
)
def due(
    session: SessionDep,
    actor: ActorDep,
    ctx: CtxDep,
    as_of: date | None = None,
    organization: str | None = None,
    class_code: str | None = None,
    disposition: str | None = None,
    case_id: str | None = None,
    offset: Offset = 0,
    limit: Limit = 1000,
    format: Literal["json", "csv"] = "json",
) -> Any:
    filters: _DueFilters = {
        "as_of": as_of,
        "organization_code": organization,
        "class_code": class_code,
        "disposition": disposition,
        "case_id": case_id,
    }
    if format == "csv":
        buf = io.StringIO(newline="")
        items = disposition_list.iter_due(session, actor, timezone=ctx.settings.timezone, **filters)
        disposition_list.write_due_csv(items, buf)
        day = (as_of or clock.today(ctx.settings.timezone)).isoformat()
        return Response(
            buf.getvalue().encode("utf-8"),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="due-{day}.csv"'},
        )
    page = disposition_list.due_list(
        session, actor, timezone=ctx.settings.timezone, offset=offset, limit=limit, **filters
    )
    return due_out(page)


# --- holds ----------------------------------------------------------------------------------


class HoldIn(BaseModel):
    scope: Literal["document", "case", "class"]
    ref: str = Field(min_length=1, max_length=64, description="文書ID / 案件ID / 分類コード")
    hold_type: str = Field(min_length=1, max_length=16)
    reason: str = Field(min_length=1, max_length=1000)
    reference: str | None = Field(default=None, max_length=200)


class ReasonIn(BaseModel):
    reason: str = Field(min_length=1, max_length=1000)


@router.get("/holds", response_model=HoldsPublic)
def holds(
    session: SessionDep,
    actor: ActorDep,
    active: bool | None = True,
    scope: Literal["document", "case", "class"] | None = None,
    ref: str | None = None,
) -> dict[str, Any]:
    rows = holding.list_holds(session, actor, active=active, scope=scope, ref=ref)
    return {"data": [hold_out(h) for h in rows], "count": len(rows)}


@router.post("/holds", status_code=201, response_model=HoldPublic, responses=errors(404))
def place_hold(body: HoldIn, session: SessionDep, actor: ActorDep) -> dict[str, Any]:
    hold = holding.place_hold(
        session,
        actor,
        scope=body.scope,
        ref=body.ref,
        hold_type=body.hold_type,
        reason=body.reason,
        reference=body.reference,
    )
    return hold_out(hold)


@router.post("/holds/{hold_id}/release", response_model=HoldPublic, responses=errors(404, 409))
def release_hold(
    hold_id: Id, body: ReasonIn, session: SessionDep, actor: ActorDep
) -> dict[str, Any]:
    return hold_out(holding.release_hold(session, actor, hold_id, reason=body.reason))


# --- extensions -----------------------------------------------------------------------------


class ExtensionIn(BaseModel):
    scope: Literal["document", "case", "class"]
    ref: str = Field(min_length=1, max_length=64)
    years: int = Field(ge=1, le=30)
    reason: str = Field(min_length=1, max_length=1000)


@router.post(
    "/extensions", status_code=201, response_model=ExtensionResultPublic, responses=errors(404)
)
def extend(body: ExtensionIn, session: SessionDep, actor: ActorDep, ctx: CtxDep) -> dict[str, Any]:
    ext, changed = extension.extend(
        session,
        actor,
        scope=body.scope,
        ref=body.ref,
        years=body.years,
        reason=body.reason,
        timezone=ctx.settings.timezone,
    )
    return {**extension_out(ext), "documents_rescheduled": changed}


@router.get("/extensions", response_model=ExtensionsPublic, responses=errors(404))
def extensions(
    session: SessionDep,
    actor: ActorDep,
    scope: Literal["document", "case", "class"] | None = None,
    ref: str | None = None,
) -> dict[str, Any]:
    rows = extension.list_extensions(session, actor, scope=scope, ref=ref)
    return {"data": [extension_out(e) for e in rows], "count": len(rows)}


# --- batches --------------------------------------------------------------------------------


class BatchIn(BaseModel):
    action: Literal["destroy", "transfer"]
    document_ids: list[Id] | None = Field(default=None, max_length=100_000)
    as_of: date | None = None
    title: str = Field(default="", max_length=500)
    organization_code: str | None = Field(default=None, max_length=32)
    class_code: str | None = Field(default=None, max_length=32)
    case_id: str | None = Field(default=None, max_length=64)


class DecisionIn(BaseModel):
    document_ids: list[Id] | None = Field(default=None, max_length=100_000)
    reason: str | None = Field(default=None, max_length=1000)


class ExecuteIn(BaseModel):
    skip_blocked: bool = False


class AcknowledgeIn(BaseModel):
    receipt_reference: str | None = Field(default=None, max_length=200)


@router.post("/batches", status_code=201, response_model=BatchPublic, responses=errors(404, 409))
def create_batch(
    body: BatchIn, session: SessionDep, actor: ActorDep, ctx: CtxDep
) -> dict[str, Any]:
    b = batches.create_batch(
        session,
        actor,
        action=body.action,
        timezone=ctx.settings.timezone,
        document_ids=body.document_ids,
        as_of=body.as_of,
        title=body.title,
        organization_code=body.organization_code,
        class_code=body.class_code,
        case_id=body.case_id,
    )
    return batch_out(batches.get_batch(session, actor, b.id or 0))


@router.get("/batches", response_model=BatchesPublic)
def list_batches(
    session: SessionDep,
    actor: ActorDep,
    status: str | None = None,
    action: Literal["destroy", "transfer"] | None = None,
) -> dict[str, Any]:
    rows = batches.list_batches(session, actor, status=status, action=action)
    return {"data": [batch_out(b) for b in rows], "count": len(rows)}


@router.get("/batches/{batch_id}", response_model=BatchPublic, responses=errors(404))
def get_batch(batch_id: Id, session: SessionDep, actor: ActorDep) -> dict[str, Any]:
    return batch_out(batches.get_batch(session, actor, batch_id))


@router.get("/batches/{batch_id}/items", response_model=BatchItemsPublic, responses=errors(404))
def batch_items(
    batch_id: Id,
    session: SessionDep,
    actor: ActorDep,
    offset: Offset = 0,
    limit: int = Query(default=1000, ge=1, le=100_000),
) -> dict[str, Any]:
    batches.get_batch(session, actor, batch_id)
    rows = batches.batch_items(session, actor, batch_id, offset=offset, limit=limit)
    return {
        "data": [
            {
                "document_id": i.document_id,
                "title": d.title,
                "state": d.state,
                "sha256": d.sha256,
                "retention_end": d.retention_end.isoformat() if d.retention_end else None,
                "decision": i.decision,
                "decided_by": i.decided_by,
                "decision_reason": i.decision_reason,
                "status": i.status,
                "result": i.result,
            }
            for i, d in rows
        ]
    }


@router.post("/batches/{batch_id}/approve", response_model=BatchPublic, responses=errors(404, 409))
def approve(
    batch_id: Id, body: DecisionIn, session: SessionDep, actor: ActorDep, ctx: CtxDep
) -> dict[str, Any]:
    r = batches.decide(
        session,
        actor,
        batch_id,
        approve=True,
        document_ids=body.document_ids,
        reason=body.reason,
        timezone=ctx.settings.timezone,
    )
    return batch_out(r)


@router.post("/batches/{batch_id}/reject", response_model=BatchPublic, responses=errors(404, 409))
def reject(
    batch_id: Id, body: DecisionIn, session: SessionDep, actor: ActorDep, ctx: CtxDep
) -> dict[str, Any]:
    r = batches.decide(
        session,
        actor,
        batch_id,
        approve=False,
        document_ids=body.document_ids,
        reason=body.reason,
        timezone=ctx.settings.timezone,
    )
    return batch_out(r)


@router.post(
    "/batches/{batch_id}/execute",
    response_model=ExecutionReportPublic,
    responses=errors(404, 409),
)
def execute(batch_id: Id, body: ExecuteIn, actor: ActorDep, ctx: CtxDep) -> dict[str, Any]:
    """Destroy (廃棄) or, for a transfer batch, build the BagIt package (移管)."""
    with session_scope(ctx.engine) as s:
        action = batches.get_batch(s, actor, batch_id).batch.action
    if action == "transfer":
        r = transfers.export_transfer(
            ctx.engine, ctx.store, actor, ctx.settings, batch_id, skip_blocked=body.skip_blocked
        )
    else:
        r = disposal.execute_batch(
            ctx.engine, ctx.store, actor, ctx.settings, batch_id, skip_blocked=body.skip_blocked
        )
    return report_out(r)


@router.post(
    "/batches/{batch_id}/acknowledge",
    response_model=ExecutionReportPublic,
    responses=errors(404, 409),
)
def acknowledge(batch_id: Id, body: AcknowledgeIn, actor: ActorDep, ctx: CtxDep) -> dict[str, Any]:
    r = transfers.acknowledge_transfer(
        ctx.engine,
        ctx.store,
        actor,
        ctx.settings,
        batch_id,
        receipt_reference=body.receipt_reference,
    )
    return report_out(r)


@router.get(
    "/batches/{batch_id}/certificate",
    response_model=CertificatePublic | SignedCertificate,
    responses=errors(404, 409),
    description="download=true（既定）: 署名済み廃棄証明書ファイル（JSON、添付）。"
    "download=false: 証明書の要約。",
)
def certificate(batch_id: Id, session: SessionDep, actor: ActorDep, download: bool = True) -> Any:
    if not download:
        return certificate_out(certificates.get_certificate(session, actor, batch_id))
    name, data = certificates.certificate_file(session, actor, batch_id)
    return Response(
        data,
        media_type="application/json",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


@router.get("/public-keys", response_model=PublicKeysPublic)
def public_keys(actor: ActorDep, ctx: CtxDep) -> dict[str, Any]:
    """System public keys (PEM, by key id) for verifying certificates offline."""
    from genpon.core.signing import SystemKeyring

    service.require_reader(actor)
    ring = SystemKeyring.from_settings(ctx.settings, ctx.engine)
    return {"keys": ring.public_keys_pem()}


# --- the file register ----------------------------------------------------------------------


@router.get(
    "/register",
    response_model=RegisterPublic,
    responses={
        200: {
            "content": {"text/csv": BINARY, XLSX: BINARY},
            "description": "format=csv / xlsx: ファイル",
        },
        **errors(404),
    },
)
def file_register(
    session: SessionDep,
    actor: ActorDep,
    ctx: CtxDep,
    organization: str | None = None,
    fiscal_year: Int64 | None = None,
    format: Literal["json", "csv", "xlsx"] = "json",
) -> Any:
    rows = register.register_rows(
        session,
        actor,
        organization_code=organization,
        fiscal_year=fiscal_year,
        timezone=ctx.settings.timezone,
    )
    if format == "json":
        return {
            "data": [
                {k: (v.isoformat() if isinstance(v, date) else v) for k, v in r.items()}
                for r in rows
            ],
            "count": len(rows),
        }
    buf = io.BytesIO()
    register.export_register(rows, format, buf)
    media = "text/csv; charset=utf-8" if format == "csv" else XLSX
    suffix = f"-{fiscal_year}" if fiscal_year else ""
    return Response(
        buf.getvalue(),
        media_type=media,
        headers={"Content-Disposition": f'attachment; filename="file-register{suffix}.{format}"'},
    )
