"""Holds (保留): placing, releasing and listing them, and which holds block a document now.

Any active hold on a document, its case, its class or a class above it blocks destroy and
transfer of that document. Placing a hold locks its target (PostgreSQL), as the disposal does, so
a hold either comes first and wins, or comes after the disposal and is refused.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from genpon.core.clock import utcnow
from genpon.core.errors import Conflict, InvalidInput, NotFound
from genpon.records import audit
from genpon.records.access import Actor
from genpon.records.audit.actions import AuditAction
from genpon.records.models import Case, Document, DocumentClass
from genpon.retention.models import RetentionHold
from genpon.retention.rules import HoldType
from genpon.retention.schedule import class_chain
from genpon.retention.service import (
    require_officer,
    require_reader,
    resolve_target,
    target_columns,
    valid_reason,
)
from sqlalchemy import ColumnElement
from sqlmodel import Session, col, select


def place_hold(
    session: Session,
    actor: Actor,
    *,
    scope: str,
    ref: str | int,
    hold_type: str,
    reason: str,
    reference: str | None = None,
) -> RetentionHold:
    """保留を設定する. Any active hold blocks destroy and transfer of what it covers."""
    require_officer(actor)
    try:
        kind = HoldType(hold_type)
    except ValueError:
        raise InvalidInput(
            "invalid_hold_type",
            "保留の種類は litigation（訴訟）/ disclosure（開示請求）/ appeal（不服申立て）/ "
            "audit（監査）/ other（その他）です。",
            {"hold_type": hold_type},
        ) from None
    why = valid_reason(reason)
    if reference is not None and len(reference) > 200:
        raise InvalidInput("reference_too_long", "参照番号は200文字以内です。")
    target = resolve_target(session, scope, ref, lock=True)
    if target.document is not None and target.document.state != "live":
        raise Conflict(
            "document_not_live",
            "この文書は廃棄または移管済みです。",
            {"state": target.document.state},
        )
    hold = RetentionHold(
        hold_type=kind,
        reason=why,
        reference=(reference or "").strip() or None,
        placed_by=actor.login,
        **target_columns(target),
    )
    session.add(hold)
    session.flush()
    audit.record(
        session,
        actor=actor.login,
        action=AuditAction.RETENTION_HOLD_PLACED,
        target_type=target.scope,
        target_id=target.target_id,
        case_id=target.case_id,
        details={
            "hold_id": hold.id,
            "hold_type": kind.value,
            "hold_type_label": kind.label,
            "reason": why,
            "reference": hold.reference,
        },
    )
    return hold


def get_hold(session: Session, actor: Actor, hold_id: int) -> RetentionHold:
    require_reader(actor)
    hold = session.get(RetentionHold, hold_id)
    if hold is None:
        raise NotFound("hold_not_found", "保留が見つかりません。", {"hold_id": hold_id})
    return hold


def release_hold(session: Session, actor: Actor, hold_id: int, *, reason: str) -> RetentionHold:
    """保留を解除する (a reason is required)."""
    require_officer(actor)
    why = valid_reason(reason)
    stmt = select(RetentionHold).where(RetentionHold.id == hold_id).with_for_update()
    hold = session.exec(stmt).first()
    if hold is None:
        raise NotFound("hold_not_found", "保留が見つかりません。", {"hold_id": hold_id})
    if hold.released_at is not None:
        raise Conflict("hold_already_released", "この保留は既に解除されています。")
    hold.released_at = utcnow()
    hold.released_by = actor.login
    hold.release_reason = why
    session.add(hold)
    target_type, target_id, case_id = hold_target(session, hold)
    audit.record(
        session,
        actor=actor.login,
        action=AuditAction.RETENTION_HOLD_RELEASED,
        target_type=target_type,
        target_id=target_id,
        case_id=case_id,
        details={"hold_id": hold.id, "hold_type": hold.hold_type, "reason": why},
    )
    return hold


def hold_target(session: Session, hold: RetentionHold) -> tuple[str, str, str | None]:
    """(target_type, target_id, case ID for the timeline) of a hold."""
    if hold.document_id is not None:
        doc = session.get(Document, hold.document_id)
        case = session.get(Case, doc.case_pk) if doc and doc.case_pk else None
        return "document", str(hold.document_id), case.case_id if case else None
    if hold.case_pk is not None:
        case = session.get(Case, hold.case_pk)
        return "case", case.case_id if case else str(hold.case_pk), case.case_id if case else None
    cls = session.get(DocumentClass, hold.document_class_id)
    return "class", cls.code if cls else str(hold.document_class_id), None


def list_holds(
    session: Session,
    actor: Actor,
    *,
    active: bool | None = True,
    scope: str | None = None,
    ref: str | int | None = None,
) -> list[RetentionHold]:
    """Holds, newest first; ``active=None`` lists released ones too."""
    require_reader(actor)
    stmt = select(RetentionHold)
    if active is True:
        stmt = stmt.where(col(RetentionHold.released_at).is_(None))
    elif active is False:
        stmt = stmt.where(col(RetentionHold.released_at).is_not(None))
    if scope is not None and ref is not None:
        cols = target_columns(resolve_target(session, scope, ref))
        stmt = stmt.where(RetentionHold.scope == scope)
        for name in ("document_id", "case_pk", "document_class_id"):
            if cols[name] is not None:
                stmt = stmt.where(getattr(RetentionHold, name) == cols[name])
    return list(session.exec(stmt.order_by(col(RetentionHold.id).desc())).all())


def active_holds(session: Session, docs: Iterable[Any]) -> dict[int, list[RetentionHold]]:
    """Active holds covering each document (by id): on the document, its case, its class or a
    class above it. ``docs`` are Documents or rows with ``id``, ``case_pk``,
    ``document_class_id``. Documents without a hold are absent from the answer."""
    holds = session.exec(
        select(RetentionHold).where(col(RetentionHold.released_at).is_(None))
    ).all()
    if not holds:
        return {}
    by_doc: dict[int, list[RetentionHold]] = defaultdict(list)
    by_case: dict[int, list[RetentionHold]] = defaultdict(list)
    by_class: dict[int, list[RetentionHold]] = defaultdict(list)
    for h in holds:
        if h.document_id is not None:
            by_doc[h.document_id].append(h)
        elif h.case_pk is not None:
            by_case[h.case_pk].append(h)
        elif h.document_class_id is not None:
            by_class[h.document_class_id].append(h)
    chains: dict[int | None, list[int]] = {}
    out: dict[int, list[RetentionHold]] = {}
    for d in docs:
        found = list(by_doc.get(d.id, ()))
        if d.case_pk is not None:
            found += by_case.get(d.case_pk, ())
        if by_class:
            cid = d.document_class_id
            if cid not in chains:
                chains[cid] = [c.id for c in class_chain(session, cid) if c.id is not None]
            for c in chains[cid]:
                found += by_class.get(c, ())
        if found:
            out[d.id] = found
    return out


def holds_for_case(session: Session, case: Case) -> list[tuple[RetentionHold, str]]:
    """Active holds that concern ``case`` (for its page): on the case, on any of its documents,
    and on its class or a class above it, each with what it covers ("案件", "文書「…」",
    "文書分類 B0102"). The caller has checked the case may be read."""
    doc_titles = dict(
        session.exec(select(Document.id, Document.title).where(Document.case_pk == case.id)).all()
    )
    chain = {c.id: c for c in class_chain(session, case.document_class_id)}
    conds: list[ColumnElement[bool]] = [col(RetentionHold.case_pk) == case.id]
    if doc_titles:
        conds.append(col(RetentionHold.document_id).in_(list(doc_titles)))
    if chain:
        conds.append(col(RetentionHold.document_class_id).in_(list(chain)))
    from sqlalchemy import or_

    rows = session.exec(
        select(RetentionHold)
        .where(col(RetentionHold.released_at).is_(None), or_(*conds))
        .order_by(col(RetentionHold.id))
    ).all()
    out = []
    for h in rows:
        if h.document_id is not None:
            what = f"文書「{doc_titles.get(h.document_id, h.document_id)}」"
        elif h.case_pk is not None:
            what = "この案件"
        else:
            cls = chain.get(h.document_class_id)
            what = f"文書分類 {cls.code} {cls.name}" if cls else "文書分類"
        out.append((h, what))
    return out
