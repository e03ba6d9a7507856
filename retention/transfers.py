"""Transfer (移管) of an approved batch to the archives: the BagIt package
(:func:`export_transfer`), then, once the archives acknowledge receipt, the documents are marked
transferred (:func:`acknowledge_transfer`, the same chunked disposal as destroy)."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

from genpon.core.clock import local_date, utcnow
from genpon.core.db import session_scope
from genpon.core.errors import Conflict, InvalidInput
from genpon.core.settings import Settings
from genpon.records import audit
from genpon.records.access import Actor
from genpon.records.audit.actions import AuditAction
from genpon.records.models import Approval, Case, Document, DocumentClass, Organization
from genpon.retention.batches import batch_counts, load_docs, lock_batch
from genpon.retention.disposal import (
    CHUNK,
    ExecutionReport,
    Progress,
    check_blocked,
    dispose_items,
    purge_content,
    start_step,
)
from genpon.retention.models import (
    BatchStatus,
    DispositionBatch,
    DispositionItem,
    ItemStatus,
    TombstoneAction,
)
from genpon.retention.service import require_officer
from genpon.retention.steps import STEPS, check_state
from genpon.storage.base import BlobStore
from sqlalchemy import update
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

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
        batch = lock_batch(s, batch_id)
        check_state(batch, *STEPS["export"])
        blocked = check_blocked(s, batch, day, skip_blocked)
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
        timezone=settings.timezone,
    )
    with session_scope(engine) as s:
        batch = lock_batch(s, batch_id)
        if batch.status != "approved":  # a concurrent export won
            import shutil

            shutil.rmtree(dest, ignore_errors=True)
            raise Conflict("batch_already_exported", "移管パッケージは作成済みです。")
        for doc_id in skip_ids:
            s.execute(
                update(DispositionItem)
                .where(
                    col(DispositionItem.batch_id) == batch_id,
                    col(DispositionItem.document_id) == doc_id,
                )
                .values(
                    status=ItemStatus.SKIPPED,
                    result=next(b["reason"] for b in blocked if b["document_id"] == doc_id),
                )
            )
        batch.status = BatchStatus.EXPORTED
        batch.package_path = str(dest)
        batch.executed_by = actor.login
        batch.executed_at = utcnow()
        s.add(batch)
        audit.record(
            s,
            actor=actor.login,
            action=AuditAction.RETENTION_TRANSFER_EXPORTED,
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
    docs = [d for d in load_docs(s, [i.document_id for i in items]) if d.id not in skip_ids]
    by_id = {i.document_id: i for i in items}
    out = []
    for doc in docs:
        meta = _transfer_metadata(s, batch, by_id[doc.id or 0], doc)
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


def _transfer_metadata(
    s: Session, batch: DispositionBatch, item: DispositionItem, doc: Document
) -> dict[str, Any]:
    """A document's metadata in the package: what the archives need to understand it."""
    case = s.get(Case, doc.case_pk) if doc.case_pk else None
    cls = s.get(DocumentClass, doc.document_class_id) if doc.document_class_id else None
    org = s.get(Organization, doc.organization_id)
    approval = s.exec(select(Approval).where(Approval.document_id == doc.id)).first()
    copies = s.exec(
        select(Document.id, Document.folder_id).where(
            Document.original_id == doc.id, Document.state == "live"
        )
    ).all()
    return {
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
    batch = start_step(
        engine,
        actor,
        batch_id,
        action=STEPS["acknowledge"][0],
        from_statuses=STEPS["acknowledge"][1],
        to_status=BatchStatus.ACKNOWLEDGING,
        skip_blocked=True,
        as_of=day,
    )
    report = ExecutionReport(
        batch_id=batch_id, status="acknowledging", package_path=batch.package_path
    )
    dispose_items(
        engine,
        store,
        actor,
        batch_id,
        TombstoneAction.TRANSFERRED,
        settings.transfer_remove_content,
        day,
        report,
        progress,
        chunk,
    )
    with session_scope(engine) as s:
        batch = lock_batch(s, batch_id)
        if batch.status == "acknowledging":
            batch.status = BatchStatus.TRANSFERRED
            batch.acknowledged_by = actor.login
            batch.acknowledged_at = utcnow()
            batch.receipt_reference = (receipt_reference or "").strip() or None
            s.add(batch)
            audit.record(
                s,
                actor=actor.login,
                action=AuditAction.RETENTION_TRANSFER_ACKNOWLEDGED,
                target_type="batch",
                target_id=batch_id,
                details={
                    "receipt_reference": batch.receipt_reference,
                    "transferred": batch_counts(s, batch_id)["done"],
                    "content_removed": settings.transfer_remove_content,
                },
            )
        report.status = batch.status
    purge_content(engine, store, batch_id)
    return report
