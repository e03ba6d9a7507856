"""Extensions (延長): adding years to the retention of a document, a case or a whole class.

The dates of the scheduled documents an extension covers are recomputed at once; later closings
include it (:mod:`genpon.retention.schedule`).
"""

from __future__ import annotations

from genpon.core.errors import Conflict, InvalidInput
from genpon.records import audit
from genpon.records.access import Actor
from genpon.records.audit.actions import AuditAction
from genpon.records.models import Document
from genpon.retention.models import RetentionExtension
from genpon.retention.schedule import reschedule
from genpon.retention.service import (
    Target,
    class_subtree,
    require_officer,
    require_reader,
    resolve_target,
    target_columns,
    valid_reason,
)
from sqlmodel import Session, col, select


def extend(
    session: Session,
    actor: Actor,
    *,
    scope: str,
    ref: str | int,
    years: int,
    reason: str,
    timezone: str,
) -> tuple[RetentionExtension, int]:
    """延長: add ``years`` (1–30) to a document, a case or a whole class. Dates of the scheduled
    documents it covers are recomputed now; later closings include it. Returns the extension
    and how many documents got new dates."""
    require_officer(actor)
    if isinstance(years, bool) or not isinstance(years, int) or not 1 <= years <= 30:
        raise InvalidInput("invalid_years", "延長する年数は1〜30の整数です。", {"years": years})
    why = valid_reason(reason)
    target = resolve_target(session, scope, ref, lock=True)
    if target.document is not None and target.document.state != "live":
        raise Conflict("document_not_live", "この文書は廃棄または移管済みです。")
    ext = RetentionExtension(
        years=years, reason=why, created_by=actor.login, **target_columns(target)
    )
    session.add(ext)
    session.flush()
    docs = _covered_documents(session, target)
    changed = reschedule(session, docs, timezone=timezone)
    audit.record(
        session,
        actor=actor.login,
        action=AuditAction.RETENTION_EXTENDED,
        target_type=target.scope,
        target_id=target.target_id,
        case_id=target.case_id,
        details={
            "extension_id": ext.id,
            "years": years,
            "reason": why,
            "documents_rescheduled": changed,
            "retention_end": (
                target.document.retention_end.isoformat()
                if target.document is not None and target.document.retention_end
                else None
            ),
        },
    )
    return ext, changed


def _covered_documents(session: Session, target: Target) -> list[Document]:
    stmt = select(Document).where(Document.state == "live")
    if target.document is not None:
        return [target.document]
    if target.case is not None:
        return list(session.exec(stmt.where(Document.case_pk == target.case.id)).all())
    assert target.document_class is not None
    ids = class_subtree(session, target.document_class.id or 0)
    return list(session.exec(stmt.where(col(Document.document_class_id).in_(ids))).all())


def list_extensions(
    session: Session, actor: Actor, *, scope: str | None = None, ref: str | int | None = None
) -> list[RetentionExtension]:
    require_reader(actor)
    stmt = select(RetentionExtension)
    if scope is not None and ref is not None:
        cols = target_columns(resolve_target(session, scope, ref))
        stmt = stmt.where(RetentionExtension.scope == scope)
        for name in ("document_id", "case_pk", "document_class_id"):
            if cols[name] is not None:
                stmt = stmt.where(getattr(RetentionExtension, name) == cols[name])
    return list(session.exec(stmt.order_by(col(RetentionExtension.id))).all())
