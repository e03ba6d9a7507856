"""Documents: streaming deposit, read, download, copy, approve, versions, corrections, by hash."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Header, Request, Response
from fastapi.responses import StreamingResponse
from genpon.api import schemas, upload
from genpon.api.deps import ActorDep, CtxDep, SessionDep
from genpon.core.errors import InvalidInput
from genpon.records import documents
from genpon.records.documents import ApprovalIn, DepositIn
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

router = APIRouter(prefix="/api/v1", tags=["documents"])

DEPOSIT_FIELDS = ("case_id", "folder_id", "title", "doc_date", "approval")


def _int_field(fields: dict[str, str], name: str) -> int | None:
    raw = fields.get(name, "").strip()
    if not raw:
        return None
    if not raw.isdigit() or len(raw) > 18:
        raise InvalidInput("invalid_field", f"{name} は整数で指定してください。", {"field": name})
    return int(raw)


def _date_field(fields: dict[str, str], name: str) -> date | None:
    raw = fields.get(name, "").strip()
    if not raw:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise InvalidInput(
            "invalid_field", f"{name} は YYYY-MM-DD で指定してください。", {"field": name}
        ) from None


def _deposit_response(
    session: Any, actor: Any, outcome: documents.DepositOutcome, response: Response
) -> dict[str, Any]:
    response.status_code = 201 if outcome.created else 200
    body = schemas.document_view(documents.view(session, actor, outcome.document.id or 0))
    body["deposit"] = {
        "created": outcome.created,
        "is_copy": outcome.is_copy,
        "blob_stored": outcome.blob_stored,
    }
    if outcome.is_copy:
        body["deposit"]["message"] = "同じ内容の原本が既にあるため、写しとして登録しました。"
    return body


@router.post("/documents", status_code=201)
async def deposit(
    request: Request,
    response: Response,
    session: SessionDep,
    actor: ActorDep,
    ctx: CtxDep,
    idempotency_key: str | None = Header(default=None),
) -> dict[str, Any]:
    """Deposit a file (multipart: ``file`` plus ``case_id`` or ``folder_id``, optional ``title``,
    ``doc_date``, ``approval`` as JSON {approved_on, approvers, external_system, external_id})."""
    up = await upload.receive(
        request, ctx.store, max_bytes=ctx.settings.max_upload_bytes, field_names=DEPOSIT_FIELDS
    )
    try:
        req = DepositIn(
            filename=up.filename,
            case_id=up.fields.get("case_id") or None,
            folder_id=_int_field(up.fields, "folder_id"),
            title=up.fields.get("title"),
            declared_type=up.content_type,
            doc_date=_date_field(up.fields, "doc_date"),
            approval=ApprovalIn.parse(up.fields.get("approval")),
            idempotency_key=idempotency_key,
        )
    except Exception:
        ctx.store.discard(up.staged)
        raise
    outcome = await run_in_threadpool(
        documents.deposit,
        session,
        ctx.store,
        actor,
        up.staged,
        req,
        allowed_types=ctx.settings.allowed_types,
        timezone=ctx.settings.timezone,
    )
    return await run_in_threadpool(_deposit_response, session, actor, outcome, response)


@router.get("/documents/{document_id}")
def get_document(document_id: int, session: SessionDep, actor: ActorDep) -> dict[str, Any]:
    return schemas.document_view(documents.view(session, actor, document_id))


@router.get("/documents/{document_id}/content")
def download(
    document_id: int, session: SessionDep, actor: ActorDep, ctx: CtxDep, version: int | None = None
) -> StreamingResponse:
    doc, sha, stream = documents.open_content(session, ctx.store, actor, document_id, version)
    session.commit()  # the read event is durable before any byte leaves

    def chunks() -> Iterator[bytes]:
        with stream:
            while block := stream.read(1 << 20):
                yield block

    headers = {
        "Content-Disposition": f"attachment; filename*=UTF-8''{quote(doc.filename)}",
        "ETag": f'"{sha}"',
        "X-Content-SHA256": sha,
    }
    return StreamingResponse(chunks(), media_type=doc.mime_type, headers=headers)


class CopyIn(BaseModel):
    folder_id: int
    title: str | None = Field(default=None, max_length=500)


@router.post("/documents/{document_id}/copies", status_code=201)
def copy(document_id: int, body: CopyIn, session: SessionDep, actor: ActorDep) -> dict[str, Any]:
    doc = documents.copy_to_folder(session, actor, document_id, body.folder_id, body.title)
    return schemas.document_view(documents.view(session, actor, doc.id or 0))


class ApproveIn(BaseModel):
    approved_on: date
    approvers: list[str] = Field(default_factory=list, max_length=100)
    external_system: str | None = Field(default=None, max_length=64)
    external_id: str | None = Field(default=None, max_length=200)


@router.post("/documents/{document_id}/approve")
def approve(
    document_id: int, body: ApproveIn, session: SessionDep, actor: ActorDep, ctx: CtxDep
) -> dict[str, Any]:
    approval = ApprovalIn.parse(body.model_dump(mode="json"))
    assert approval is not None
    documents.approve(session, actor, document_id, approval, timezone=ctx.settings.timezone)
    return schemas.document_view(documents.view(session, actor, document_id))


@router.post("/documents/{document_id}/versions", status_code=201)
async def new_version(
    document_id: int, request: Request, session: SessionDep, actor: ActorDep, ctx: CtxDep
) -> dict[str, Any]:
    up = await upload.receive(
        request, ctx.store, max_bytes=ctx.settings.max_upload_bytes, field_names=()
    )
    await run_in_threadpool(
        documents.add_version,
        session,
        ctx.store,
        actor,
        document_id,
        up.staged,
        up.filename,
        allowed_types=ctx.settings.allowed_types,
    )
    return await run_in_threadpool(
        lambda: schemas.document_view(documents.view(session, actor, document_id))
    )


@router.get("/documents/{document_id}/versions")
def list_versions(document_id: int, session: SessionDep, actor: ActorDep) -> dict[str, Any]:
    data = [
        {
            "version": v.version,
            "sha256": v.sha256,
            "size": v.size,
            "filename": v.filename,
            "mime_type": v.mime_type,
            "created_at": schemas.iso(v.created_at),
        }
        for v in documents.versions(session, actor, document_id)
    ]
    return schemas.page(data, len(data), 0, len(data))


@router.post("/documents/{document_id}/corrections", status_code=201)
async def correction(
    document_id: int,
    request: Request,
    response: Response,
    session: SessionDep,
    actor: ActorDep,
    ctx: CtxDep,
) -> dict[str, Any]:
    """訂正: a new document linked to the official one it corrects (which stays unchanged)."""
    up = await upload.receive(
        request,
        ctx.store,
        max_bytes=ctx.settings.max_upload_bytes,
        field_names=("title", "doc_date", "approval"),
    )

    def run() -> documents.DepositOutcome:
        old = documents.get_document(session, actor, document_id)
        req = DepositIn(
            filename=up.filename,
            folder_id=old.folder_id,
            title=up.fields.get("title"),
            declared_type=up.content_type,
            doc_date=_date_field(up.fields, "doc_date"),
            approval=ApprovalIn.parse(up.fields.get("approval")),
            supersedes_id=document_id,
        )
        return documents.deposit(
            session,
            ctx.store,
            actor,
            up.staged,
            req,
            allowed_types=ctx.settings.allowed_types,
            timezone=ctx.settings.timezone,
        )

    try:
        outcome = await run_in_threadpool(run)
    finally:
        ctx.store.discard(up.staged)
    return await run_in_threadpool(_deposit_response, session, actor, outcome, response)


@router.get("/originals/{sha256}")
def by_hash(sha256: str, session: SessionDep, actor: ActorDep) -> dict[str, Any]:
    """Who holds this content: the original (原本) and all copies (写し) the caller may see."""
    return schemas.holding(documents.by_hash(session, actor, sha256))
