"""Reviewed disposal (廃棄伺い) and transfer (移管): batches, four-eyes review, execution.

Flow::

    create_batch (records officer A, from due items)      -> pending
    decide (records officer B ≠ A; approve/reject, item by item or whole)
                                                           -> approved | rejected
    destroy:  execute_batch  -> executing -> executed  (+ signed 廃棄証明書 stored as a record)
    transfer: export_transfer (BagIt package) -> exported
              acknowledge_transfer (the archives received it) -> transferred

Execution re-checks every item at that moment (live, still due, no active hold). By default a
blocked item stops the execution before anything changes (409 ``items_blocked``); with
``skip_blocked`` it is left out and reported. Items are processed in chunks, one transaction
each; an item is claimed by a conditional ``UPDATE … WHERE status = 'pending'`` so two
executions of the same batch at once dispose of each document once. The document row is locked
(PostgreSQL) before the hold re-check, and placing a hold locks it too, so a hold either comes
first and wins, or comes after the disposal and is refused.

Content is removed from the blob store only after the transaction that marked the blob
``deleted`` committed (no row ever points to content that is gone), and only when no live
document or version of one still references it. A crash at any point resumes on the next run:
pending items are processed, committed-but-not-yet-removed content is removed, the certificate
is built from the tombstones (written in the same transaction as each destruction) so no entry
is ever lost, and it lists exactly the documents destroyed by the batch.

Public functions: :func:`create_batch`, :func:`decide`, :func:`get_batch`, :func:`list_batches`,
:func:`batch_items`, :func:`execute_batch`, :func:`export_transfer`, :func:`acknowledge_transfer`,
:func:`get_certificate`, :func:`certificate_file`, :func:`verify_certificate_file`.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

from genpon.core.clock import as_utc, local_date, utcnow
from genpon.core.db import session_scope
from genpon.core.errors import Conflict, Forbidden, InvalidInput, NotFound
from genpon.core.settings import Settings
from genpon.records import audit
from genpon.records.access import SYSTEM_ACTOR, Actor
from genpon.records.models import (
    Approval,
    Blob,
    BlobText,
    Case,
    Document,
    DocumentClass,
    DocumentVersion,
    IndexOutbox,
    Organization,
)
from genpon.retention.models import (
    BATCH_ACTIONS,
    BATCH_OPEN_STATUSES,
    DisposalCertificate,
    DispositionBatch,
    DispositionItem,
    Tombstone,
)
from genpon.retention.rules import Disposition
from genpon.retention.service import (
    active_holds,
    open_batch_of,
    require_officer,
    require_reader,
)
from genpon.storage.base import BlobStore
from sqlalchemy import delete, update
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

CHUNK = 200
Progress = Callable[[int, int], None]  # (items processed so far, total)


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


def reason_label(reason: str) -> str:
    if reason.startswith("held:"):
        return "保留中です（" + reason[5:] + "）"
    return _REASON_JA.get(reason, reason)


# --- views ----------------------------------------------------------------------------------


@dataclass
class BatchSummary:
    batch: DispositionBatch
    counts: dict[str, int] = field(default_factory=dict)  # approved/rejected/pending/done/skipped


def _lock_batch(session: Session, batch_id: int) -> DispositionBatch:
    batch = session.exec(
        select(DispositionBatch).where(DispositionBatch.id == batch_id).with_for_update()
    ).first()
    if batch is None:
        raise NotFound("batch_not_found", "伺いが見つかりません。", {"batch_id": batch_id})
    return batch


def _counts(session: Session, batch_id: int) -> dict[str, int]:
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
    return BatchSummary(batch, _counts(session, batch_id))


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
    return [BatchSummary(b, _counts(session, b.id or 0)) for b in rows]


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
    session: Session, actor: Actor, action: str, docs: list[Document], details: dict[str, Any]
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
    are due go with it (a copy never outlives its original)."""
    from genpon.retention.service import iter_due

    require_officer(actor)
    try:
        act = Disposition.parse(action).value
    except ValueError:
        raise InvalidInput(
            "invalid_action", "措置は destroy（廃棄）か transfer（移管）です。"
        ) from None
    assert act in BATCH_ACTIONS
    if len(title or "") > 500:
        raise InvalidInput("title_too_long", "件名は500文字以内です。")
    day = as_of or local_date(utcnow(), timezone)
    if document_ids is None:
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
            raise Conflict(
                "nothing_due", "対象となる文書がありません。", {"as_of": day.isoformat()}
            )
    else:
        if not document_ids:
            raise InvalidInput("documents_required", "文書IDを1件以上指定してください。")
        if any(isinstance(i, bool) or not isinstance(i, int) for i in document_ids):
            raise InvalidInput("invalid_document_id", "文書IDは数値です。")
        ids = list(dict.fromkeys(document_ids))
    docs = _load_docs(session, ids, lock=True)
    if include_copies:
        docs = _with_copies(session, docs, day, act)
    holds = active_holds(session, docs)
    in_batch = open_batch_of(session, [d.id or 0 for d in docs])
    problems = []
    for doc_id in [*ids, *(d.id for d in docs if d.id not in ids)]:
        doc = next((d for d in docs if d.id == doc_id), None)
        why = blocked_reason(session, doc, day, act, holds)
        if why is None and doc_id in in_batch:
            why = "in_open_batch"
        if why is not None:
            problems.append({"document_id": doc_id, "reason": why, "message": reason_label(why)})
    if problems:
        raise Conflict(
            "items_not_disposable",
            f"対象にできない文書があります（{len(problems)}件）: "
            + "; ".join(f"{p['document_id']} {p['message']}" for p in problems[:5]),
            {"items": problems[:1000]},
        )
    org_id = actor.organization_id or None
    if organization_code:
        org = session.exec(
            select(Organization).where(Organization.code == organization_code)
        ).first()
        org_id = org.id if org else org_id
    batch = DispositionBatch(
        action=act,
        title=(title or "").strip()
        or f"{day.isoformat()} {Disposition(act).label}伺い（{len(docs)}件）",
        as_of=day,
        organization_id=org_id,
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
        action="retention.batch_created",
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
        session, actor, "retention.disposal_requested", docs, {"batch_id": batch.id, "action": act}
    )
    return batch


def _load_docs(session: Session, ids: list[int], *, lock: bool = False) -> list[Document]:
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


def decide(
    session: Session,
    actor: Actor,
    batch_id: int,
    *,
    approve: bool,
    document_ids: list[int] | None = None,
    reason: str | None = None,
) -> BatchSummary:
    """Approve or reject a pending batch, whole (``document_ids`` None: every undecided item)
    or item by item. The reviewer must be a records officer other than the creator (四つの目).
    Once no item is undecided the batch becomes approved (some item approved) or rejected."""
    require_officer(actor)
    batch = _lock_batch(session, batch_id)
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
    stmt = select(DispositionItem).where(
        DispositionItem.batch_id == batch_id, DispositionItem.decision == "pending"
    )
    pending = {i.document_id: i for i in session.exec(stmt).all()}
    if document_ids is None:
        chosen = list(pending.values())
    else:
        if not document_ids:
            raise InvalidInput("documents_required", "文書IDを1件以上指定してください。")
        unknown = [d for d in document_ids if d not in pending]
        if unknown:
            raise InvalidInput(
                "items_not_pending",
                "伺いに含まれない、または審査済みの文書があります。",
                {"document_ids": unknown[:1000]},
            )
        chosen = [pending[d] for d in dict.fromkeys(document_ids)]
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
        counts = _counts(session, batch_id)
        batch.status = "approved" if counts["approved"] else "rejected"
        batch.decided_by = actor.login
        batch.decided_at = now
        session.add(batch)
    session.flush()
    docs = _load_docs(session, [i.document_id for i in chosen])
    audit.record(
        session,
        actor=actor.login,
        action=f"retention.batch_{decision}",
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
    _case_events(
        session,
        actor,
        f"retention.disposal_{decision}",
        docs,
        {"batch_id": batch_id, "reason": why},
    )
    return BatchSummary(batch, _counts(session, batch_id))


# --- execution ------------------------------------------------------------------------------


@dataclass
class ExecutionReport:
    batch_id: int
    status: str
    done: int = 0  # disposed by this run
    skipped: list[dict[str, Any]] = field(default_factory=list)
    certificate_id: str | None = None
    package_path: str | None = None


def _blocked_items(session: Session, batch: DispositionBatch, as_of: date) -> list[dict[str, Any]]:
    items = session.exec(
        select(DispositionItem).where(
            DispositionItem.batch_id == batch.id,
            DispositionItem.decision == "approved",
            DispositionItem.status == "pending",
        )
    ).all()
    docs = {d.id: d for d in _load_docs(session, [i.document_id for i in items])}
    holds = active_holds(session, docs.values())
    out = []
    for item in items:
        why = blocked_reason(session, docs.get(item.document_id), as_of, batch.action, holds)
        if why:
            out.append(
                {"document_id": item.document_id, "reason": why, "message": reason_label(why)}
            )
    return out


# The steps after approval: the batch's action and the statuses each step may start (or
# resume) from. The service functions below check them; screens ask ``available_steps``.
STEPS: dict[str, tuple[str, tuple[str, ...]]] = {
    "execute": ("destroy", ("approved", "executing")),
    "export": ("transfer", ("approved",)),
    "acknowledge": ("transfer", ("exported", "acknowledging")),
}


def available_steps(actor: Actor, batch: DispositionBatch) -> frozenset[str]:
    """What ``actor`` may do with ``batch`` now: ``decide`` (a records officer other than its
    creator, while it is pending) and the ``STEPS`` whose start status it is in. The same rules
    the service functions enforce, so a screen offers only what will be accepted."""
    try:
        require_officer(actor)
    except Forbidden:
        return frozenset()
    out = {
        name
        for name, (action, statuses) in STEPS.items()
        if batch.action == action and batch.status in statuses
    }
    if batch.status == "pending" and batch.created_by != actor.login:
        out.add("decide")
    return frozenset(out)


def _check_state(batch: DispositionBatch, action: str, from_statuses: tuple[str, ...]) -> None:
    """The batch is of ``action`` and in one of ``from_statuses``, else a Conflict saying why."""
    if batch.action != action:
        raise Conflict(
            "wrong_batch_action",
            f"この伺いは{Disposition(batch.action).label}の伺いです。",
            {"action": batch.action},
        )
    if batch.status not in from_statuses:
        code, msg = {
            "pending": ("batch_not_approved", "この伺いはまだ承認されていません。"),
            "rejected": ("batch_rejected", "この伺いは却下されています。"),
            "executed": ("batch_already_executed", "この伺いは実行済みです。"),
            "transferred": ("batch_already_transferred", "この伺いは移管済みです。"),
            "exported": ("batch_already_exported", "移管パッケージは作成済みです。"),
            "approved": ("batch_not_exported", "移管パッケージがまだ作成されていません。"),
        }.get(batch.status, ("batch_state_conflict", "この伺いは実行できない状態です。"))
        raise Conflict(code, msg, {"status": batch.status})


def _check_blocked(
    s: Session, batch: DispositionBatch, as_of: date, skip_blocked: bool
) -> list[dict[str, Any]]:
    """The batch's items that may not be processed today (holds, extensions...); a Conflict
    listing them unless ``skip_blocked``."""
    blocked = _blocked_items(s, batch, as_of)
    if blocked and not skip_blocked:
        raise Conflict(
            "items_blocked",
            f"実行できない文書があります（{len(blocked)}件）: "
            + "; ".join(f"{b['document_id']} {b['message']}" for b in blocked[:5])
            + "。保留の解除、または除外して実行（skip_blocked）してください。",
            {"items": blocked[:1000]},
        )
    return blocked


def _start(
    engine: Engine,
    actor: Actor,
    batch_id: int,
    *,
    action: str,
    from_statuses: tuple[str, ...],
    to_status: str,
    skip_blocked: bool,
    as_of: date,
    settings: Settings | None = None,
) -> DispositionBatch:
    with session_scope(engine) as s:
        require_officer(actor)
        batch = _lock_batch(s, batch_id)
        _check_state(batch, action, from_statuses)
        if settings is not None:
            _require_key(settings)
        blocked = _check_blocked(s, batch, as_of, skip_blocked)
        if batch.status != to_status:
            batch.status = to_status
            batch.executed_by = actor.login
            batch.started_at = utcnow()
            s.add(batch)
            audit.record(
                s,
                actor=actor.login,
                action="retention.batch_execution_started",
                target_type="batch",
                target_id=batch_id,
                details={"action": action, "skip_blocked": skip_blocked, "blocked": len(blocked)},
            )
        return batch


def _require_key(settings: Settings) -> None:
    from genpon.core.signing import SystemKeyring

    try:
        _ = SystemKeyring(settings.key_dir).key_id
    except RuntimeError:
        raise Conflict(
            "signing_key_missing",
            "システム署名鍵がありません（genpon init を実行してください）。廃棄は実行していません。",
        ) from None


def execute_batch(
    engine: Engine,
    store: BlobStore,
    actor: Actor,
    settings: Settings,
    batch_id: int,
    *,
    skip_blocked: bool = False,
    as_of: date | None = None,
    progress: Progress | None = None,
    chunk: int = CHUNK,
) -> ExecutionReport:
    """Execute an approved destroy batch (or resume one that stopped): destroy every approved
    item, issue the signed disposal certificate and store it as a record. Runs its own
    transactions (one per chunk)."""
    day = as_of or local_date(utcnow(), settings.timezone)
    try:
        _start(
            engine,
            actor,
            batch_id,
            action=STEPS["execute"][0],
            from_statuses=STEPS["execute"][1],
            to_status="executing",
            skip_blocked=skip_blocked,
            as_of=day,
            settings=settings,
        )
    except Conflict as exc:
        if exc.code == "batch_already_executed":
            purge_content(engine, store, batch_id)  # finish a run that died after its commit
        raise
    report = ExecutionReport(batch_id=batch_id, status="executing")
    _dispose_items(engine, store, actor, batch_id, "destroyed", True, day, report, progress, chunk)
    with session_scope(engine) as s:
        batch = _lock_batch(s, batch_id)
        pending = s.exec(
            select(DispositionItem.id)
            .where(
                DispositionItem.batch_id == batch_id,
                DispositionItem.decision == "approved",
                DispositionItem.status == "pending",
            )
            .limit(1)
        ).first()
        if batch.status == "executing" and pending is None:
            _issue_certificate(s, store, actor, settings, batch)
        report.status = batch.status
        report.certificate_id = batch.certificate_id
    purge_content(engine, store, batch_id)
    return report


def _dispose_items(
    engine: Engine,
    store: BlobStore,
    actor: Actor,
    batch_id: int,
    action: str,  # destroyed | transferred
    remove_content: bool,
    day: date,
    report: ExecutionReport,
    progress: Progress | None,
    chunk: int,
) -> None:
    with session_scope(engine) as s:
        ids = list(
            s.exec(
                select(DispositionItem.id)
                .where(
                    DispositionItem.batch_id == batch_id,
                    DispositionItem.decision == "approved",
                    DispositionItem.status == "pending",
                )
                .order_by(col(DispositionItem.document_id))
            ).all()
        )
    total = len(ids)
    for start in range(0, total, chunk):
        part = ids[start : start + chunk]
        with session_scope(engine) as s:
            batch = s.get(DispositionBatch, batch_id)
            assert batch is not None
            _dispose_chunk(s, actor, batch, part, action, remove_content, day, report)
        purge_content(engine, store, batch_id, document_item_ids=part)
        if progress is not None:
            progress(min(start + chunk, total), total)


def _parts(values: Iterable[Any], size: int = 900) -> Iterable[list[Any]]:
    """``values`` sorted, in slices small enough for one ``IN (…)`` on every backend."""
    ordered = sorted(values)
    for i in range(0, len(ordered), size):
        yield ordered[i : i + size]


def _dispose_chunk(
    s: Session,
    actor: Actor,
    batch: DispositionBatch,
    item_ids: list[int],
    action: str,
    remove_content: bool,
    day: date,
    report: ExecutionReport,
) -> None:
    """Dispose of the items ``item_ids`` in one transaction, with a fixed number of queries per
    chunk (claim, items, documents, cases, holds, copies, versions, references, blobs) instead of
    a dozen per item. Each item is claimed by a conditional UPDATE (``status = 'pending'``), so a
    concurrent execution of the same batch gets the rows it did not claim, never the same one.
    The documents, then their cases, are locked (PostgreSQL, in id order) before the hold
    re-check, as placing a hold locks them too."""
    from genpon.records.documents import hand_over_original

    now = utcnow()
    claimed: list[int] = []
    for part in _parts(item_ids):
        claimed += s.execute(
            update(DispositionItem)
            .where(col(DispositionItem.id).in_(part), DispositionItem.status == "pending")
            .values(status="done", executed_at=now)
            .returning(col(DispositionItem.id))
            .execution_options(synchronize_session=False)
        ).scalars()
    if not claimed:
        return  # another execution took them
    items: list[DispositionItem] = []
    for part in _parts(claimed):
        items += s.exec(select(DispositionItem).where(col(DispositionItem.id).in_(part))).all()
    items.sort(key=lambda i: i.document_id)
    docs = {d.id: d for d in _load_docs(s, [i.document_id for i in items], lock=True)}
    cases: dict[int | None, Case] = {}
    for part in _parts({d.case_pk for d in docs.values() if d.case_pk}):
        stmt = select(Case).where(col(Case.id).in_(part)).order_by(col(Case.id)).with_for_update()
        cases.update({c.id: c for c in s.exec(stmt).all()})
    holds = active_holds(s, docs.values())
    # originals that live copies point to: only those need the original handed over
    with_copies: set[int] = set()
    for part in _parts(d.id for d in docs.values() if d.original_id is None and d.id):
        with_copies.update(
            s.exec(
                select(Document.original_id)
                .where(col(Document.original_id).in_(part), Document.state == "live")
                .distinct()
            ).all()
        )
    disposed: list[tuple[DispositionItem, Document]] = []
    for item in items:
        doc = docs.get(item.document_id)
        case = cases.get(doc.case_pk) if doc is not None else None
        why = blocked_reason(s, doc, day, batch.action, holds)
        if why is not None:
            item.status = "skipped"
            item.result = why
            s.add(item)
            report.skipped.append({"document_id": item.document_id, "reason": why})
            audit.record(
                s,
                actor=actor.login,
                action="retention.item_skipped",
                target_type="document",
                target_id=item.document_id,
                case_id=case.case_id if case else None,
                details={"batch_id": batch.id, "reason": why},
            )
            continue
        assert doc is not None
        if doc.id in with_copies:
            successor = hand_over_original(s, doc)
            if successor is not None and successor.id is not None:
                with_copies.add(successor.id)  # it may be disposed of later in this chunk
        doc.state = action
        doc.updated_at = now
        s.add(doc)
        disposed.append((item, doc))
    s.flush()
    removed: set[str] = set()
    if remove_content and disposed:
        removed = _remove_unreferenced(s, [d for _, d in disposed], now)
    for item, doc in disposed:
        _dispose_document(s, actor, batch, item, doc, cases.get(doc.case_pk), action, removed, now)
        report.done += 1


def _remove_unreferenced(s: Session, docs: list[Document], now: datetime) -> set[str]:
    """Mark ``deleted`` the blobs of ``docs`` (current content and every version) that no live
    document or version of one references any more; drop their extracted text. Returns them.
    The store itself is purged after the commit (:func:`purge_content`)."""
    shas = {d.sha256 for d in docs}
    for part in _parts(d.id for d in docs if d.id is not None):
        shas.update(
            s.exec(
                select(DocumentVersion.sha256).where(col(DocumentVersion.document_id).in_(part))
            ).all()
        )
    referenced: set[str] = set()
    for part in _parts(shas):
        referenced.update(
            s.exec(
                select(Document.sha256)
                .where(col(Document.sha256).in_(part), Document.state == "live")
                .distinct()
            ).all()
        )
        referenced.update(
            s.exec(
                select(DocumentVersion.sha256)
                .join(Document, col(Document.id) == DocumentVersion.document_id)
                .where(col(DocumentVersion.sha256).in_(part), Document.state == "live")
                .distinct()
            ).all()
        )
    gone = shas - referenced
    for part in _parts(gone):
        for blob in s.exec(select(Blob).where(col(Blob.sha256).in_(part))).all():
            if blob.state == "stored":
                blob.state = "deleted"
                blob.deleted_at = now
                s.add(blob)
        s.execute(delete(BlobText).where(col(BlobText.sha256).in_(part)))
    return gone


def _dispose_document(
    s: Session,
    actor: Actor,
    batch: DispositionBatch,
    item: DispositionItem,
    doc: Document,
    case: Case | None,
    action: str,
    removed_shas: set[str],
    now: datetime,
) -> None:
    """Tombstone, index outbox entry and audit event of one disposed document."""
    cls = s.get(DocumentClass, doc.document_class_id) if doc.document_class_id else None
    removed = doc.sha256 in removed_shas
    s.add(
        Tombstone(
            document_id=doc.id or 0,
            action=action,
            batch_id=batch.id or 0,
            sha256=doc.sha256,
            size=doc.size,
            title=doc.title,
            filename=doc.filename,
            case_id=case.case_id if case else None,
            class_code=cls.code if cls else None,
            organization_id=doc.organization_id,
            retention_start=doc.retention_start,
            retention_end=doc.retention_end,
            requested_by=batch.created_by,
            approved_by=item.decided_by or "",
            executed_by=actor.login,
            disposed_at=now,
            content_removed=removed,
        )
    )
    s.add(IndexOutbox(sha256=doc.sha256, reason="destroy"))  # the indexer drops it either way
    audit.record(
        s,
        actor=actor.login,
        action=f"document.{action}",
        target_type="document",
        target_id=doc.id or 0,
        case_id=case.case_id if case else None,
        details={
            "batch_id": batch.id,
            "sha256": doc.sha256,
            "size": doc.size,
            "approved_by": item.decided_by,
            "requested_by": batch.created_by,
            "content_removed": removed,
        },
    )


def purge_content(
    engine: Engine, store: BlobStore, batch_id: int, *, document_item_ids: list[int] | None = None
) -> int:
    """Remove from the store the content this batch marked ``deleted`` (committed). Re-checks
    each blob row right before deleting (a deposit may have brought the content back).
    Idempotent; returns how many blobs were removed."""
    with Session(engine) as s:
        stmt = (
            select(Blob.sha256)
            .join(DocumentVersion, col(DocumentVersion.sha256) == Blob.sha256)
            .join(DispositionItem, col(DispositionItem.document_id) == DocumentVersion.document_id)
            .where(DispositionItem.batch_id == batch_id, Blob.state == "deleted")
        )
        if document_item_ids is not None:
            stmt = stmt.where(col(DispositionItem.id).in_(document_item_ids))
        shas = sorted(set(s.exec(stmt).all()))
    removed = 0
    for i in range(0, len(shas), 900):
        part = [sha for sha in shas[i : i + 900] if store.exists(sha)]
        if not part:
            continue
        with Session(engine) as s:  # re-check right before deleting
            still = set(
                s.exec(
                    select(Blob.sha256).where(col(Blob.sha256).in_(part), Blob.state == "deleted")
                ).all()
            )
        with ThreadPoolExecutor(8) as pool:  # each delete waits on the store (fsync, S3)
            removed += sum(pool.map(lambda sha: _delete_blob(store, sha), sorted(still)))
    return removed


def _delete_blob(store: BlobStore, sha: str) -> int:
    try:
        store.delete(sha)
        return 1
    except FileNotFoundError:
        return 0


# --- the certificate ------------------------------------------------------------------------


def _issue_certificate(
    s: Session, store: BlobStore, actor: Actor, settings: Settings, batch: DispositionBatch
) -> DisposalCertificate:
    from genpon.core.signing import SystemKeyring
    from genpon.retention.certificate import build_certificate, certificate_bytes

    tombs = s.exec(
        select(Tombstone).where(Tombstone.batch_id == batch.id, Tombstone.action == "destroyed")
    ).all()
    approvers = sorted(
        set(
            s.exec(
                select(DispositionItem.decided_by).where(
                    DispositionItem.batch_id == batch.id, DispositionItem.decision == "approved"
                )
            ).all()
        )
        - {None}
    )
    classes = {c.code: c for c in s.exec(select(DocumentClass)).all()}
    now = utcnow()
    cert_id = f"DC-{batch.id:06d}"
    ring = SystemKeyring(settings.key_dir)
    cert = build_certificate(
        {
            "issuer": "Genpon 原本",
            "batch_id": batch.id,
            "certificate_id": cert_id,
            "requested_by": batch.created_by,
            "approved_by": approvers or [batch.decided_by or ""],
            "executed_at": now,
            "issued_at": now,
            "notes": batch.title,
        },
        [
            {
                "document_id": t.document_id,
                "title": t.title,
                "case_id": t.case_id,
                "class": {
                    "code": t.class_code,
                    "name": classes[t.class_code].name if t.class_code in classes else None,
                },
                "sha256": t.sha256,
                "size": t.size,
                "retention_end": t.retention_end,
                "approved_by": t.approved_by,
                "destroyed_at": as_utc(t.disposed_at),
            }
            for t in tombs
        ],
        signer=ring,
    )
    record = _store_certificate_record(s, store, settings, batch, cert_id, certificate_bytes(cert))
    row = DisposalCertificate(
        certificate_id=cert_id,
        batch_id=batch.id or 0,
        document_id=record.id,
        key_id=cert["signature"]["key_id"],
        body=cert,
        issued_at=now,
    )
    s.add(row)
    batch.status = "executed"
    batch.executed_at = now
    batch.certificate_id = cert_id
    s.add(batch)
    s.flush()
    audit.record(
        s,
        actor=actor.login,
        action="retention.batch_executed",
        target_type="batch",
        target_id=batch.id or 0,
        details={
            "destroyed": len(tombs),
            "certificate_id": cert_id,
            "certificate_document_id": record.id,
            "key_id": row.key_id,
        },
    )
    return row


def _store_certificate_record(
    s: Session,
    store: BlobStore,
    settings: Settings,
    batch: DispositionBatch,
    cert_id: str,
    data: bytes,
) -> Document:
    """The certificate is a record itself: a closed case of the certificate class (30 years)
    holding the signed JSON as an official document."""
    from genpon.records.cases import close_case, create_case
    from genpon.records.documents import ApprovalIn, DepositIn, deposit

    org = s.get(Organization, batch.organization_id) if batch.organization_id else None
    if org is None:
        org = s.exec(
            select(Organization)
            .where(col(Organization.parent_id).is_(None))
            .order_by(col(Organization.id))
        ).first()
    if org is None:
        raise Conflict("no_organization", "証明書を保存する所属がありません。")
    case, _folder = create_case(
        s,
        SYSTEM_ACTOR,
        title=f"廃棄証明書 {cert_id}（{batch.title}）"[:500],
        organization_code=org.code,
        class_code=settings.certificate_class_code,
        case_id_format=settings.case_id_format,
        timezone=settings.timezone,
    )
    staged = store.stage(io.BytesIO(data))
    approvers = sorted({batch.created_by, batch.decided_by or batch.created_by})
    outcome = deposit(
        s,
        store,
        SYSTEM_ACTOR,
        staged,
        DepositIn(
            filename=f"{cert_id}.json",
            case_id=case.case_id,
            title=f"廃棄証明書 {cert_id}",
            declared_type="application/json",
            approval=ApprovalIn(
                approved_on=local_date(utcnow(), settings.timezone), approvers=approvers
            ),
            provenance={"source": "retention", "batch_id": batch.id, "certificate_id": cert_id},
        ),
        allowed_types=(*settings.allowed_types, "application/json", "text/*"),
        timezone=settings.timezone,
    )
    close_case(s, SYSTEM_ACTOR, case.case_id, timezone=settings.timezone)
    return outcome.document


def get_certificate(session: Session, actor: Actor, batch_id: int) -> DisposalCertificate:
    require_reader(actor)
    row = session.exec(
        select(DisposalCertificate).where(DisposalCertificate.batch_id == batch_id)
    ).first()
    if row is None:
        raise NotFound(
            "certificate_not_found", "この伺いの廃棄証明書はありません。", {"batch_id": batch_id}
        )
    return row


def certificate_file(session: Session, actor: Actor, batch_id: int) -> tuple[str, bytes]:
    """(file name, bytes) of the signed certificate, as stored."""
    from genpon.retention.certificate import certificate_bytes

    row = get_certificate(session, actor, batch_id)
    return f"{row.certificate_id}.json", certificate_bytes(row.body)


def verify_certificate_file(
    path: str | Path, key_dir: Path, extra_public_keys: dict[str, Any] | None = None
) -> Any:
    """Verify a certificate file with the system's public keys (every key ever used) and any
    extra PEM keys (offline use). Returns :class:`retention.certificate.VerifyResult`."""
    from genpon.core.signing import SystemKeyring
    from genpon.retention.certificate import verify_certificate

    keys: dict[str, Any] = {}
    if key_dir.is_dir():
        keys.update(SystemKeyring(key_dir).public_keys())
    for kid, pem in (extra_public_keys or {}).items():
        keys[kid] = pem
    return verify_certificate(path, keys)


# --- transfer -------------------------------------------------------------------------------


def export_transfer(
    engine: Engine,
    store: BlobStore,
    actor: Actor,
    settings: Settings,
    batch_id: int,
    *,
    dest_dir: Path | None = None,
    skip_blocked: bool = False,
    as_of: date | None = None,
) -> ExecutionReport:
    """移管: build the BagIt package of an approved transfer batch (validated before it is put in
    place) and mark the batch exported. Documents stay live until the archives acknowledge."""
    from genpon.retention.bagit_package import build_transfer_bag

    day = as_of or local_date(utcnow(), settings.timezone)
    with session_scope(engine) as s:
        require_officer(actor)
        batch = _lock_batch(s, batch_id)
        _check_state(batch, *STEPS["export"])
        blocked = _check_blocked(s, batch, day, skip_blocked)
        skip_ids = {b["document_id"] for b in blocked}
        items, rows = _transfer_items(s, store, batch, skip_ids, settings.timezone)
        root = s.exec(select(Organization).where(col(Organization.parent_id).is_(None))).first()
    base = dest_dir or (settings.data_dir / "transfers")
    base.mkdir(parents=True, exist_ok=True)
    dest = base / f"transfer-{batch_id:06d}-{utcnow().strftime('%Y%m%dT%H%M%S%f')}"
    build_transfer_bag(
        dest,
        items,
        rows,
        {
            "Source-Organization": root.name if root else "Genpon",
            "External-Identifier": f"TB-{batch_id:06d}",
            "External-Description": batch.title,
            "Internal-Sender-Identifier": f"genpon-batch-{batch_id}",
            "Bag-Group-Identifier": f"移管伺い {batch_id}",
        },
    )
    with session_scope(engine) as s:
        batch = _lock_batch(s, batch_id)
        if batch.status != "approved":  # a concurrent export won
            import shutil

            shutil.rmtree(dest, ignore_errors=True)
            raise Conflict("batch_already_exported", "移管パッケージは作成済みです。")
        for doc_id in skip_ids:
            s.execute(
                update(DispositionItem)
                .where(DispositionItem.batch_id == batch_id, DispositionItem.document_id == doc_id)
                .values(
                    status="skipped",
                    result=next(b["reason"] for b in blocked if b["document_id"] == doc_id),
                )
            )
        batch.status = "exported"
        batch.package_path = str(dest)
        batch.executed_by = actor.login
        batch.executed_at = utcnow()
        s.add(batch)
        audit.record(
            s,
            actor=actor.login,
            action="retention.transfer_exported",
            target_type="batch",
            target_id=batch_id,
            details={"package": dest.name, "items": len(items), "skipped": sorted(skip_ids)},
        )
    return ExecutionReport(
        batch_id=batch_id,
        status="exported",
        done=len(items),
        skipped=[{"document_id": b["document_id"], "reason": b["reason"]} for b in blocked],
        package_path=str(dest),
    )


def _transfer_items(
    s: Session, store: BlobStore, batch: DispositionBatch, skip_ids: set[int], timezone: str
) -> tuple[list[Any], list[dict[str, Any]]]:
    from genpon.retention.bagit_package import TransferItem
    from genpon.retention.register import register_rows_for_cases

    items = s.exec(
        select(DispositionItem).where(
            DispositionItem.batch_id == batch.id,
            DispositionItem.decision == "approved",
            DispositionItem.status == "pending",
        )
    ).all()
    docs = [d for d in _load_docs(s, [i.document_id for i in items]) if d.id not in skip_ids]
    by_id = {i.document_id: i for i in items}
    out = []
    for doc in docs:
        case = s.get(Case, doc.case_pk) if doc.case_pk else None
        cls = s.get(DocumentClass, doc.document_class_id) if doc.document_class_id else None
        org = s.get(Organization, doc.organization_id)
        approval = s.exec(select(Approval).where(Approval.document_id == doc.id)).first()
        copies = s.exec(
            select(Document.id, Document.folder_id).where(
                Document.original_id == doc.id, Document.state == "live"
            )
        ).all()
        item = by_id[doc.id or 0]
        meta = {
            "title": doc.title,
            "filename": doc.filename,
            "mime_type": doc.mime_type,
            "doc_date": doc.doc_date,
            "status": doc.status,
            "is_copy": doc.original_id is not None,
            "original_id": doc.original_id,
            "copies": [{"document_id": c[0], "folder_id": c[1]} for c in copies],
            "class": {
                "code": cls.code if cls else None,
                "name": cls.name if cls else None,
                "retention": cls.retention if cls else None,
                "disposition": cls.disposition if cls else None,
            },
            "case": {
                "case_id": case.case_id if case else None,
                "title": case.title if case else None,
                "fiscal_year": case.fiscal_year if case else None,
                "closed_at": case.closed_at if case else None,
            },
            "organization": {"code": org.code if org else None, "name": org.name if org else None},
            "retention_start": doc.retention_start,
            "retention_end": doc.retention_end,
            "approval": (
                {
                    "approved_on": approval.approved_on,
                    "approvers": approval.approvers,
                    "external_system": approval.external_system,
                    "external_id": approval.external_id,
                }
                if approval
                else None
            ),
            "transfer": {
                "batch_id": batch.id,
                "requested_by": batch.created_by,
                "approved_by": item.decided_by,
                "approved_at": item.decided_at,
            },
            "hashes": {"sha256": doc.sha256, "size": doc.size},
        }
        sha = doc.sha256
        out.append(
            TransferItem(
                document_id=doc.id or 0,
                filename=doc.filename,
                metadata=meta,
                open_content=lambda sha=sha: store.open(sha),  # type: ignore[misc]
                expected_sha256=doc.sha256,
                expected_size=doc.size,
            )
        )
    case_pks = sorted({d.case_pk for d in docs if d.case_pk})
    rows = register_rows_for_cases(s, case_pks, timezone=timezone)
    return out, rows


def acknowledge_transfer(
    engine: Engine,
    store: BlobStore,
    actor: Actor,
    settings: Settings,
    batch_id: int,
    *,
    receipt_reference: str | None = None,
    as_of: date | None = None,
    progress: Progress | None = None,
    chunk: int = CHUNK,
) -> ExecutionReport:
    """The archives acknowledged receipt: mark the exported documents transferred (tombstones,
    search removal) and remove their content when ``settings.transfer_remove_content``. A hold
    placed since the export still wins (that item is skipped and stays)."""
    if receipt_reference is not None and len(receipt_reference) > 200:
        raise InvalidInput("reference_too_long", "受領番号は200文字以内です。")
    day = as_of or local_date(utcnow(), settings.timezone)
    batch = _start(
        engine,
        actor,
        batch_id,
        action=STEPS["acknowledge"][0],
        from_statuses=STEPS["acknowledge"][1],
        to_status="acknowledging",
        skip_blocked=True,
        as_of=day,
    )
    report = ExecutionReport(
        batch_id=batch_id, status="acknowledging", package_path=batch.package_path
    )
    _dispose_items(
        engine,
        store,
        actor,
        batch_id,
        "transferred",
        settings.transfer_remove_content,
        day,
        report,
        progress,
        chunk,
    )
    with session_scope(engine) as s:
        batch = _lock_batch(s, batch_id)
        if batch.status == "acknowledging":
            batch.status = "transferred"
            batch.acknowledged_by = actor.login
            batch.acknowledged_at = utcnow()
            batch.receipt_reference = (receipt_reference or "").strip() or None
            s.add(batch)
            audit.record(
                s,
                actor=actor.login,
                action="retention.transfer_acknowledged",
                target_type="batch",
                target_id=batch_id,
                details={
                    "receipt_reference": batch.receipt_reference,
                    "transferred": _counts(s, batch_id)["done"],
                    "content_removed": settings.transfer_remove_content,
                },
            )
        report.status = batch.status
    purge_content(engine, store, batch_id)
    return report


__all__ = [
    "BATCH_OPEN_STATUSES",
    "BatchSummary",
    "ExecutionReport",
    "acknowledge_transfer",
    "batch_items",
    "certificate_file",
    "create_batch",
    "decide",
    "execute_batch",
    "export_transfer",
    "get_batch",
    "get_certificate",
    "list_batches",
    "purge_content",
    "verify_certificate_file",
]
