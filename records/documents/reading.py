"""Reading documents: the detail view, who holds a content, opening a content (an audit event),
and a folder's documents."""

from __future__ import annotations

from dataclasses import dataclass
from typing import BinaryIO

from genpon.core.errors import InvalidInput, NotFound
from genpon.records import audit
from genpon.records.access import Actor, require_read
from genpon.records.audit import AuditAction
from genpon.records.documents.common import (
    _readable,
    _require_live,
    get_document,
    valid_sha256,
)
from genpon.records.documents.deposit import DepositOutcome
from genpon.records.folders import folder_path, get_folder
from genpon.records.models import (
    Approval,
    BlobText,
    Case,
    Document,
    DocumentVersion,
    Folder,
    IndexOutbox,
)
from genpon.storage.base import BlobStore
from sqlmodel import Session, col, select


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
    text: BlobText | None = None  # the content's extracted text (None: not extracted yet)
    index_pending: bool = False  # index work for the content is still queued


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
        text=session.get(BlobText, doc.sha256),
        index_pending=session.exec(
            select(IndexOutbox.id).where(IndexOutbox.sha256 == doc.sha256).limit(1)
        ).first()
        is not None,
    )


def deposited_view(session: Session, actor: Actor, outcome: DepositOutcome) -> DocumentView:
    """The view of a deposit's document, for the deposit's answer: equal to :func:`view`.

    When the deposit created the content's blob row, nothing else referred to the content:
    the document is its original, with no copies and no extracted text yet, and its index work
    was just queued. Everything else is in the session (document, folder, case, the approval
    it recorded), so the view costs no queries but the folder path's parents not yet loaded.
    Any other deposit (a copy, a replay, known content) reads the view as :func:`view` does."""
    doc = outcome.document
    if not (outcome.created and outcome.new_content and doc.original_id is None):
        return view(session, actor, doc.id or 0)
    doc = get_document(session, actor, doc.id or 0)  # the same read check, from the session
    folder, case = outcome.folder, outcome.case
    assert folder is not None and folder.id == doc.folder_id
    assert (case.id if case else None) == folder.case_pk
    return DocumentView(
        document=doc,
        folder=folder,
        folder_path=folder_path(session, folder),
        case=case,
        is_original=doc.state == "live",
        original=None,
        original_visible=False,
        original_folder_path=None,
        approval=outcome.approval,
        copy_count=0,
        text=None,
        index_pending=True,
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
        action=AuditAction.DOCUMENT_READ,
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
