"""Documents: deposit, originals and copies (原本・写し), approval (決裁), versions, corrections.

The deposit flow (:func:`deposit`) spans storage, records and search:

1. the upload was streamed once into a :class:`~storage.base.StagedBlob` (hashed, fsynced);
2. the request is validated (folder, permission, type, size, idempotency) — nothing stored yet;
3. the blob is written to the store write-once and durably (``put_staged``);
4. the rows (blob, document, version, approval, audit events, index outbox) are added to the
   caller's transaction, which commits them together.

A crash after 3 and before the commit leaves an unreferenced blob, which ``genpon gc`` collects
after a grace period; no row ever points to a blob that is not durably stored.

Exactly one live document per content hash is the original: a partial unique index enforces it
and concurrent depositors that lose the race become copies of the winner. When official content
arrives whose current original is only a working document, the official one becomes the
original and every other placement points to it.
"""

from __future__ import annotations

import hashlib
import json
import unicodedata
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import PurePosixPath, PureWindowsPath
from typing import Any, BinaryIO

from genpon.core.clock import local_date, utcnow
from genpon.core.errors import Conflict, GenponError, InvalidInput, NotFound, UnsupportedType
from genpon.records import audit
from genpon.records.access import (
    Actor,
    can_read_folder,
    require_external_system,
    require_read,
    require_write,
)
from genpon.records.cases import get_case
from genpon.records.folders import case_root_folder, folder_path, get_folder
from genpon.records.lifecycle import case_scheduler
from genpon.records.models import (
    Approval,
    Blob,
    Case,
    Document,
    DocumentVersion,
    Folder,
    IdempotencyKey,
    IndexOutbox,
)
from genpon.records.sniff import sniff, type_allowed, types_agree
from genpon.storage.base import BlobStore, StagedBlob
from sqlalchemy import insert as sa_insert
from sqlalchemy import update as sa_update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

SHA256_HEX = frozenset("0123456789abcdef")


@dataclass
class ApprovalIn:
    """決裁 data as a depositing system knows it."""

    approved_on: date
    approvers: list[str] = field(default_factory=list)
    external_system: str | None = None
    external_id: str | None = None

    @classmethod
    def parse(cls, raw: str | dict[str, Any] | None) -> ApprovalIn | None:
        if raw in (None, "", {}):
            return None
        try:
            data = json.loads(raw) if isinstance(raw, str) else dict(raw)  # type: ignore[arg-type]
        except (json.JSONDecodeError, TypeError, ValueError):
            raise InvalidInput(
                "invalid_json", "approval は JSON オブジェクトで指定してください。"
            ) from None
        if not isinstance(data, dict):
            raise InvalidInput("invalid_json", "approval は JSON オブジェクトで指定してください。")
        unknown = set(data) - {"approved_on", "approvers", "external_system", "external_id"}
        if unknown:
            raise InvalidInput(
                "invalid_approval", f"approval に不明な項目があります: {', '.join(sorted(unknown))}"
            )
        try:
            approved_on = date.fromisoformat(str(data.get("approved_on", "")))
        except ValueError:
            raise InvalidInput(
                "invalid_approval", "approved_on（決裁日）は YYYY-MM-DD で指定してください。"
            ) from None
        approvers = data.get("approvers") or []
        if not isinstance(approvers, list) or not all(
            isinstance(a, str) and a.strip() for a in approvers
        ):
            raise InvalidInput("invalid_approval", "approvers（決裁者）は文字列のリストです。")
        ext_sys, ext_id = data.get("external_system"), data.get("external_id")
        if (ext_sys is None) != (ext_id is None):
            raise InvalidInput(
                "invalid_approval", "external_system と external_id は両方指定してください。"
            )
        for v in (ext_sys, ext_id):
            if v is not None and (not isinstance(v, str) or not v.strip() or len(v) > 200):
                raise InvalidInput("invalid_approval", "external_system / external_id が不正です。")
        return cls(
            approved_on=approved_on,
            approvers=[a.strip() for a in approvers],
            external_system=ext_sys,
            external_id=ext_id,
        )


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


@dataclass
class DocumentView:
    document: Document
    folder: Folder
    folder_path: str
    case: Case | None
    is_original: bool
    original: Document | None  # None when this is the original
    original_visible: bool
    original_folder_path: str | None
    approval: Approval | None
    copy_count: int


def clean_filename(name: str) -> str:
    """NFC, no directories (either slash), no control characters, at most 255 characters."""
    name = unicodedata.normalize("NFC", name or "")
    name = PureWindowsPath(PurePosixPath(name.replace("\\", "/")).name).name
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C").strip().strip(".")
    if not name:
        name = "file"
    if len(name) > 255:
        stem, dot, ext = name.rpartition(".")
        name = (stem[: 255 - len(ext) - 1] + dot + ext) if dot and len(ext) < 20 else name[:255]
    return name


def _title_from(filename: str, title: str | None) -> str:
    t = unicodedata.normalize("NFC", (title or "").strip())
    if not t:
        t = filename.rsplit(".", 1)[0] if "." in filename else filename
    if len(t) > 500:
        raise InvalidInput("title_too_long", "件名は500文字以内です。")
    return t


def valid_sha256(value: str) -> bool:
    return len(value) == 64 and set(value) <= SHA256_HEX


def _insert_blob(session: Session, staged: StagedBlob, mime: str) -> None:
    dialect = session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    session.execute(
        insert(Blob)
        .values(
            sha256=staged.sha256,
            size=staged.size,
            mime_type=mime,
            state="stored",
            stored_at=utcnow(),
        )
        .on_conflict_do_nothing(index_elements=["sha256"])
    )
    blob = session.get(Blob, staged.sha256)
    if blob is not None and blob.state != "stored":  # content destroyed earlier, deposited again
        blob.state, blob.deleted_at = "stored", None
        session.add(blob)


def current_original(session: Session, sha256: str) -> Document | None:
    return session.exec(
        select(Document).where(
            Document.sha256 == sha256, Document.state == "live", col(Document.original_id).is_(None)
        )
    ).first()


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
    if req.approval and case is None:
        raise InvalidInput("approval_needs_case", "決裁済み文書は案件フォルダに登録してください。")

    # Idempotent replays: the Idempotency-Key header, then the external system's own ID.
    fingerprint = _fingerprint(staged, req, folder.id or 0)
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
    if req.approval and req.approval.external_system:
        existing = _by_external_ref(
            session, req.approval.external_system, req.approval.external_id or ""
        )
        if existing is not None:
            return _replay_external(session, actor, existing, staged)

    superseded: Document | None = None
    if req.supersedes_id is not None:
        superseded = session.get(Document, req.supersedes_id)
        if superseded is None or not _readable(session, actor, superseded):
            raise NotFound("document_not_found", "訂正元の文書が見つかりません。")
        if superseded.status != "official":
            raise Conflict(
                "correction_of_working",
                "作業中の文書は新しい版を登録してください（訂正は決裁済み文書のみ）。",
            )

    # Durable blob first, then rows in this transaction.
    stored = store.put_staged(staged)
    _insert_blob(session, staged, mime)
    official = req.approval is not None
    doc = Document(
        folder_id=folder.id or 0,
        case_pk=folder.case_pk,
        organization_id=folder.organization_id,
        document_class_id=case.document_class_id if case else None,
        title=title,
        filename=filename,
        sha256=staged.sha256,
        size=staged.size,
        mime_type=mime,
        declared_type=declared,
        status="official" if official else "working",
        doc_date=req.doc_date or local_date(utcnow(), timezone),
        external_system=req.approval.external_system if req.approval else None,
        external_id=req.approval.external_id if req.approval else None,
        supersedes_id=superseded.id if superseded else None,
        provenance=req.provenance,
        approved_at=utcnow() if official else None,
        created_by=actor.user_id or None,
    )
    try:
        _place(session, doc)
    except IntegrityError:
        # Lost a race on the external reference (the original race is handled in _place).
        if req.approval and req.approval.external_system:
            existing = _by_external_ref(
                session, req.approval.external_system, req.approval.external_id or ""
            )
            if existing is not None:
                return _replay_external(session, actor, existing, staged)
        raise
    session.add(
        DocumentVersion(
            document_id=doc.id or 0,
            version=1,
            sha256=doc.sha256,
            size=doc.size,
            filename=filename,
            mime_type=mime,
            created_by=actor.user_id or None,
        )
    )
    case_id = case.case_id if case else None
    details: dict[str, Any] = {
        "sha256": doc.sha256,
        "size": doc.size,
        "filename": filename,
        "folder_id": folder.id,
        "mime_type": mime,
        "is_copy": doc.original_id is not None,
        "original_id": doc.original_id,
    }
    if declared and not types_agree(declared, mime):
        details["declared_type"] = declared
        details["type_mismatch"] = True
    audit.record(
        session,
        actor=actor.login,
        action="document.deposited",
        target_type="document",
        target_id=doc.id or 0,
        case_id=case_id,
        details=details,
    )
    if req.approval is not None:
        _record_approval(session, actor, doc, req.approval, case_id)
    if superseded is not None:
        audit.record(
            session,
            actor=actor.login,
            action="document.corrected",
            target_type="document",
            target_id=superseded.id or 0,
            case_id=case_id,
            details={"correction_id": doc.id},
        )
    if req.idempotency_key:
        session.add(
            IdempotencyKey(
                user_id=actor.user_id,
                key=req.idempotency_key,
                fingerprint=fingerprint,
                document_id=doc.id or 0,
            )
        )
    enqueue_index(session, doc.sha256, "deposit")
    session.flush()
    return DepositOutcome(
        doc, created=True, is_copy=doc.original_id is not None, blob_stored=stored
    )


def _by_external_ref(session: Session, system: str, ext_id: str) -> Document | None:
    return session.exec(
        select(Document).where(Document.external_system == system, Document.external_id == ext_id)
    ).first()


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


def _place(session: Session, doc: Document) -> None:
    """Insert ``doc`` as the original of its content, or as a copy when one exists.

    The partial unique index decides races: the loser's savepoint rolls back and it becomes a copy.
    Official content takes over originality from a working original.
    """
    for _attempt in range(3):
        original = current_original(session, doc.sha256)
        if original is not None:
            doc.original_id = original.id
            session.add(doc)
            session.flush()
            if doc.status == "official" and original.status != "official":
                promote_to_original(session, doc)
            return
        doc.original_id = None
        try:
            with session.begin_nested():
                session.add(doc)
                session.flush()
            return
        except IntegrityError:
            if doc in session:
                session.expunge(doc)
            doc.id = None
            if current_original(session, doc.sha256) is None:
                raise
    raise Conflict(
        "deposit_contention", "同時登録が競合しました。もう一度お試しください。"
    )  # pragma: no cover


def promote_to_original(session: Session, doc: Document) -> None:
    """Make ``doc`` the original of its content; the former original and all copies point to it."""
    old = current_original(session, doc.sha256)
    if old is None or old.id == doc.id:
        doc.original_id = None
        session.add(doc)
        session.flush()
        return
    old.original_id = doc.id
    session.add(old)
    session.flush()
    doc.original_id = None
    session.add(doc)
    session.flush()
    for other in session.exec(select(Document).where(Document.original_id == old.id)).all():
        other.original_id = doc.id
        session.add(other)
    session.flush()
    audit.record(
        session,
        actor="system",
        action="document.original_moved",
        target_type="document",
        target_id=doc.id or 0,
        details={"sha256": doc.sha256, "from": old.id, "to": doc.id},
    )


def hand_over_original(session: Session, leaving: Document) -> Document | None:
    """``leaving`` stops being a live placement of its content (new version, disposal):
    the oldest remaining live copy (official first) becomes the original."""
    if leaving.original_id is not None:
        return None
    copies = list(
        session.exec(
            select(Document).where(
                Document.original_id == leaving.id,
                Document.state == "live",
                Document.sha256 == leaving.sha256,
            )
        ).all()
    )
    if not copies:
        return None
    successor = sorted(copies, key=lambda d: (d.status != "official", d.id))[0]
    leaving.original_id = successor.id  # leaving no longer counts as original
    session.add(leaving)
    session.flush()
    successor.original_id = None
    session.add(successor)
    session.flush()
    for other in copies:
        if other.id != successor.id:
            other.original_id = successor.id
            session.add(other)
    session.flush()
    audit.record(
        session,
        actor="system",
        action="document.original_moved",
        target_type="document",
        target_id=successor.id or 0,
        details={"sha256": successor.sha256, "from": leaving.id, "to": successor.id},
    )
    return successor


def _record_approval(
    session: Session, actor: Actor, doc: Document, approval: ApprovalIn, case_id: str | None
) -> None:
    session.add(
        Approval(
            document_id=doc.id or 0,
            approved_on=approval.approved_on,
            approvers=approval.approvers,
            external_system=approval.external_system,
            external_id=approval.external_id,
            recorded_by=actor.user_id or None,
        )
    )
    audit.record(
        session,
        actor=actor.login,
        action="document.approved",
        target_type="document",
        target_id=doc.id or 0,
        case_id=case_id,
        details={
            "approved_on": approval.approved_on.isoformat(),
            "approvers": approval.approvers,
            "external_system": approval.external_system,
            "external_id": approval.external_id,
        },
    )


def enqueue_index(session: Session, sha256: str, reason: str) -> None:
    session.add(IndexOutbox(sha256=sha256, reason=reason))


def _readable(session: Session, actor: Actor, doc: Document) -> bool:
    if actor.reads_everything:
        return True
    folder = session.get(Folder, doc.folder_id)
    if folder is None:
        return False
    case = session.get(Case, folder.case_pk) if folder.case_pk else None
    return can_read_folder(actor, folder, case)


def get_document(session: Session, actor: Actor, document_id: int) -> Document:
    doc = session.get(Document, document_id)
    if doc is None or not _readable(session, actor, doc):
        raise NotFound("document_not_found", "文書が見つかりません。", {"document_id": document_id})
    return doc


def _require_doc_write(session: Session, actor: Actor, doc: Document) -> tuple[Folder, Case | None]:
    folder = session.get(Folder, doc.folder_id)
    assert folder is not None
    case = session.get(Case, folder.case_pk) if folder.case_pk else None
    require_write(actor, folder, case)
    return folder, case


def _require_live(doc: Document) -> None:
    if doc.state != "live":
        raise Conflict(
            "document_not_live", "この文書は廃棄または移管済みです。", {"state": doc.state}
        )


def view(session: Session, actor: Actor, document_id: int) -> DocumentView:
    doc = get_document(session, actor, document_id)
    folder = session.get(Folder, doc.folder_id)
    assert folder is not None
    case = session.get(Case, folder.case_pk) if folder.case_pk else None
    original = session.get(Document, doc.original_id) if doc.original_id else None
    original_visible = original is not None and _readable(session, actor, original)
    orig_path = None
    if original is not None and original_visible:
        of = session.get(Folder, original.folder_id)
        orig_path = folder_path(session, of) if of else None
    approval = session.exec(select(Approval).where(Approval.document_id == doc.id)).first()
    root_id = doc.original_id or doc.id
    copy_count = len(
        session.exec(
            select(Document.id).where(Document.original_id == root_id, Document.state == "live")
        ).all()
    )
    return DocumentView(
        document=doc,
        folder=folder,
        folder_path=folder_path(session, folder),
        case=case,
        is_original=doc.original_id is None and doc.state == "live",
        original=original,
        original_visible=original_visible,
        original_folder_path=orig_path,
        approval=approval,
        copy_count=copy_count,
    )


@dataclass
class HashHolding:
    sha256: str
    original: Document | None
    original_visible: bool
    placements: list[tuple[Document, str]]  # readable documents with their folder paths


def by_hash(session: Session, actor: Actor, sha256: str) -> HashHolding:
    """Who holds this content: the original and every copy the caller may see."""
    sha256 = sha256.lower()
    if not valid_sha256(sha256):
        raise InvalidInput("invalid_sha256", "SHA-256 は64桁の16進数です。")
    docs = session.exec(
        select(Document)
        .where(Document.sha256 == sha256, Document.state == "live")
        .order_by(col(Document.id))
    ).all()
    readable = [d for d in docs if _readable(session, actor, d)]
    if not readable:
        raise NotFound(
            "content_not_held", "この内容の文書は保管されていません。", {"sha256": sha256}
        )
    original = next((d for d in docs if d.original_id is None), None)
    placements = []
    for d in readable:
        f = session.get(Folder, d.folder_id)
        placements.append((d, folder_path(session, f) if f else ""))
    return HashHolding(
        sha256=sha256,
        original=original,
        original_visible=original is not None and original in readable,
        placements=placements,
    )


def copy_to_folder(
    session: Session, actor: Actor, document_id: int, folder_id: int, title: str | None = None
) -> Document:
    """写しを作る: a new placement of the same content, pointing to the original. No new blob."""
    source = get_document(session, actor, document_id)
    _require_live(source)
    folder, case = get_folder(session, actor, folder_id)
    require_write(actor, folder, case)
    original = current_original(session, source.sha256)
    assert original is not None
    doc = Document(
        folder_id=folder.id or 0,
        case_pk=folder.case_pk,
        organization_id=folder.organization_id,
        document_class_id=case.document_class_id if case else None,
        title=_title_from(source.filename, title or source.title),
        filename=source.filename,
        sha256=source.sha256,
        size=source.size,
        mime_type=source.mime_type,
        status="working",
        original_id=original.id,
        doc_date=source.doc_date,
        created_by=actor.user_id or None,
    )
    session.add(doc)
    session.flush()
    session.add(
        DocumentVersion(
            document_id=doc.id or 0,
            version=1,
            sha256=doc.sha256,
            size=doc.size,
            filename=doc.filename,
            mime_type=doc.mime_type,
            created_by=actor.user_id or None,
        )
    )
    target_case = case.case_id if case else None
    audit.record(
        session,
        actor=actor.login,
        action="document.copied",
        target_type="document",
        target_id=doc.id or 0,
        case_id=target_case,
        details={
            "source_id": source.id,
            "original_id": original.id,
            "folder_id": folder.id,
            "sha256": doc.sha256,
        },
    )
    src_folder = session.get(Folder, source.folder_id)
    src_case = session.get(Case, src_folder.case_pk) if src_folder and src_folder.case_pk else None
    if src_case is not None and src_case.case_id != target_case:
        audit.record(
            session,
            actor=actor.login,
            action="document.copy_made",
            target_type="document",
            target_id=source.id or 0,
            case_id=src_case.case_id,
            details={"copy_id": doc.id, "folder_id": folder.id},
        )
    enqueue_index(session, doc.sha256, "copy")
    return doc


def approve(
    session: Session, actor: Actor, document_id: int, approval: ApprovalIn, *, timezone: str
) -> Document:
    """決裁: declare a working document official; its content is frozen from now on."""
    doc = get_document(session, actor, document_id)
    _require_live(doc)
    _folder, case = _require_doc_write(session, actor, doc)
    if doc.status == "official":
        raise Conflict("already_official", "この文書は既に決裁済みです。")
    if case is None:
        raise InvalidInput(
            "approval_needs_case",
            "決裁できるのは案件フォルダの文書です。案件フォルダに写しを作ってから決裁してください。",
        )
    require_external_system(actor, approval.external_system)
    if approval.external_system:
        other = _by_external_ref(session, approval.external_system, approval.external_id or "")
        if other is not None and other.id != doc.id:
            raise Conflict("external_id_conflict", "同じ外部IDの文書が既に登録されています。")
        doc.external_system, doc.external_id = approval.external_system, approval.external_id
    doc.status = "official"
    doc.approved_at = utcnow()
    doc.document_class_id = case.document_class_id
    doc.updated_at = utcnow()
    session.add(doc)
    session.flush()
    _record_approval(session, actor, doc, approval, case.case_id)
    if doc.original_id is not None:
        original = session.get(Document, doc.original_id)
        if original is not None and original.status != "official":
            promote_to_original(session, doc)
    if case.status == "closed":
        case_scheduler().case_closed(session, case, timezone=timezone)
    enqueue_index(session, doc.sha256, "approve")
    return doc


def add_version(
    session: Session,
    store: BlobStore,
    actor: Actor,
    document_id: int,
    staged: StagedBlob,
    filename: str | None,
    *,
    allowed_types: tuple[str, ...],
) -> Document:
    """New version (版) of a working document. Official content never changes."""
    put = False
    try:
        doc = get_document(session, actor, document_id)
        _require_live(doc)
        _folder, case = _require_doc_write(session, actor, doc)
        if doc.status == "official":
            raise Conflict(
                "document_official_immutable",
                "決裁済み文書の内容は変更できません。訂正は新しい文書として登録してください（corrections）。",
                {"document_id": doc.id},
            )
        if staged.size == 0:
            raise InvalidInput("empty_file", "空のファイルは登録できません。")
        mime = sniff(staged.path, staged.head)
        if not type_allowed(mime, allowed_types):
            raise UnsupportedType(
                "type_not_allowed",
                f"この種類のファイルは登録できません: {mime}",
                {"detected_type": mime},
            )
        if staged.sha256 == doc.sha256:
            raise Conflict("version_unchanged", "内容が現在の版と同じです。")
        store.put_staged(staged)
        put = True
        _insert_blob(session, staged, mime)
        old_sha = doc.sha256
        hand_over_original(session, doc)
        doc.sha256, doc.size, doc.mime_type = staged.sha256, staged.size, mime
        doc.filename = clean_filename(filename) if filename else doc.filename
        doc.version += 1
        doc.updated_at = utcnow()
        original = current_original(session, doc.sha256)
        doc.original_id = None
        if original is not None and original.id != doc.id:
            doc.original_id = original.id
        session.add(doc)
        try:
            with session.begin_nested():
                session.flush()
        except IntegrityError:
            original = current_original(session, doc.sha256)
            doc.original_id = original.id if original else None
            session.add(doc)
            session.flush()
        session.add(
            DocumentVersion(
                document_id=doc.id or 0,
                version=doc.version,
                sha256=doc.sha256,
                size=doc.size,
                filename=doc.filename,
                mime_type=mime,
                created_by=actor.user_id or None,
            )
        )
        audit.record(
            session,
            actor=actor.login,
            action="document.versioned",
            target_type="document",
            target_id=doc.id or 0,
            case_id=case.case_id if case else None,
            details={"version": doc.version, "sha256": doc.sha256, "previous_sha256": old_sha},
        )
        enqueue_index(session, old_sha, "version")
        enqueue_index(session, doc.sha256, "version")
        return doc
    finally:
        if not put:
            store.discard(staged)


def versions(session: Session, actor: Actor, document_id: int) -> list[DocumentVersion]:
    doc = get_document(session, actor, document_id)
    return list(
        session.exec(
            select(DocumentVersion)
            .where(DocumentVersion.document_id == doc.id)
            .order_by(col(DocumentVersion.version))
        ).all()
    )


def open_content(
    session: Session, store: BlobStore, actor: Actor, document_id: int, version: int | None = None
) -> tuple[Document, str, BinaryIO]:
    """Open a document's content for reading; the read is an audit event."""
    doc = get_document(session, actor, document_id)
    _require_live(doc)
    sha = doc.sha256
    if version is not None and version != doc.version:
        v = session.exec(
            select(DocumentVersion).where(
                DocumentVersion.document_id == doc.id, DocumentVersion.version == version
            )
        ).first()
        if v is None:
            raise NotFound("version_not_found", "指定の版が見つかりません。")
        sha = v.sha256
    try:
        stream = store.open(sha)
    except FileNotFoundError:
        raise NotFound(
            "content_missing",
            "文書の内容が保管領域に見つかりません（監査担当に連絡してください）。",
            {"sha256": sha},
        ) from None
    case = session.get(Case, doc.case_pk) if doc.case_pk else None
    audit.record(
        session,
        actor=actor.login,
        action="document.read",
        target_type="document",
        target_id=doc.id or 0,
        case_id=case.case_id if case else None,
        details={"sha256": sha, "version": version or doc.version},
    )
    return doc, sha, stream


def list_folder_documents(
    session: Session, actor: Actor, folder_id: int, *, offset: int = 0, limit: int = 50
) -> tuple[list[Document], int]:
    from sqlalchemy import func

    folder, case = get_folder(session, actor, folder_id)
    require_read(actor, folder, case)
    if offset < 0 or not 1 <= limit <= 500:
        raise InvalidInput("invalid_paging", "offset は0以上、limit は1〜500です。")
    base = select(Document).where(Document.folder_id == folder.id, Document.state == "live")
    count = session.exec(select(func.count()).select_from(base.subquery())).one()
    items = session.exec(base.order_by(col(Document.id)).offset(offset).limit(limit)).all()
    return list(items), count


# --- bulk deposit (legacy import) ------------------------------------------------------------


@dataclass
class BatchItem:
    """One placement for :func:`deposit_batch`.

    With ``staged`` the content comes with the item (a deposit, like :func:`deposit`); without
    it the item is a copy (写し) of the content's live original, which must exist already or be
    deposited earlier in the same batch."""

    sha256: str
    size: int
    mime_type: str  # as already sniffed by the caller
    folder_id: int
    filename: str
    title: str | None = None
    doc_date: date | None = None
    provenance: dict[str, Any] | None = None
    staged: StagedBlob | None = None


@dataclass
class Placed:
    """A document row written by :func:`deposit_batch` (the columns its callers read; the rows
    are inserted with Core statements, not built as ORM objects, for speed)."""

    id: int
    sha256: str
    size: int
    filename: str
    mime_type: str
    folder_id: int
    case_pk: int | None
    original_id: int | None
    doc_date: date


@dataclass
class BatchOutcome:
    item: BatchItem
    document: Placed | None = None  # None: refused, see ``error``
    error: GenponError | None = None
    with_content: bool = False  # the item brought its content (a deposit, not a copy)

    @property
    def is_copy(self) -> bool:
        return self.document is not None and self.document.original_id is not None


def deposit_batch(
    session: Session,
    store: BlobStore,
    actor: Actor,
    items: list[BatchItem],
    *,
    allowed_types: tuple[str, ...],
    timezone: str,
) -> list[BatchOutcome]:
    """Deposit many placements in the caller's transaction with a few statements per batch.

    Same invariants as :func:`deposit`: each staged blob is stored durably (``put_staged``)
    before its rows are added; exactly one live original per content (the first staged item of
    a content nobody holds yet; the partial unique index decides races with other writers, the
    losers become copies); copies point to the original; every document gets its version row
    and its audit event (one head lock for the batch) and every content one index outbox row.
    Items are checked one by one: a refused item gets ``error`` and adds nothing, the others
    go on. Approvals, corrections and idempotency keys are not supported here."""
    outcomes = [BatchOutcome(it) for it in items]
    if not items:
        return outcomes
    try:
        folders = {
            f.id: f
            for f in session.exec(
                select(Folder).where(col(Folder.id).in_({it.folder_id for it in items}))
            ).all()
        }
        case_pks = {f.case_pk for f in folders.values() if f.case_pk}
        cases = (
            {c.id: c for c in session.exec(select(Case).where(col(Case.id).in_(case_pks))).all()}
            if case_pks
            else {}
        )
        ok: list[BatchOutcome] = []
        for out in outcomes:
            it = out.item
            try:
                folder = folders.get(it.folder_id)
                case = cases.get(folder.case_pk) if folder and folder.case_pk else None
                if folder is None or not can_read_folder(actor, folder, case):
                    raise NotFound("folder_not_found", "フォルダが見つかりません。")
                require_write(actor, folder, case)
                if it.size <= 0:
                    raise InvalidInput("empty_file", "空のファイルは登録できません。")
                if not type_allowed(it.mime_type, allowed_types):
                    raise UnsupportedType(
                        "type_not_allowed",
                        f"この種類のファイルは登録できません: {it.mime_type}",
                        {"detected_type": it.mime_type},
                    )
                if it.staged is not None and (
                    it.staged.sha256 != it.sha256 or it.staged.size != it.size
                ):
                    raise InvalidInput("content_mismatch", "内容のハッシュが一致しません。")
                it.filename = clean_filename(it.filename)
                it.title = _title_from(it.filename, it.title)
            except GenponError as exc:
                out.error = exc
                continue
            ok.append(out)

        # Durable blobs first (already stored blobs only lose their staged name), then rows.
        new_blobs: dict[str, BatchItem] = {}
        for out in ok:
            it = out.item
            if it.staged is not None:
                store.put_staged(it.staged)
                it.staged = None
                out.with_content = True
                new_blobs.setdefault(it.sha256, it)
        if new_blobs:
            _insert_blobs(session, list(new_blobs.values()))
        shas = {out.item.sha256 for out in ok}
        _place_batch(session, ok, new_blobs, shas, folders, cases, actor, timezone)
        placed = [out for out in ok if out.document is not None]
        _batch_rows(session, actor, placed, folders, cases)
        session.flush()
        return outcomes
    finally:
        for it in items:
            if it.staged is not None:
                store.discard(it.staged)  # refused items: their staged file goes


def _insert_blobs(session: Session, its: list[BatchItem]) -> None:
    dialect = session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    now = utcnow()
    session.execute(
        insert(Blob.__table__).on_conflict_do_nothing(index_elements=["sha256"]),  # type: ignore[attr-defined]
        [
            {
                "sha256": it.sha256,
                "size": it.size,
                "mime_type": it.mime_type,
                "state": "stored",
                "stored_at": now,
            }
            for it in its
        ],
    )
    # Contents destroyed earlier and deposited again are stored once more.
    session.execute(
        sa_update(Blob.__table__)  # type: ignore[attr-defined]
        .where(Blob.__table__.c.sha256.in_([it.sha256 for it in its]))  # type: ignore[attr-defined]
        .where(Blob.__table__.c.state != "stored")  # type: ignore[attr-defined]
        .values(state="stored", deleted_at=None)
    )


def current_originals(session: Session, shas: set[str]) -> dict[str, Document]:
    found: dict[str, Document] = {}
    items = sorted(shas)
    for i in range(0, len(items), 500):
        for d in session.exec(
            select(Document).where(
                col(Document.sha256).in_(items[i : i + 500]),
                Document.state == "live",
                col(Document.original_id).is_(None),
            )
        ).all():
            found[d.sha256] = d
    return found


def _new_row(
    it: BatchItem,
    folder: Folder,
    case: Case | None,
    actor: Actor,
    doc_date: date,
    original_id: int | None,
    now: datetime,
) -> dict[str, Any]:
    """The ``document`` row of a batch placement (the same values :func:`deposit` sets)."""
    return {
        "folder_id": folder.id or 0,
        "case_pk": folder.case_pk,
        "organization_id": folder.organization_id,
        "document_class_id": case.document_class_id if case else None,
        "title": it.title or it.filename,
        "filename": it.filename,
        "sha256": it.sha256,
        "size": it.size,
        "mime_type": it.mime_type,
        "status": "working",
        "state": "live",
        "original_id": original_id,
        "version": 1,
        "doc_date": doc_date,
        "provenance": it.provenance,
        "created_by": actor.user_id or None,
        "created_at": now,
        "updated_at": now,
    }


def _insert_rows(session: Session, outs: list[BatchOutcome], rows: list[dict[str, Any]]) -> None:
    """Insert ``rows`` (one per outcome, same order) in one statement; each outcome gets its
    :class:`Placed` with the new id."""
    if not rows:
        return
    table = Document.__table__  # type: ignore[attr-defined]
    ids = (
        session.execute(sa_insert(table).returning(table.c.id, sort_by_parameter_order=True), rows)
        .scalars()
        .all()
    )
    for out, row, new_id in zip(outs, rows, ids, strict=True):
        out.document = Placed(
            id=new_id,
            sha256=row["sha256"],
            size=row["size"],
            filename=row["filename"],
            mime_type=row["mime_type"],
            folder_id=row["folder_id"],
            case_pk=row["case_pk"],
            original_id=row["original_id"],
            doc_date=row["doc_date"],
        )


def _place_batch(
    session: Session,
    ok: list[BatchOutcome],
    new_blobs: dict[str, BatchItem],
    shas: set[str],
    folders: dict[int | None, Folder],
    cases: dict[int | None, Case],
    actor: Actor,
    timezone: str,
) -> None:
    """Originals of new contents in one statement (in a savepoint: a lost race re-reads the
    originals and retries), then every other placement as a copy in a second one."""
    now = utcnow()
    today = local_date(now, timezone)
    originals: dict[str, Document | Placed] = {}
    firsts: dict[str, BatchOutcome] = {}
    for _attempt in range(3):
        originals = dict(current_originals(session, shas))
        firsts = {}
        for out in ok:
            sha = out.item.sha256
            if sha not in originals and sha in new_blobs and sha not in firsts:
                firsts[sha] = out
        rows = []
        for out in firsts.values():
            f = folders[out.item.folder_id]
            rows.append(
                _new_row(
                    out.item, f, cases.get(f.case_pk), actor, out.item.doc_date or today, None, now
                )
            )
        try:
            with session.begin_nested():
                _insert_rows(session, list(firsts.values()), rows)
            break
        except IntegrityError:
            for out in firsts.values():
                out.document = None
            continue
    else:  # pragma: no cover
        raise Conflict("deposit_contention", "同時登録が競合しました。もう一度お試しください。")
    for sha, out in firsts.items():
        assert out.document is not None
        originals[sha] = out.document
    copies: list[BatchOutcome] = []
    rows = []
    for out in ok:
        if out.document is not None:
            continue
        it = out.item
        original = originals.get(it.sha256)
        if original is None:
            out.error = NotFound(
                "content_not_held", "この内容の文書は保管されていません。", {"sha256": it.sha256}
            )
            continue
        f = folders[it.folder_id]
        rows.append(
            _new_row(
                it,
                f,
                cases.get(f.case_pk),
                actor,
                it.doc_date or original.doc_date,
                original.id,
                now,
            )
        )
        copies.append(out)
    _insert_rows(session, copies, rows)


def _batch_rows(
    session: Session,
    actor: Actor,
    placed: list[BatchOutcome],
    folders: dict[int | None, Folder],
    cases: dict[int | None, Case],
) -> None:
    """Version rows, audit events (as :func:`deposit` and :func:`copy_to_folder` write them)
    and one index outbox row per content, each kind with one executemany."""
    if not placed:
        return
    now = utcnow()
    originals: dict[int | None, Document | Placed] = {
        out.document.id: out.document
        for out in placed
        if out.document is not None and out.document.original_id is None
    }
    missing = {
        out.document.original_id
        for out in placed
        if out.document is not None
        and out.document.original_id is not None
        and out.document.original_id not in originals
    }
    if missing:
        for d in session.exec(select(Document).where(col(Document.id).in_(missing))).all():
            originals[d.id] = d
    src_case_pks = {d.case_pk for d in originals.values() if d.case_pk} - set(cases)
    if src_case_pks:
        for c in session.exec(select(Case).where(col(Case.id).in_(src_case_pks))).all():
            cases[c.id] = c
    versions: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    for out in placed:
        doc = out.document
        assert doc is not None
        versions.append(
            {
                "document_id": doc.id,
                "version": 1,
                "sha256": doc.sha256,
                "size": doc.size,
                "filename": doc.filename,
                "mime_type": doc.mime_type,
                "created_by": actor.user_id or None,
                "created_at": now,
            }
        )
        case = cases.get(doc.case_pk) if doc.case_pk else None
        case_id = case.case_id if case else None
        if out.with_content:
            events.append(
                {
                    "action": "document.deposited",
                    "target_type": "document",
                    "target_id": doc.id or 0,
                    "case_id": case_id,
                    "details": {
                        "sha256": doc.sha256,
                        "size": doc.size,
                        "filename": doc.filename,
                        "folder_id": doc.folder_id,
                        "mime_type": doc.mime_type,
                        "is_copy": doc.original_id is not None,
                        "original_id": doc.original_id,
                    },
                }
            )
            continue
        original = originals[doc.original_id]
        events.append(
            {
                "action": "document.copied",
                "target_type": "document",
                "target_id": doc.id or 0,
                "case_id": case_id,
                "details": {
                    "source_id": original.id,
                    "original_id": original.id,
                    "folder_id": doc.folder_id,
                    "sha256": doc.sha256,
                },
            }
        )
        src_case = cases.get(original.case_pk) if original.case_pk else None
        if src_case is not None and src_case.case_id != case_id:
            events.append(
                {
                    "action": "document.copy_made",
                    "target_type": "document",
                    "target_id": original.id or 0,
                    "case_id": src_case.case_id,
                    "details": {"copy_id": doc.id, "folder_id": doc.folder_id},
                }
            )
    session.execute(sa_insert(DocumentVersion.__table__), versions)  # type: ignore[attr-defined]
    audit.record_many(session, actor=actor.login, events=events)
    reasons: dict[str, str] = {}
    for out in placed:
        assert out.document is not None
        reasons.setdefault(out.document.sha256, "deposit" if out.with_content else "copy")
    session.execute(
        sa_insert(IndexOutbox.__table__),  # type: ignore[attr-defined]
        [{"sha256": sha, "reason": r, "created_at": now} for sha, r in reasons.items()],
    )
