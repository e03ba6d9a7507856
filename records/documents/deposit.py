"""Deposit (登録): one upload becomes a document, in the order of durable steps.

1. the upload was streamed once into a :class:`~storage.base.StagedBlob` (hashed, fsynced);
2. the request is validated (folder, permission, type, size, idempotency) — nothing stored yet;
3. the blob is written to the store write-once and durably (``put_staged``);
4. the rows (blob, document, version, approval, audit events, index outbox) are added to the
   caller's transaction, which commits them together.

A crash after 3 and before the commit leaves an unreferenced blob, which ``genpon gc`` collects
after a grace period; no row ever points to a blob that is not durably stored."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import date
from typing import Any

from genpon.core.clock import local_date, utcnow
from genpon.core.errors import Conflict, InvalidInput, UnsupportedType
from genpon.records import audit
from genpon.records.access import Actor, require_external_system, require_write
from genpon.records.audit import AuditAction
from genpon.records.cases import get_case
from genpon.records.documents.approval import ApprovalIn, _record_approval
from genpon.records.documents.common import (
    _by_external_ref,
    _insert_blob,
    _readable,
    _title_from,
    clean_filename,
    enqueue_index,
)
from genpon.records.documents.originals import _place
from genpon.records.documents.versions import correction_target, record_correction
from genpon.records.folders import case_root_folder, get_folder
from genpon.records.models import (
    Approval,
    Case,
    Document,
    DocumentStatus,
    DocumentVersion,
    Folder,
    IdempotencyKey,
    IndexReason,
)
from genpon.records.sniff import sniff, type_allowed, types_agree
from genpon.storage.base import BlobStore, StagedBlob
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session


@dataclass
class DepositIn:
    filename: str
    folder_id: int | None = None
    case_id: str | None = None
    title: str | None = None
    declared_type: str | None = None
    doc_date: date | None = None
    approval: ApprovalIn | None = None
    idempotency_key: str | None = None
    supersedes_id: int | None = None
    provenance: dict[str, Any] | None = None


@dataclass
class DepositOutcome:
    document: Document
    created: bool  # False: an idempotent replay returned the existing document
    is_copy: bool
    blob_stored: bool  # False: the content was already in the store
    # What the answer's view needs without querying again (see reading.deposited_view):
    new_content: bool = False  # the blob row is this deposit's: nothing else refers to it
    approval: Approval | None = None  # the approval row this deposit recorded
    # held so that the session's identity map keeps them (it holds objects weakly)
    folder: Folder | None = None
    case: Case | None = None


@dataclass
class _Content:
    """What validation learned about the staged content and its names."""

    filename: str
    title: str
    mime: str
    declared: str | None  # the type the depositor declared, without parameters


def _fingerprint(staged: StagedBlob, req: DepositIn, folder_id: int) -> str:
    raw = json.dumps(
        [
            staged.sha256,
            folder_id,
            req.filename,
            req.title,
            req.approval.external_id if req.approval else None,
        ],
        ensure_ascii=False,
    )
    return hashlib.sha256(raw.encode()).hexdigest()


def resolve_target(session: Session, actor: Actor, req: DepositIn) -> tuple[Folder, Case | None]:
    if req.case_id:
        case = get_case(session, actor, req.case_id)
        folder = case_root_folder(session, case)
        if req.folder_id is not None and req.folder_id != folder.id:
            sub, _sub_case = get_folder(session, actor, req.folder_id)
            if sub.case_pk != case.id:
                raise InvalidInput("folder_case_mismatch", "フォルダが案件に属していません。")
            folder = sub
        return folder, case
    if req.folder_id is None:
        raise InvalidInput(
            "folder_required",
            "登録先の案件ID（case_id）またはフォルダID（folder_id）を指定してください。",
        )
    return get_folder(session, actor, req.folder_id)


def deposit(
    session: Session,
    store: BlobStore,
    actor: Actor,
    staged: StagedBlob,
    req: DepositIn,
    *,
    allowed_types: tuple[str, ...],
    timezone: str,
) -> DepositOutcome:
    """Deposit staged content; see the module docstring for the order of durable steps."""
    try:
        return _deposit(
            session, store, actor, staged, req, allowed_types=allowed_types, timezone=timezone
        )
    finally:
        store.discard(staged)  # no-op once put_staged moved the file into the store


def _deposit(
    session: Session,
    store: BlobStore,
    actor: Actor,
    staged: StagedBlob,
    req: DepositIn,
    *,
    allowed_types: tuple[str, ...],
    timezone: str,
) -> DepositOutcome:
    folder, case = resolve_target(session, actor, req)
    require_write(actor, folder, case)
    require_external_system(actor, req.approval.external_system if req.approval else None)
    content = _check_content(staged, req, allowed_types)
    if req.approval and case is None:
        raise InvalidInput("approval_needs_case", "決裁済み文書は案件フォルダに登録してください。")
    fingerprint = _fingerprint(staged, req, folder.id or 0)
    replay = _replay(session, actor, staged, req, fingerprint)
    if replay is not None:
        return replay
    superseded = correction_target(session, actor, req.supersedes_id)

    # Durable blob first, then rows in this transaction. The unique keys decide races between
    # identical requests (Idempotency-Key, external reference): the loser's savepoint rolls back
    # and it answers with the winner's document.
    stored = store.put_staged(staged)
    try:
        with session.begin_nested():
            doc, new_content, approval = _insert_rows(
                session,
                actor,
                staged,
                req,
                content,
                folder,
                case,
                superseded,
                fingerprint,
                timezone,
            )
    except IntegrityError as exc:
        return _replay_lost_race(session, actor, staged, req, fingerprint, exc)
    return DepositOutcome(
        doc,
        created=True,
        is_copy=doc.original_id is not None,
        blob_stored=stored,
        new_content=new_content,
        approval=approval,
        folder=folder,
        case=case,
    )


def _insert_rows(
    session: Session,
    actor: Actor,
    staged: StagedBlob,
    req: DepositIn,
    content: _Content,
    folder: Folder,
    case: Case | None,
    superseded: Document | None,
    fingerprint: str,
    timezone: str,
) -> tuple[Document, bool, Approval | None]:
    """Every row of a deposit; raises IntegrityError when an identical request won a race.
    Returns the document, whether its blob row is new and the approval row."""
    new_content = _insert_blob(session, staged, content.mime)
    doc = _new_document(actor, staged, req, content, folder, case, superseded, timezone)
    _place(session, doc)
    case_id = case.case_id if case else None
    _record_deposit(session, actor, doc, content, folder, case_id)
    approval = None
    if req.approval is not None:
        approval = _record_approval(session, actor, doc, req.approval, case_id)
    if superseded is not None:
        record_correction(session, actor, superseded, doc, case_id)
    if req.idempotency_key:
        session.add(
            IdempotencyKey(
                user_id=actor.user_id,
                key=req.idempotency_key,
                fingerprint=fingerprint,
                document_id=doc.id or 0,
            )
        )
    enqueue_index(session, doc.sha256, IndexReason.DEPOSIT)
    session.flush()
    return doc, new_content, approval


def _replay_lost_race(
    session: Session,
    actor: Actor,
    staged: StagedBlob,
    req: DepositIn,
    fingerprint: str,
    exc: IntegrityError,
) -> DepositOutcome:
    """An identical request inserted the same unique key first: answer with its document.

    On PostgreSQL the insert waited for the winner's commit, so the winner is visible now; the
    409 ``request_in_progress`` covers a winner not visible to this transaction (yet)."""
    key = _violated_key(exc)
    if key is None:
        raise exc
    replay = _replay(session, actor, staged, req, fingerprint)
    if replay is not None:
        return replay
    raise Conflict(
        "request_in_progress",
        "同じ登録要求を処理中です。しばらくしてからもう一度お試しください。",
        {"key": key},
    ) from exc


def _violated_key(exc: IntegrityError) -> str | None:
    """Which request key a unique violation is about: ``idempotency_key``, ``external_ref``."""
    diag = getattr(exc.orig, "diag", None)  # psycopg names the constraint
    name = getattr(diag, "constraint_name", None) or ""
    message = str(exc.orig)  # SQLite names the columns
    if name == "idempotency_key_pkey" or "idempotency_key.key" in message:
        return "idempotency_key"
    if name == "uq_document_external_ref" or "document.external_id" in message:
        return "external_ref"
    return None


def _check_content(staged: StagedBlob, req: DepositIn, allowed_types: tuple[str, ...]) -> _Content:
    """Refuse an empty file, a title too long or a type not allowed (sniffed, not declared)."""
    if staged.size == 0:
        raise InvalidInput("empty_file", "空のファイルは登録できません。")
    filename = clean_filename(req.filename)
    title = _title_from(filename, req.title)
    mime = sniff(staged.path, staged.head)
    if not type_allowed(mime, allowed_types):
        raise UnsupportedType(
            "type_not_allowed",
            f"この種類のファイルは登録できません: {mime}",
            {"detected_type": mime},
        )
    declared = (req.declared_type or "").split(";")[0].strip().lower() or None
    return _Content(filename=filename, title=title, mime=mime, declared=declared)


def _replay(
    session: Session, actor: Actor, staged: StagedBlob, req: DepositIn, fingerprint: str
) -> DepositOutcome | None:
    """Idempotent replays: the Idempotency-Key header, then the external system's own ID."""
    if req.idempotency_key:
        if len(req.idempotency_key) > 200:
            raise InvalidInput("invalid_idempotency_key", "Idempotency-Key は200文字以内です。")
        prior = session.get(IdempotencyKey, (actor.user_id, req.idempotency_key))
        if prior is not None:
            if prior.fingerprint != fingerprint:
                raise Conflict(
                    "idempotency_key_reused",
                    "この Idempotency-Key は別の内容の登録に使われています。",
                )
            doc = session.get(Document, prior.document_id)
            assert doc is not None
            return DepositOutcome(
                doc, created=False, is_copy=doc.original_id is not None, blob_stored=False
            )
    return _replay_external_ref(session, actor, staged, req)


def _replay_external_ref(
    session: Session, actor: Actor, staged: StagedBlob, req: DepositIn
) -> DepositOutcome | None:
    """The document already deposited under the approval's external reference, if any."""
    if not (req.approval and req.approval.external_system):
        return None
    existing = _by_external_ref(
        session, req.approval.external_system, req.approval.external_id or ""
    )
    if existing is None:
        return None
    return _replay_external(session, actor, existing, staged)


def _new_document(
    actor: Actor,
    staged: StagedBlob,
    req: DepositIn,
    content: _Content,
    folder: Folder,
    case: Case | None,
    superseded: Document | None,
    timezone: str,
) -> Document:
    official = req.approval is not None
    return Document(
        folder_id=folder.id or 0,
        case_pk=folder.case_pk,
        organization_id=folder.organization_id,
        document_class_id=case.document_class_id if case else None,
        title=content.title,
        filename=content.filename,
        sha256=staged.sha256,
        size=staged.size,
        mime_type=content.mime,
        declared_type=content.declared,
        status=DocumentStatus.OFFICIAL if official else DocumentStatus.WORKING,
        doc_date=req.doc_date or local_date(utcnow(), timezone),
        external_system=req.approval.external_system if req.approval else None,
        external_id=req.approval.external_id if req.approval else None,
        supersedes_id=superseded.id if superseded else None,
        provenance=req.provenance,
        approved_at=utcnow() if official else None,
        created_by=actor.user_id or None,
    )


def _record_deposit(
    session: Session,
    actor: Actor,
    doc: Document,
    content: _Content,
    folder: Folder,
    case_id: str | None,
) -> None:
    """The first version row and the ``document.deposited`` audit event."""
    session.add(
        DocumentVersion(
            document_id=doc.id or 0,
            version=1,
            sha256=doc.sha256,
            size=doc.size,
            filename=content.filename,
            mime_type=content.mime,
            created_by=actor.user_id or None,
        )
    )
    details: dict[str, Any] = {
        "sha256": doc.sha256,
        "size": doc.size,
        "filename": content.filename,
        "folder_id": folder.id,
        "mime_type": content.mime,
        "is_copy": doc.original_id is not None,
        "original_id": doc.original_id,
    }
    if content.declared and not types_agree(content.declared, content.mime):
        details["declared_type"] = content.declared
        details["type_mismatch"] = True
    audit.record(
        session,
        actor=actor.login,
        action=AuditAction.DOCUMENT_DEPOSITED,
        target_type="document",
        target_id=doc.id or 0,
        case_id=case_id,
        details=details,
    )


def _replay_external(
    session: Session, actor: Actor, existing: Document, staged: StagedBlob
) -> DepositOutcome:
    if existing.sha256 != staged.sha256:
        raise Conflict(
            "external_id_conflict",
            "同じ外部IDで内容の異なる文書が既に登録されています。",
            {"document_id": existing.id if _readable(session, actor, existing) else None},
        )
    return DepositOutcome(
        existing, created=False, is_copy=existing.original_id is not None, blob_stored=False
    )
