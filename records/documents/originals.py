"""Originals and copies (原本・写し): exactly one live document per content is the original.

A partial unique index enforces it; concurrent depositors that lose the race become copies of
the winner (:func:`_place`). Official content takes over originality from a working original
(:func:`promote_to_original`); when the original leaves (new version, disposal) its oldest live
copy takes over (:func:`hand_over_original`). :func:`copy_to_folder` makes a copy (写し)."""

from __future__ import annotations

from genpon.core.errors import Conflict
from genpon.records import audit
from genpon.records.access import Actor, require_write
from genpon.records.audit import AuditAction
from genpon.records.documents.common import (
    _require_live,
    _title_from,
    current_original,
    enqueue_index,
    get_document,
)
from genpon.records.folders import get_folder
from genpon.records.models import (
    Case,
    Document,
    DocumentStatus,
    DocumentVersion,
    Folder,
    IndexReason,
)
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select


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
        action=AuditAction.DOCUMENT_ORIGINAL_MOVED,
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
        action=AuditAction.DOCUMENT_ORIGINAL_MOVED,
        target_type="document",
        target_id=successor.id or 0,
        details={"sha256": successor.sha256, "from": leaving.id, "to": successor.id},
    )
    return successor


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
        status=DocumentStatus.WORKING,
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
        action=AuditAction.DOCUMENT_COPIED,
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
            action=AuditAction.DOCUMENT_COPY_MADE,
            target_type="document",
            target_id=source.id or 0,
            case_id=src_case.case_id,
            details={"copy_id": doc.id, "folder_id": folder.id},
        )
    enqueue_index(session, doc.sha256, IndexReason.COPY)
    return doc
