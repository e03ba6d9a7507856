"""Response shapes (the only place that turns domain objects into JSON)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from genpon.core.clock import as_utc
from genpon.records.models import (
    AuditEvent,
    Case,
    Document,
    DocumentClass,
    Folder,
    Organization,
    User,
)
from sqlmodel import Session

if TYPE_CHECKING:  # types only: the command line's case and user commands need no documents
    from genpon.records.documents import DocumentView, HashHolding


def iso(dt: Any) -> str | None:
    return as_utc(dt).isoformat().replace("+00:00", "Z") if dt is not None else None


def organization(o: Organization, parent_code: str | None = None) -> dict[str, Any]:
    return {
        "id": o.id,
        "code": o.code,
        "name": o.name,
        "parent_id": o.parent_id,
        "parent_code": parent_code,
    }


def user(u: User) -> dict[str, Any]:
    return {
        "id": u.id,
        "login": u.login,
        "name": u.name,
        "organization_id": u.organization_id,
        "kind": u.kind,
        "roles": u.roles,
        "active": u.active,
    }


def document_class(c: DocumentClass) -> dict[str, Any]:
    return {
        "id": c.id,
        "code": c.code,
        "name": c.name,
        "parent_id": c.parent_id,
        "level": c.level,
        "retention": c.retention,
        "disposition": c.disposition,
        "start_rule": c.start_rule,
    }


def case(c: Case, session: Session | None = None, folder: Folder | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "case_id": c.case_id,
        "title": c.title,
        "organization_id": c.organization_id,
        "document_class_id": c.document_class_id,
        "status": c.status,
        "fiscal_year": c.fiscal_year,
        "opened_on": c.opened_on.isoformat(),
        "closed_at": iso(c.closed_at),
        "issuer": c.issuer,
        "created_at": iso(c.created_at),
    }
    if session is not None:
        from genpon.records.cases import members

        org = session.get(Organization, c.organization_id)
        cls = session.get(DocumentClass, c.document_class_id)
        out["organization_code"] = org.code if org else None
        out["document_class_code"] = cls.code if cls else None
        out["members"] = members(session, c)
    if folder is not None:
        out["folder_id"] = folder.id
    return out


def folder(f: Folder, path: str | None = None) -> dict[str, Any]:
    return {
        "id": f.id,
        "kind": f.kind,
        "name": f.name,
        "parent_id": f.parent_id,
        "organization_id": f.organization_id,
        "case_pk": f.case_pk,
        "path": path,
        "created_at": iso(f.created_at),
    }


def document(d: Document) -> dict[str, Any]:
    return {
        "id": d.id,
        "title": d.title,
        "filename": d.filename,
        "sha256": d.sha256,
        "size": d.size,
        "mime_type": d.mime_type,
        "declared_type": d.declared_type,
        "status": d.status,
        "state": d.state,
        "folder_id": d.folder_id,
        "organization_id": d.organization_id,
        "version": d.version,
        "is_original": d.original_id is None and d.state == "live",
        "original_id": d.original_id,
        "supersedes_id": d.supersedes_id,
        "doc_date": d.doc_date.isoformat(),
        "document_class_id": d.document_class_id,
        "external_system": d.external_system,
        "external_id": d.external_id,
        "retention_start": d.retention_start.isoformat() if d.retention_start else None,
        "retention_end": d.retention_end.isoformat() if d.retention_end else None,
        "approved_at": iso(d.approved_at),
        "created_at": iso(d.created_at),
        "provenance": d.provenance,
    }


def document_view(v: DocumentView) -> dict[str, Any]:
    out = document(v.document)
    out["folder_path"] = v.folder_path
    out["folder_kind"] = v.folder.kind
    out["case_id"] = v.case.case_id if v.case else None
    out["copy_count"] = v.copy_count
    if v.original is not None:
        if not v.original_visible:  # say that an original exists, not which one (issue 15, 10)
            out["original_id"] = None
        out["original"] = {
            "id": v.original.id if v.original_visible else None,
            "visible": v.original_visible,
            "folder_path": v.original_folder_path if v.original_visible else None,
            "title": v.original.title if v.original_visible else None,
        }
    else:
        out["original"] = None
    out["approval"] = (
        {
            "approved_on": v.approval.approved_on.isoformat(),
            "approvers": v.approval.approvers,
            "external_system": v.approval.external_system,
            "external_id": v.approval.external_id,
        }
        if v.approval
        else None
    )
    out["text"] = text_status(v.text, v.index_pending)
    return out


def text_status(bt: Any, index_pending: bool) -> dict[str, Any]:
    """The content's text: ``status`` pending / ok / empty / failed / unsupported (pending
    until extracted and indexed), ``reason`` when failed or unsupported, the extractor, the
    character count and ``indexed_at`` (when the text was extracted and first indexed; null
    while index work is queued)."""
    status = "pending" if bt is None or index_pending else str(bt.status)
    return {
        "status": status,
        "reason": bt.reason if bt is not None and status in ("failed", "unsupported") else None,
        "extractor": bt.extractor if bt is not None else None,
        "chars": bt.chars if bt is not None else 0,
        "indexed_at": (
            iso(bt.extracted_at)
            if bt is not None and bt.extracted_at and not index_pending
            else None
        ),
    }


def holding(h: HashHolding) -> dict[str, Any]:
    orig = h.original
    return {
        "sha256": h.sha256,
        "original": (
            {
                "id": orig.id if h.original_visible else None,
                "visible": h.original_visible,
                "title": orig.title if h.original_visible else None,
            }
            if orig
            else None
        ),
        "documents": [
            {
                **document(d),
                "folder_path": path,
                **({} if h.original_visible else {"original_id": None}),
            }
            for d, path in h.placements
        ],
    }


def event(e: AuditEvent) -> dict[str, Any]:
    return {
        "seq": e.seq,
        "at": e.at,
        "actor": e.actor,
        "action": e.action,
        "target_type": e.target_type,
        "target_id": e.target_id,
        "case_id": e.case_id,
        "details": e.details,
        "prev_hash": e.prev_hash,
        "hash": e.hash,
    }


def page(items: list[Any], count: int, offset: int, limit: int) -> dict[str, Any]:
    return {"data": items, "count": count, "offset": offset, "limit": limit}
