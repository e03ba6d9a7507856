"""Reviewed disposal (廃棄伺い) and transfer (移管): batches, four-eyes review, execution.

Flow::

    create_batch (records officer A, from due items)      -> pending
    decide (records officer B ≠ A; approve/reject, item by item or whole)
                                                           -> approved | rejected
    destroy:  execute_batch  -> executing -> executed  (+ signed 廃棄証明書 stored as a record)
    transfer: export_transfer (BagIt package) -> exported
              acknowledge_transfer (the archives received it) -> transferred

This module creates, reviews and lists batches, and holds the rules every step shares: when a
document is due and what blocks it (:func:`blocked_reason`), and which step a batch may take
next (:data:`STEPS`, :func:`available_steps`). The steps after approval live beside it:

- :mod:`.disposal`: :func:`~.disposal.execute_batch` and the chunked, resumable disposal of
  items that both destroy and the transfer's acknowledgement run;
- :mod:`.certificates`: the signed disposal certificate, stored as a record;
- :mod:`.transfers`: :func:`~.transfers.export_transfer` (BagIt) and
  :func:`~.transfers.acknowledge_transfer`.

Public functions: :func:`create_batch`, :func:`decide`, :func:`get_batch`, :func:`list_batches`,
:func:`batch_items`, :func:`available_steps`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from genpon.core.clock import DEFAULT_TIMEZONE, local_date, utcnow
from genpon.core.errors import Conflict, Forbidden, InvalidInput, NotFound
from genpon.records import audit
from genpon.records.access import Actor
from genpon.records.audit.actions import AuditAction
from genpon.records.models import Case, Document, DocumentClass, Organization
from genpon.retention.disposition_list import iter_due, open_batch_of
from genpon.retention.holding import active_holds
from genpon.retention.models import (
    BATCH_ACTIONS,
    BatchAction,
    BatchStatus,
    DispositionBatch,
    DispositionItem,
)
from genpon.retention.rules import Disposition, HoldType
from genpon.retention.service import require_officer, require_reader
from sqlalchemy import update
from sqlmodel import Session, col, select


def is_due(doc: Document, as_of: date) -> bool:
    """Same rule as the disposition list: past the end, or 1年未満 on/after the closing date."""
    end = doc.retention_end
    if end is None:
        return False
    return end < as_of or (doc.retention_start == end and end <= as_of)


def blocked_reason(
    session: Session, doc: Document | None, as_of: date, action: str, holds: dict[int, Any]
) -> str | None:
    """Why ``doc`` may not be disposed of now (None when it may)."""
    if doc is None:
        return "document_not_found"
    if doc.state != "live":
        return f"already_{doc.state}"
    if doc.id in holds:
        return "held:" + ",".join(sorted({h.hold_type for h in holds[doc.id]}))
    if not is_due(doc, as_of):
        return "not_due"
    cls = session.get(DocumentClass, doc.document_class_id) if doc.document_class_id else None
    if cls is not None and cls.disposition != action:
        return f"disposition_is_{cls.disposition}"
    return None


_REASON_JA = {
    "document_not_found": "文書が見つかりません",
    "not_due": "保存期間が満了していません",
    "already_destroyed": "廃棄済みです",
    "already_transferred": "移管済みです",
    "disposition_is_destroy": "満了時の措置が廃棄です",
    "disposition_is_transfer": "満了時の措置が移管です",
    "in_open_batch": "別の伺いに含まれています",
}

_HOLD_TYPES = {t.value for t in HoldType}

# Reasons that do not stop a review: a hold may be released before execution, and execution
# re-checks it (and can leave the item out with ``skip_blocked``).
_REVIEW_TOLERATED = ("held:",)


def reason_label(reason: str, doc: Document | None = None) -> str:
    """The reason in Japanese; for ``not_due`` with the document's end date when known."""
    if reason == "not_due" and doc is not None and doc.retention_end is not None:
        end = doc.retention_end
        return f"保存期間が満了していません（満了日 {end.year}年{end.month}月{end.day}日）"
    if reason.startswith("held:"):
        kinds = [HoldType(t).label if t in _HOLD_TYPES else t for t in reason[5:].split(",")]
        return "保留中です（" + "・".join(kinds) + "）"
    return _REASON_JA.get(reason, reason)


# --- views ----------------------------------------------------------------------------------


@dataclass
class BatchSummary:
    batch: DispositionBatch
    counts: dict[str, int] = field(default_factory=dict)  # approved/rejected/pending/done/skipped


def lock_batch(session: Session, batch_id: int) -> DispositionBatch:
    batch = session.exec(
        select(DispositionBatch).where(DispositionBatch.id == batch_id).with_for_update()
    ).first()
    if batch is None:
        raise NotFound("batch_not_found", "伺いが見つかりません。", {"batch_id": batch_id})
    return batch


def batch_counts(session: Session, batch_id: int) -> dict[str, int]:
    from sqlalchemy import func

    out = {"pending": 0, "approved": 0, "rejected": 0, "done": 0, "skipped": 0}
    for decision, status, n in session.exec(
        select(DispositionItem.decision, DispositionItem.status, func.count())
        .where(DispositionItem.batch_id == batch_id)
        .group_by(DispositionItem.decision, DispositionItem.status)
    ).all():
        out[decision] += n
        if status != "pending":
            out[status] += n
    return out


def get_batch(session: Session, actor: Actor, batch_id: int) -> BatchSummary:
    require_reader(actor)
    batch = session.get(DispositionBatch, batch_id)
    if batch is None:
        raise NotFound("batch_not_found", "伺いが見つかりません。", {"batch_id": batch_id})
    return BatchSummary(batch, batch_counts(session, batch_id))


def list_batches(
    session: Session, actor: Actor, *, status: str | None = None, action: str | None = None
) -> list[BatchSummary]:
    require_reader(actor)
    stmt = select(DispositionBatch)
    if status:
        stmt = stmt.where(DispositionBatch.status == status)
    if action:
        stmt = stmt.where(DispositionBatch.action == action)
    rows = session.exec(stmt.order_by(col(DispositionBatch.id).desc()).limit(500)).all()
    return [BatchSummary(b, batch_counts(session, b.id or 0)) for b in rows]


def batch_items(
    session: Session, actor: Actor, batch_id: int, *, offset: int = 0, limit: int = 1000
) -> list[tuple[DispositionItem, Document]]:
    require_reader(actor)
    if offset < 0 or not 1 <= limit <= 100_000:
        raise InvalidInput("invalid_paging", "offset は0以上、limit は1〜100000です。")
    rows = session.exec(
        select(DispositionItem, Document)
        .join(Document, col(Document.id) == DispositionItem.document_id)
        .where(DispositionItem.batch_id == batch_id)
        .order_by(col(DispositionItem.document_id))
        .offset(offset)
        .limit(limit)
    ).all()
    return [(i, d) for i, d in rows]


def _case_ids(session: Session, docs: Iterable[Document]) -> list[str]:
    pks = sorted({d.case_pk for d in docs if d.case_pk})
    out: list[str] = []
    for i in range(0, len(pks), 900):
        out += session.exec(select(Case.case_id).where(col(Case.id).in_(pks[i : i + 900]))).all()
    return sorted(out)


def _case_events(
    session: Session,
    actor: Actor,
    action: AuditAction,
    docs: list[Document],
    details: dict[str, Any],
) -> None:
    """One event per case concerned, so the step appears on each case's timeline."""
    by_case: dict[int, list[int]] = {}
    for d in docs:
        if d.case_pk:
            by_case.setdefault(d.case_pk, []).append(d.id or 0)
    for pk, ids in sorted(by_case.items()):
        case = session.get(Case, pk)
        if case is None:
            continue
        audit.record(
            session,
            actor=actor.login,
            action=action,
            target_type="case",
            target_id=case.case_id,
            case_id=case.case_id,
            details={**details, "document_ids": sorted(ids)[:1000], "count": len(ids)},
        )


# --- create ---------------------------------------------------------------------------------


def create_batch(
    session: Session,
    actor: Actor,
    *,
    action: str,
    timezone: str,
    document_ids: list[int] | None = None,
    as_of: date | None = None,
    title: str = "",
    organization_code: str | None = None,
    class_code: str | None = None,
    case_id: str | None = None,
    include_copies: bool = True,
) -> DispositionBatch:
    """廃棄伺い / 移管伺い from due items. With ``document_ids`` every listed document must be
    live, due, unheld, of the batch's disposition and in no other open batch, or nothing is
    created (409 ``items_not_disposable`` listing each problem). Without, every such item of
    the disposition list (filters apply) is taken. Live copies of an included original that
    are due go with it (a copy never outlives its original).

    An item must be due both on ``as_of`` and today in the city (``timezone``): a future
    ``as_of`` lets an officer look ahead, never put a document that is not yet due into a
    batch (it would be approved, then refused at execution)."""
    require_officer(actor)
    act = _parse_action(action)
    if len(title or "") > 500:
        raise InvalidInput("title_too_long", "件名は500文字以内です。")
    today = local_date(utcnow(), timezone)
    day = as_of or today
    check_day = min(day, today)
    if document_ids is None:
        ids = _due_ids(
            session,
            actor,
            timezone,
            day,
            act,
            organization_code=organization_code,
            class_code=class_code,
            case_id=case_id,
        )
    else:
        ids = _listed_ids(document_ids)
    docs = load_docs(session, ids, lock=True)
    if include_copies:
        docs = _with_copies(session, docs, check_day, act)
    _refuse_undisposable(session, ids, docs, check_day, act)
    batch = _insert_batch(session, actor, act, day, title, organization_code, docs)
    return batch


def _insert_batch(
    session: Session,
    actor: Actor,
    act: str,
    day: date,
    title: str,
    organization_code: str | None,
    docs: list[Document],
) -> DispositionBatch:
    """Write the batch, its pending items and their audit events (the case timelines too)."""
    batch = DispositionBatch(
        action=BatchAction(act),
        title=(title or "").strip()
        or f"{day.isoformat()} {Disposition(act).label}伺い（{len(docs)}件）",
        as_of=day,
        organization_id=_batch_organization(session, actor, organization_code),
        created_by=actor.login,
        item_count=len(docs),
    )
    session.add(batch)
    session.flush()
    session.execute(
        DispositionItem.__table__.insert(),  # type: ignore[attr-defined]
        [
            {"batch_id": batch.id, "document_id": d.id, "decision": "pending", "status": "pending"}
            for d in docs
        ],
    )
    audit.record(
        session,
        actor=actor.login,
        action=AuditAction.RETENTION_BATCH_CREATED,
        target_type="batch",
        target_id=batch.id or 0,
        details={
            "action": act,
            "as_of": day.isoformat(),
            "items": len(docs),
            "cases": _case_ids(session, docs)[:1000],
        },
    )
    _case_events(
        session,
        actor,
        AuditAction.RETENTION_DISPOSAL_REQUESTED,
        docs,
        {"batch_id": batch.id, "action": act},
    )
    return batch


def _parse_action(action: str) -> str:
    try:
        act = Disposition.parse(action).value
    except ValueError:
        raise InvalidInput(
            "invalid_action", "措置は destroy（廃棄）か transfer（移管）です。"
        ) from None
    assert act in BATCH_ACTIONS
    return act


def _due_ids(
    session: Session,
    actor: Actor,
    timezone: str,
    day: date,
    act: str,
    *,
    organization_code: str | None,
    class_code: str | None,
    case_id: str | None,
) -> list[int]:
    """Every item of the disposition list (filters apply) that may go into a batch now."""
    ids = [
        i.document_id
        for i in iter_due(
            session,
            actor,
            timezone=timezone,
            as_of=day,
            organization_code=organization_code,
            class_code=class_code,
            case_id=case_id,
            disposition=act,
        )
        if not i.held and i.batch_id is None
    ]
    if not ids:
        raise Conflict("nothing_due", "対象となる文書がありません。", {"as_of": day.isoformat()})
    return ids


def _listed_ids(document_ids: list[int]) -> list[int]:
    if not document_ids:
        raise InvalidInput("documents_required", "文書IDを1件以上指定してください。")
    if any(isinstance(i, bool) or not isinstance(i, int) for i in document_ids):
        raise InvalidInput("invalid_document_id", "文書IDは数値です。")
    return list(dict.fromkeys(document_ids))


def _refuse_undisposable(
    session: Session, ids: list[int], docs: list[Document], day: date, act: str
) -> None:
    """409 ``items_not_disposable`` listing every requested document (or added copy) that may
    not go into a batch now, in request order."""
    holds = active_holds(session, docs)
    in_batch = open_batch_of(session, [d.id or 0 for d in docs])
    problems = []
    for doc_id in [*ids, *(d.id for d in docs if d.id not in ids)]:
        doc = next((d for d in docs if d.id == doc_id), None)
        why = blocked_reason(session, doc, day, act, holds)
        if why is None and doc_id in in_batch:
            why = "in_open_batch"
        if why is not None:
            problems.append(_problem(doc_id or 0, doc, why))
    if problems:
        raise Conflict(
            "items_not_disposable",
            f"対象にできない文書があります（{len(problems)}件）: "
            + "; ".join(f"{p['document_id']} {p['message']}" for p in problems[:5]),
            {"items": problems[:1000]},
        )


def _problem(doc_id: int, doc: Document | None, why: str) -> dict[str, Any]:
    """One refused item, as the API, the CLI and the screens show it."""
    out: dict[str, Any] = {"document_id": doc_id, "reason": why, "message": reason_label(why, doc)}
    if why == "not_due" and doc is not None and doc.retention_end is not None:
        out["retention_end"] = doc.retention_end.isoformat()
    return out


def _batch_organization(
    session: Session, actor: Actor, organization_code: str | None
) -> int | None:
    """The organization a batch belongs to: the filter's, else the creator's."""
    org_id = actor.organization_id or None
    if organization_code:
        org = session.exec(
            select(Organization).where(Organization.code == organization_code)
        ).first()
        org_id = org.id if org else org_id
    return org_id


def load_docs(session: Session, ids: list[int], *, lock: bool = False) -> list[Document]:
    out: list[Document] = []
    for i in range(0, len(ids), 900):
        stmt = select(Document).where(col(Document.id).in_(ids[i : i + 900]))
        if lock:
            stmt = stmt.with_for_update()
        out += session.exec(stmt.order_by(col(Document.id))).all()
    return out


def _with_copies(session: Session, docs: list[Document], day: date, action: str) -> list[Document]:
    have = {d.id for d in docs}
    originals = [d.id for d in docs if d.original_id is None and d.id is not None]
    extra: list[Document] = []
    for i in range(0, len(originals), 900):
        for copy in session.exec(
            select(Document).where(
                col(Document.original_id).in_(originals[i : i + 900]), Document.state == "live"
            )
        ).all():
            if copy.id in have or not is_due(copy, day):
                continue
            cls = (
                session.get(DocumentClass, copy.document_class_id)
                if copy.document_class_id
                else None
            )
            if cls is not None and cls.disposition != action:
                continue
            have.add(copy.id)
            extra.append(copy)
    return docs + extra


# --- review ---------------------------------------------------------------------------------

# decision -> (the batch's event, each concerned case's event)
_DECISION_EVENTS: dict[str, tuple[AuditAction, AuditAction]] = {
    "approved": (AuditAction.RETENTION_BATCH_APPROVED, AuditAction.RETENTION_DISPOSAL_APPROVED),
    "rejected": (AuditAction.RETENTION_BATCH_REJECTED, AuditAction.RETENTION_DISPOSAL_REJECTED),
}


def decide(
    session: Session,
    actor: Actor,
    batch_id: int,
    *,
    approve: bool,
    document_ids: list[int] | None = None,
    reason: str | None = None,
    timezone: str = DEFAULT_TIMEZONE,
    as_of: date | None = None,
) -> BatchSummary:
    """Approve or reject a pending batch, whole (``document_ids`` None: every undecided item)
    or item by item. The reviewer must be a records officer other than the creator (四つの目).
    Once no item is undecided the batch becomes approved (some item approved) or rejected.

    Approving re-checks each chosen item today in the city (``as_of`` overrides): an item that
    is not due (an extension since the batch was made), gone, or of the other disposition is
    refused (409 ``items_not_approvable`` with the reason per item; reject those items first).
    A hold does not stop the review: execution re-checks it."""
    require_officer(actor)
    batch = lock_batch(session, batch_id)
    why = _review_reason(actor, batch, approve, reason)
    stmt = select(DispositionItem).where(
        DispositionItem.batch_id == batch_id, DispositionItem.decision == "pending"
    )
    pending = {i.document_id: i for i in session.exec(stmt).all()}
    chosen = _chosen_items(pending, document_ids)
    if approve:
        _refuse_unapprovable(
            session, batch, [i.document_id for i in chosen], as_of or local_date(utcnow(), timezone)
        )
    now = utcnow()
    decision = "approved" if approve else "rejected"
    ids = [i.id for i in chosen]
    for j in range(0, len(ids), 900):
        session.execute(
            update(DispositionItem)
            .where(col(DispositionItem.id).in_(ids[j : j + 900]))
            .values(decision=decision, decided_by=actor.login, decided_at=now, decision_reason=why)
        )
    remaining = len(pending) - len(chosen)
    if remaining == 0:
        counts = batch_counts(session, batch_id)
        batch.status = BatchStatus.APPROVED if counts["approved"] else BatchStatus.REJECTED
        batch.decided_by = actor.login
        batch.decided_at = now
        session.add(batch)
    session.flush()
    docs = load_docs(session, [i.document_id for i in chosen])
    batch_event, case_event = _DECISION_EVENTS[decision]
    audit.record(
        session,
        actor=actor.login,
        action=batch_event,
        target_type="batch",
        target_id=batch_id,
        details={
            "items": len(chosen),
            "document_ids": sorted(i.document_id for i in chosen)[:1000],
            "whole": document_ids is None,
            "reason": why,
            "batch_status": batch.status,
        },
    )
    _case_events(session, actor, case_event, docs, {"batch_id": batch_id, "reason": why})
    return BatchSummary(batch, batch_counts(session, batch_id))


def _refuse_unapprovable(
    session: Session, batch: DispositionBatch, ids: list[int], day: date
) -> None:
    """409 ``items_not_approvable`` listing every chosen item that may not be disposed of on
    ``day`` for a reason other than a hold."""
    docs = {d.id: d for d in load_docs(session, ids)}
    holds = active_holds(session, docs.values())
    problems = []
    for doc_id in ids:
        doc = docs.get(doc_id)
        why = blocked_reason(session, doc, day, batch.action, holds)
        if why is not None and not why.startswith(_REVIEW_TOLERATED):
            problems.append(_problem(doc_id or 0, doc, why))
    if problems:
        raise Conflict(
            "items_not_approvable",
            f"承認できない文書があります（{len(problems)}件）: "
            + "; ".join(f"{p['document_id']} {p['message']}" for p in problems[:5])
            + "。これらの文書を却下してから承認してください。",
            {"items": problems[:1000]},
        )


def _review_reason(
    actor: Actor, batch: DispositionBatch, approve: bool, reason: str | None
) -> str | None:
    """The review's reason (required to reject), once the batch is pending and ``actor`` is not
    its creator (四つの目)."""
    if batch.status != "pending":
        raise Conflict(
            "batch_not_pending",
            "この伺いは審査中ではありません。",
            {"status": batch.status},
        )
    if actor.login == batch.created_by:
        raise Forbidden(
            "four_eyes_required",
            "伺いを作成した本人は承認・却下できません（別の文書管理担当が審査してください）。",
            {"created_by": batch.created_by},
        )
    why = (reason or "").strip() or None
    if not approve and not why:
        raise InvalidInput("reason_required", "却下の理由を入力してください。")
    if why and len(why) > 1000:
        raise InvalidInput("reason_too_long", "理由は1000文字以内です。")
    return why


def _chosen_items(
    pending: dict[int, DispositionItem], document_ids: list[int] | None
) -> list[DispositionItem]:
    """The undecided items a review decides: all (``document_ids`` None) or those listed."""
    if document_ids is None:
        return list(pending.values())
    if not document_ids:
        raise InvalidInput("documents_required", "文書IDを1件以上指定してください。")
    unknown = [d for d in document_ids if d not in pending]
    if unknown:
        raise InvalidInput(
            "items_not_pending",
            "伺いに含まれない、または審査済みの文書があります。",
            {"document_ids": unknown[:1000]},
        )
    return [pending[d] for d in dict.fromkeys(document_ids)]
