"""Documents: streaming deposit, read, download, copy, approve, versions, corrections, by hash."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Header, Request, Response
from fastapi.responses import StreamingResponse
from genpon.api import schemas, upload
from genpon.api.contracts.common import FileDownload, errors, file_response
from genpon.api.contracts.records import (
    DepositPublic,
    DocumentViewPublic,
    HoldingPublic,
    VersionsPublic,
)
from genpon.api.deps import (
    ActorDep,
    CtxDep,
    Id,
    ReadSessionDep,
    SessionDep,
    deposit_upload,
    get_actor,
    in_transaction,
)
from genpon.core.errors import InvalidInput
from genpon.records import documents
from genpon.records.documents import ApprovalIn, DepositIn
from pydantic import BaseModel, Field
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool

router = APIRouter(prefix="/api/v1", tags=["documents"], responses=errors(401, 403, 404, 422))

DEPOSIT_FIELDS = ("case_id", "folder_id", "title", "doc_date", "approval")

# Uploads are streamed by api.upload (not parsed by FastAPI): the body is declared by hand.
_FILE_PART = {"type": "string", "format": "binary", "description": "ファイル（最後の項目に）"}
_APPROVAL_PART = {
    "type": "string",
    "description": "決裁情報 JSON {approved_on, approvers, external_system, external_id}",
}


def _multipart(**fields: dict[str, Any]) -> dict[str, Any]:
    schema = {"type": "object", "required": ["file"], "properties": {**fields, "file": _FILE_PART}}
    return {
        "requestBody": {"required": True, "content": {"multipart/form-data": {"schema": schema}}}
    }


# A deposit answers 201 (created) or 200 (idempotent replay); ``deposit.message`` only for a copy.
DEPOSITED: dict[str, Any] = {
    "response_model": DepositPublic,
    "response_model_exclude_unset": True,
    "responses": {200: {"model": DepositPublic}, **errors(409, 413, 415)},
}


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
    body = schemas.document_view(documents.deposited_view(session, actor, outcome))
    body["deposit"] = {
        "created": outcome.created,
        "is_copy": outcome.is_copy,
        "blob_stored": outcome.blob_stored,
    }
    if outcome.is_copy:
        body["deposit"]["message"] = "同じ内容の原本が既にあるため、写しとして登録しました。"
    return body


@router.post(
    "/documents",
    status_code=201,
    **DEPOSITED,
    openapi_extra=_multipart(
        case_id={"type": "string"},
        folder_id={"type": "integer", "minimum": 1},
        title={"type": "string"},
        doc_date={"type": "string", "format": "date"},
        approval=_APPROVAL_PART,
    ),
)
async def deposit(
    request: Request,
    response: Response,
    ctx: CtxDep,
    idempotency_key: str | None = Header(default=None),
) -> dict[str, Any]:
    """Deposit a file (multipart: ``file`` plus ``case_id`` or ``folder_id``, optional ``title``,
    ``doc_date``, ``approval`` as JSON {approved_on, approvers, external_system, external_id})."""
    # The caller is authenticated (get_actor, as ActorDep does) in the first worker call of
    # the upload, before any byte is parsed or written, instead of in a worker call of its own.

    def work(up: upload.Upload) -> dict[str, Any]:
        actor = get_actor(request)  # the first call's, kept on the request
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

        def transaction(session: Session) -> dict[str, Any]:
            outcome = deposit_upload(ctx, session, actor, up.staged, req)
            return _deposit_response(session, actor, outcome, response)

        return in_transaction(ctx.engine, transaction)

    # the last part of the body, the file's fsync and the whole transaction in one worker
    # call (a staged file is discarded if anything fails): no lock is held across an await
    return await upload.receive_then(
        request,
        ctx.store,
        max_bytes=ctx.settings.max_upload_bytes,
        field_names=DEPOSIT_FIELDS,
        work=work,
        first=lambda: get_actor(request),
    )


@router.get("/documents/{document_id}", response_model=DocumentViewPublic)
def get_document(document_id: Id, session: ReadSessionDep, actor: ActorDep) -> dict[str, Any]:
    return schemas.document_view(documents.view(session, actor, document_id))


@router.get(
    "/documents/{document_id}/content",
    response_class=FileDownload,
    responses=file_response("原本ファイル（Content-Type は文書の形式）", "*/*"),
)
def download(
    document_id: Id, session: SessionDep, actor: ActorDep, ctx: CtxDep, version: Id | None = None
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
    folder_id: Id
    title: str | None = Field(default=None, max_length=500)


@router.post(
    "/documents/{document_id}/copies",
    status_code=201,
    response_model=DocumentViewPublic,
    responses=errors(409),
)
def copy(document_id: Id, body: CopyIn, session: SessionDep, actor: ActorDep) -> dict[str, Any]:
    doc = documents.copy_to_folder(session, actor, document_id, body.folder_id, body.title)
    return schemas.document_view(documents.view(session, actor, doc.id or 0))


class ApproveIn(BaseModel):
    approved_on: date
    approvers: list[str] = Field(default_factory=list, max_length=100)
    external_system: str | None = Field(default=None, max_length=64)
    external_id: str | None = Field(default=None, max_length=200)


@router.post(
    "/documents/{document_id}/approve", response_model=DocumentViewPublic, responses=errors(409)
)
def approve(
    document_id: Id, body: ApproveIn, session: SessionDep, actor: ActorDep, ctx: CtxDep
) -> dict[str, Any]:
    approval = ApprovalIn.parse(body.model_dump(mode="json"))
    assert approval is not None
    documents.approve(session, actor, document_id, approval, timezone=ctx.settings.timezone)
    return schemas.document_view(documents.view(session, actor, document_id))


@router.post(
    "/documents/{document_id}/versions",
    status_code=201,
    response_model=DocumentViewPublic,
    responses=errors(409, 413, 415),
    openapi_extra=_multipart(),
)
async def new_version(
    document_id: Id, request: Request, actor: ActorDep, ctx: CtxDep
) -> dict[str, Any]:
    up = await upload.receive(
        request, ctx.store, max_bytes=ctx.settings.max_upload_bytes, field_names=()
    )

    def work(session: Session) -> dict[str, Any]:
        documents.add_version(
            session,
            ctx.store,
            actor,
            document_id,
            up.staged,
            up.filename,
            allowed_types=ctx.settings.allowed_types,
        )
        return schemas.document_view(documents.view(session, actor, document_id))

    return await run_in_threadpool(in_transaction, ctx.engine, work)


@router.get("/documents/{document_id}/versions", response_model=VersionsPublic)
def list_versions(document_id: Id, session: ReadSessionDep, actor: ActorDep) -> dict[str, Any]:
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


@router.post(
    "/documents/{document_id}/corrections",
    status_code=201,
    **DEPOSITED,
    openapi_extra=_multipart(
        title={"type": "string"},
        doc_date={"type": "string", "format": "date"},
        approval=_APPROVAL_PART,
    ),
)
async def correction(
    document_id: Id,
    request: Request,
    response: Response,
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

    def work(session: Session) -> dict[str, Any]:
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
        outcome = deposit_upload(ctx, session, actor, up.staged, req)
        return _deposit_response(session, actor, outcome, response)

    try:
        return await run_in_threadpool(in_transaction, ctx.engine, work)
    finally:
        await run_in_threadpool(ctx.store.discard, up.staged)


@router.get("/originals/{sha256}", response_model=HoldingPublic)
def by_hash(sha256: str, session: ReadSessionDep, actor: ActorDep) -> dict[str, Any]:
    """Who holds this content: the original (原本) and all copies (写し) the caller may see."""
    return schemas.holding(documents.by_hash(session, actor, sha256))
