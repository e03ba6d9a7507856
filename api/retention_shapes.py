"""保存期間・廃棄・移管 as JSON: the shapes the retention routes and the CLI print (no FastAPI
here, so `genpon retention …` does not import the web application)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from genpon.api.schemas import iso
from genpon.retention.rules import Disposition, HoldType

if TYPE_CHECKING:  # types only: ``genpon retention due`` need not load disposal and its signing
    from genpon.retention.batches import BatchSummary
    from genpon.retention.disposal import ExecutionReport
    from genpon.retention.disposition_list import DueItem, DueList
    from genpon.retention.models import DisposalCertificate, RetentionExtension, RetentionHold


def hold_out(h: RetentionHold) -> dict[str, Any]:
    return {
        "id": h.id,
        "hold_type": h.hold_type,
        "hold_type_label": HoldType(h.hold_type).label,
        "scope": h.scope,
        "document_id": h.document_id,
        "case_pk": h.case_pk,
        "document_class_id": h.document_class_id,
        "reason": h.reason,
        "reference": h.reference,
        "placed_by": h.placed_by,
        "placed_at": iso(h.placed_at),
        "active": h.released_at is None,
        "released_by": h.released_by,
        "released_at": iso(h.released_at),
        "release_reason": h.release_reason,
    }


def extension_out(e: RetentionExtension) -> dict[str, Any]:
    return {
        "id": e.id,
        "scope": e.scope,
        "document_id": e.document_id,
        "case_pk": e.case_pk,
        "document_class_id": e.document_class_id,
        "years": e.years,
        "reason": e.reason,
        "created_by": e.created_by,
        "created_at": iso(e.created_at),
    }


def due_item_out(i: DueItem) -> dict[str, Any]:
    return {
        "document_id": i.document_id,
        "title": i.title,
        "filename": i.filename,
        "sha256": i.sha256,
        "size": i.size,
        "case_id": i.case_id,
        "class_code": i.class_code,
        "organization_code": i.organization_code,
        "retention": i.retention,
        "retention_start": i.retention_start.isoformat() if i.retention_start else None,
        "retention_end": i.retention_end.isoformat() if i.retention_end else None,
        "disposition": i.disposition,
        "disposition_label": Disposition(i.disposition).label,
        "is_copy": i.is_copy,
        "original_id": i.original_id,
        "held": i.held,
        "holds": [
            {"id": h.id, "hold_type": h.hold_type, "label": h.label, "scope": h.scope}
            for h in i.holds
        ],
        "batch_id": i.batch_id,
    }


def due_out(d: DueList) -> dict[str, Any]:
    return {
        "as_of": d.as_of.isoformat(),
        "count": d.total,
        "offset": d.offset,
        "limit": d.limit,
        "groups": [
            {
                "case_id": g.case_id,
                "case_title": g.case_title,
                "class_code": g.class_code,
                "class_name": g.class_name,
                "disposition": g.disposition,
                "items": [due_item_out(i) for i in g.items],
            }
            for g in d.groups
        ],
    }


def batch_out(b: BatchSummary) -> dict[str, Any]:
    x = b.batch
    return {
        "id": x.id,
        "action": x.action,
        "status": x.status,
        "title": x.title,
        "as_of": x.as_of.isoformat(),
        "created_by": x.created_by,
        "created_at": iso(x.created_at),
        "decided_by": x.decided_by,
        "decided_at": iso(x.decided_at),
        "executed_by": x.executed_by,
        "executed_at": iso(x.executed_at),
        "acknowledged_by": x.acknowledged_by,
        "acknowledged_at": iso(x.acknowledged_at),
        "receipt_reference": x.receipt_reference,
        "certificate_id": x.certificate_id,
        "package": x.package_path.rsplit("/", 1)[-1] if x.package_path else None,
        "item_count": x.item_count,
        "counts": b.counts,
    }


def report_out(r: ExecutionReport) -> dict[str, Any]:
    return {
        "batch_id": r.batch_id,
        "status": r.status,
        "done": r.done,
        "skipped": r.skipped,
        "certificate_id": r.certificate_id,
        "package": r.package_path.rsplit("/", 1)[-1] if r.package_path else None,
    }


def certificate_out(c: DisposalCertificate) -> dict[str, Any]:
    return {
        "certificate_id": c.certificate_id,
        "batch_id": c.batch_id,
        "document_id": c.document_id,
        "key_id": c.key_id,
        "issued_at": iso(c.issued_at),
        "item_count": c.body.get("item_count"),
    }
