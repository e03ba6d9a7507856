"""The personal start page's records part (ホーム): what the person touched lately, their cases,
and for records officers the stored contents that need a look (failed fixity, failed text
extraction). Every list holds only what the caller may read now."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from genpon.core.errors import NotFound
from genpon.records.access import Actor, require_role
from genpon.records.audit.actions import AuditAction
from genpon.records.documents import get_document
from genpon.records.models import (
    AuditEvent,
    Blob,
    BlobState,
    BlobText,
    Case,
    CaseStatus,
    Document,
    DocumentState,
    TextStatus,
)
from sqlalchemy import case as sql_case
from sqlalchemy import func, or_
from sqlmodel import Session, col, select

RECENT_ACTIONS = {
    AuditAction.DOCUMENT_DEPOSITED.value: "登録",
    AuditAction.DOCUMENT_COPIED.value: "写し作成",
    AuditAction.DOCUMENT_READ.value: "閲覧",
}
"""Audit actions that make a document "recent" for the person who did them (label shown)."""


@dataclass
class RecentDocument:
    document: Document
    action: str  # the audit action of the person's latest touch
    at: datetime  # its time (UTC; shown in the city's time zone)


@dataclass
class AttentionCounts:
    """What waits for a records officer in the stored contents."""

    fixity_failed: int
    text_failed: int
    text_failed_documents: list[Document]  # a few live placements to open and look at


def recent_documents(session: Session, actor: Actor, *, limit: int = 10) -> list[RecentDocument]:
    """The caller's own latest deposits, copies and reads (from the audit log), newest first,
    one row per document; documents no longer live or no longer readable are left out."""
    if actor.kind != "person" or limit < 1:
        return []
    events = session.exec(
        select(AuditEvent)
        .where(
            AuditEvent.actor == actor.login,
            AuditEvent.target_type == "document",
            col(AuditEvent.action).in_(list(RECENT_ACTIONS)),
        )
        .order_by(col(AuditEvent.seq).desc())
        .limit(limit * 20)
    ).all()
    out: list[RecentDocument] = []
    seen: set[str] = set()
    for event in events:
        if event.target_id in seen or not event.target_id.isdigit():
            continue
        seen.add(event.target_id)
        try:
            doc = get_document(session, actor, int(event.target_id))
        except NotFound:
            continue
        if doc.state != DocumentState.LIVE:
            continue
        out.append(RecentDocument(doc, event.action, datetime.fromisoformat(event.at)))
        if len(out) >= limit:
            break
    return out


def my_cases(session: Session, actor: Actor, *, limit: int = 20) -> list[Case]:
    """Cases of the caller's own organization or where they are a member (even for city-wide
    readers: "mine", not everything), open ones first, then the newest."""
    if actor.kind != "person" or limit < 1:
        return []
    open_first = sql_case((col(Case.status) == CaseStatus.OPEN, 0), else_=1)
    rows = session.exec(
        select(Case)
        .where(
            or_(
                col(Case.organization_id) == actor.organization_id,
                col(Case.id).in_(sorted(actor.member_cases) or [-1]),
            )
        )
        .order_by(open_first, col(Case.opened_on).desc(), col(Case.id).desc())
        .limit(limit)
    ).all()
    return list(rows)


def attention(session: Session, actor: Actor) -> AttentionCounts:
    """Failed fixity checks and failed text extractions of stored contents (records officers)."""
    require_role(actor, "records_officer")
    fixity = session.exec(
        select(func.count())
        .select_from(Blob)
        .where(col(Blob.fixity_ok).is_(False), Blob.state == BlobState.STORED)
    ).one()
    text = session.exec(
        select(func.count())
        .select_from(BlobText)
        .join(Blob, col(Blob.sha256) == BlobText.sha256)
        .where(BlobText.status == TextStatus.FAILED, Blob.state == BlobState.STORED)
    ).one()
    docs = session.exec(
        select(Document)
        .join(BlobText, col(BlobText.sha256) == Document.sha256)
        .where(
            BlobText.status == TextStatus.FAILED,
            Document.state == DocumentState.LIVE,
            col(Document.original_id).is_(None),
        )
        .order_by(col(Document.id).desc())
        .limit(10)
    ).all()
    return AttentionCounts(
        fixity_failed=int(fixity), text_failed=int(text), text_failed_documents=list(docs)
    )
