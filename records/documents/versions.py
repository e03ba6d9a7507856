"""Versions (版) and corrections (訂正).

A working document gets new versions in place (:func:`add_version`); official content never
changes: a correction is a new document that supersedes the official one (``supersedes_id`` on
:func:`.deposit.deposit`, checked by :func:`correction_target`)."""

from __future__ import annotations

from genpon.core.clock import utcnow
from genpon.core.errors import Conflict, InvalidInput, NotFound, UnsupportedType
from genpon.records import audit
from genpon.records.access import Actor
from genpon.records.audit import AuditAction
from genpon.records.documents.common import (
    _insert_blob,
    _readable,
    _require_doc_write,
    _require_live,
    clean_filename,
    current_original,
    enqueue_index,
    get_document,
)
from genpon.records.documents.originals import hand_over_original
from genpon.records.models import (
    Document,
    DocumentVersion,
    IndexReason,
)
from genpon.records.sniff import sniff, type_allowed
from genpon.storage.base import BlobStore, StagedBlob
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select


def correction_target(session: Session, actor: Actor, supersedes_id: int | None) -> Document | None:
    """The official document a deposit corrects (None: not a correction)."""
    if supersedes_id is None:
        return None
    superseded = session.get(Document, supersedes_id)
    if superseded is None or not _readable(session, actor, superseded):
        raise NotFound("document_not_found", "訂正元の文書が見つかりません。")
    if superseded.status != "official":
        raise Conflict(
            "correction_of_working",
            "作業中の文書は新しい版を登録してください（訂正は決裁済み文書のみ）。",
        )
    return superseded


def record_correction(
    session: Session, actor: Actor, superseded: Document, correction: Document, case_id: str | None
) -> None:
    audit.record(
        session,
        actor=actor.login,
        action=AuditAction.DOCUMENT_CORRECTED,
        target_type="document",
        target_id=superseded.id or 0,
        case_id=case_id,
        details={"correction_id": correction.id},
    )


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
        mime = _check_new_version(doc, staged, allowed_types)
        store.put_staged(staged)
        put = True
        _insert_blob(session, staged, mime)
        old_sha = doc.sha256
        hand_over_original(session, doc)
        doc.sha256, doc.size, doc.mime_type = staged.sha256, staged.size, mime
        doc.filename = clean_filename(filename) if filename else doc.filename
        doc.version += 1
        doc.updated_at = utcnow()
        _point_to_original(session, doc)
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
            action=AuditAction.DOCUMENT_VERSIONED,
            target_type="document",
            target_id=doc.id or 0,
            case_id=case.case_id if case else None,
            details={"version": doc.version, "sha256": doc.sha256, "previous_sha256": old_sha},
        )
        enqueue_index(session, old_sha, IndexReason.VERSION)
        enqueue_index(session, doc.sha256, IndexReason.VERSION)
        return doc
    finally:
        if not put:
            store.discard(staged)


def _check_new_version(doc: Document, staged: StagedBlob, allowed_types: tuple[str, ...]) -> str:
    """Refuse a new version of official content, an empty or disallowed file, or unchanged
    content; returns the new content's sniffed type."""
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
    return mime


def _point_to_original(session: Session, doc: Document) -> None:
    """``doc`` (with its new content) becomes a copy of that content's original, or the original
    when nobody holds it; a lost race (partial unique index) makes it a copy of the winner."""
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


def versions(session: Session, actor: Actor, document_id: int) -> list[DocumentVersion]:
    doc = get_document(session, actor, document_id)
    return list(
        session.exec(
            select(DocumentVersion)
            .where(DocumentVersion.document_id == doc.id)
            .order_by(col(DocumentVersion.version))
        ).all()
    )
