"""Disposal of an approved batch's items: destroy (:func:`execute_batch`) and the shared,
chunked machinery the transfer's acknowledgement runs too.

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
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from genpon.core.clock import local_date, utcnow
from genpon.core.db import session_scope
from genpon.core.errors import Conflict
from genpon.core.settings import Settings
from genpon.records import audit
from genpon.records.access import Actor
from genpon.records.audit.actions import AuditAction
from genpon.records.models import (
    Blob,
    BlobState,
    BlobText,
    BlobTextChunk,
    Case,
    Document,
    DocumentClass,
    DocumentState,
    DocumentVersion,
    IndexOutbox,
    IndexReason,
)
from genpon.retention.batches import blocked_reason, load_docs, lock_batch, reason_label
from genpon.retention.certificates import issue_certificate, require_key
from genpon.retention.holding import active_holds
from genpon.retention.models import (
    BatchStatus,
    DispositionBatch,
    DispositionItem,
    ItemStatus,
    Tombstone,
    TombstoneAction,
)
from genpon.retention.service import require_officer
from genpon.retention.steps import STEPS, check_state
from genpon.storage.base import BlobStore
from sqlalchemy import delete, update
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

CHUNK = 200
Progress = Callable[[int, int], None]  # (items processed so far, total)


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
    docs = {d.id: d for d in load_docs(session, [i.document_id for i in items])}
    holds = active_holds(session, docs.values())
    out = []
    for item in items:
        why = blocked_reason(session, docs.get(item.document_id), as_of, batch.action, holds)
        if why:
            out.append(
                {"document_id": item.document_id, "reason": why, "message": reason_label(why)}
            )
    return out


def check_blocked(
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


def start_step(
    engine: Engine,
    actor: Actor,
    batch_id: int,
    *,
    action: str,
    from_statuses: tuple[str, ...],
    to_status: BatchStatus,
    skip_blocked: bool,
    as_of: date,
    settings: Settings | None = None,
) -> DispositionBatch:
    with session_scope(engine) as s:
        require_officer(actor)
        batch = lock_batch(s, batch_id)
        check_state(batch, action, from_statuses)
        if settings is not None:
            require_key(settings)
        blocked = check_blocked(s, batch, as_of, skip_blocked)
        if batch.status != to_status:
            batch.status = to_status
            batch.executed_by = actor.login
            batch.started_at = utcnow()
            s.add(batch)
            audit.record(
                s,
                actor=actor.login,
                action=AuditAction.RETENTION_BATCH_EXECUTION_STARTED,
                target_type="batch",
                target_id=batch_id,
                details={"action": action, "skip_blocked": skip_blocked, "blocked": len(blocked)},
            )
        return batch


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
        start_step(
            engine,
            actor,
            batch_id,
            action=STEPS["execute"][0],
            from_statuses=STEPS["execute"][1],
            to_status=BatchStatus.EXECUTING,
            skip_blocked=skip_blocked,
            as_of=day,
            settings=settings,
        )
    except Conflict as exc:
        if exc.code == "batch_already_executed":
            purge_content(engine, store, batch_id)  # finish a run that died after its commit
        raise
    report = ExecutionReport(batch_id=batch_id, status="executing")
    dispose_items(
        engine,
        store,
        actor,
        batch_id,
        TombstoneAction.DESTROYED,
        True,
        day,
        report,
        progress,
        chunk,
    )
    with session_scope(engine) as s:
        batch = lock_batch(s, batch_id)
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
            issue_certificate(s, store, actor, settings, batch)
        report.status = batch.status
        report.certificate_id = batch.certificate_id
    purge_content(engine, store, batch_id)
    return report


def dispose_items(
    engine: Engine,
    store: BlobStore,
    actor: Actor,
    batch_id: int,
    action: TombstoneAction,
    remove_content: bool,
    day: date,
    report: ExecutionReport,
    progress: Progress | None,
    chunk: int,
) -> None:
    with session_scope(engine) as s:
        rows = s.exec(
            select(DispositionItem.id)
            .where(
                DispositionItem.batch_id == batch_id,
                DispositionItem.decision == "approved",
                DispositionItem.status == "pending",
            )
            .order_by(col(DispositionItem.document_id))
        ).all()
        ids = [i for i in rows if i is not None]  # stored rows: the filter only narrows the type
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
    action: TombstoneAction,
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
    items = _claim(s, item_ids, now)
    if not items:
        return  # another execution took them
    docs = {d.id: d for d in load_docs(s, [i.document_id for i in items], lock=True)}
    cases = _lock_cases(s, docs.values())
    holds = active_holds(s, docs.values())
    with_copies = _originals_with_copies(s, docs.values())
    disposed: list[tuple[DispositionItem, Document]] = []
    for item in items:
        doc = docs.get(item.document_id)
        case = cases.get(doc.case_pk) if doc is not None else None
        why = blocked_reason(s, doc, day, batch.action, holds)
        if why is not None:
            _skip(s, actor, batch, item, case, why, report)
            continue
        assert doc is not None
        if doc.id in with_copies:
            successor = hand_over_original(s, doc)
            if successor is not None and successor.id is not None:
                with_copies.add(successor.id)  # it may be disposed of later in this chunk
        doc.state = DocumentState(action.value)  # same words: destroyed | transferred
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


def _claim(s: Session, item_ids: list[int], now: datetime) -> list[DispositionItem]:
    """The items of ``item_ids`` this execution claimed (still pending, now ``done``), by
    document id; those another execution claimed first are left out."""
    claimed: list[int] = []
    for part in _parts(item_ids):
        claimed += s.execute(
            update(DispositionItem)
            .where(
                col(DispositionItem.id).in_(part),
                col(DispositionItem.status) == ItemStatus.PENDING,
            )
            .values(status="done", executed_at=now)
            .returning(col(DispositionItem.id))
            .execution_options(synchronize_session=False)
        ).scalars()
    items: list[DispositionItem] = []
    for part in _parts(claimed):
        items += s.exec(select(DispositionItem).where(col(DispositionItem.id).in_(part))).all()
    items.sort(key=lambda i: i.document_id)
    return items


def _lock_cases(s: Session, docs: Iterable[Document]) -> dict[int | None, Case]:
    """The cases of ``docs``, locked in id order (PostgreSQL)."""
    cases: dict[int | None, Case] = {}
    for part in _parts({d.case_pk for d in docs if d.case_pk}):
        stmt = select(Case).where(col(Case.id).in_(part)).order_by(col(Case.id)).with_for_update()
        cases.update({c.id: c for c in s.exec(stmt).all()})
    return cases


def _originals_with_copies(s: Session, docs: Iterable[Document]) -> set[int]:
    """The originals among ``docs`` that live copies point to: only those need the original
    handed over before they go."""
    with_copies: set[int] = set()
    for part in _parts(d.id for d in docs if d.original_id is None and d.id):
        originals = s.exec(
            select(Document.original_id)
            .where(col(Document.original_id).in_(part), Document.state == "live")
            .distinct()
        ).all()
        with_copies.update(o for o in originals if o is not None)
    return with_copies


def _skip(
    s: Session,
    actor: Actor,
    batch: DispositionBatch,
    item: DispositionItem,
    case: Case | None,
    why: str,
    report: ExecutionReport,
) -> None:
    """Leave an item that may not be disposed of now, with its reason and an audit event."""
    item.status = ItemStatus.SKIPPED
    item.result = why
    s.add(item)
    report.skipped.append({"document_id": item.document_id, "reason": why})
    audit.record(
        s,
        actor=actor.login,
        action=AuditAction.RETENTION_ITEM_SKIPPED,
        target_type="document",
        target_id=item.document_id,
        case_id=case.case_id if case else None,
        details={"batch_id": batch.id, "reason": why},
    )


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
                blob.state = BlobState.DELETED
                blob.deleted_at = now
                s.add(blob)
        s.execute(delete(BlobTextChunk).where(col(BlobTextChunk.sha256).in_(part)))
        s.execute(delete(BlobText).where(col(BlobText.sha256).in_(part)))
    return gone


# the document's new state -> its event
_DISPOSED_EVENT: dict[TombstoneAction, AuditAction] = {
    TombstoneAction.DESTROYED: AuditAction.DOCUMENT_DESTROYED,
    TombstoneAction.TRANSFERRED: AuditAction.DOCUMENT_TRANSFERRED,
}


def _dispose_document(
    s: Session,
    actor: Actor,
    batch: DispositionBatch,
    item: DispositionItem,
    doc: Document,
    case: Case | None,
    action: TombstoneAction,
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
    s.add(
        IndexOutbox(sha256=doc.sha256, reason=IndexReason.DESTROY)
    )  # the indexer drops it either way
    audit.record(
        s,
        actor=actor.login,
        action=_DISPOSED_EVENT[action],
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
