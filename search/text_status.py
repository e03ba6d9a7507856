"""What the index knows of the caller's documents: deposits still waiting to be indexed, and
(for records officers) the documents whose text could not be extracted."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from genpon.records.access import Actor, can_read_folder, require_role
from genpon.records.models import BlobText, Case, Document, Folder, IndexOutbox, TextStatus
from sqlalchemy import func
from sqlmodel import Session, col, select

MAX_PENDING_SCAN = 5000  # queued contents looked at for the count (the queue is short)


def pending_index(session: Session, actor: Actor) -> int:
    """Live documents the caller may read whose index work is still queued (a deposit that a
    search cannot find yet). Counts at most the documents of ``MAX_PENDING_SCAN`` contents."""
    shas = select(IndexOutbox.sha256).distinct().limit(MAX_PENDING_SCAN).subquery()
    rows = session.exec(
        select(Document, Folder)
        .join(Folder, col(Folder.id) == Document.folder_id)
        .where(col(Document.sha256).in_(select(shas.c.sha256)), Document.state == "live")
    ).all()
    n = 0
    for _doc, folder in rows:
        case = session.get(Case, folder.case_pk) if folder.case_pk else None
        n += can_read_folder(actor, folder, case)
    return n


@dataclass
class TextFailure:
    document_id: int
    title: str
    filename: str
    mime_type: str
    sha256: str
    status: str  # failed | unsupported
    reason: str | None
    extractor: str | None
    extracted_at: datetime | None


def text_failures(
    session: Session,
    actor: Actor,
    *,
    limit: int = 100,
    offset: int = 0,
    include_unsupported: bool = False,
) -> tuple[int, list[TextFailure]]:
    """Live documents whose text extraction failed (or whose type has no extractor), newest
    extraction first: records officers and admins only."""
    require_role(actor, "records_officer", "admin")
    wanted = [TextStatus.FAILED.value] + (
        [TextStatus.UNSUPPORTED.value] if include_unsupported else []
    )
    base = (
        select(Document, BlobText)
        .join(BlobText, col(BlobText.sha256) == Document.sha256)
        .where(col(BlobText.status).in_(wanted), Document.state == "live")
    )
    total = session.execute(
        select(func.count()).select_from(base.with_only_columns(col(Document.id)).subquery())
    ).scalar_one()
    rows = session.exec(
        base.order_by(col(BlobText.extracted_at).desc(), col(Document.id))
        .offset(offset)
        .limit(limit)
    ).all()
    return total, [
        TextFailure(
            document_id=d.id or 0,
            title=d.title,
            filename=d.filename,
            mime_type=d.mime_type,
            sha256=d.sha256,
            status=str(bt.status),
            reason=bt.reason,
            extractor=bt.extractor,
            extracted_at=bt.extracted_at,
        )
        for d, bt in rows
    ]
