"""決裁 (approval): the data a depositing system sends, its record, and approving a working
document, which freezes its content from then on."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from genpon.core.clock import utcnow
from genpon.core.errors import Conflict, InvalidInput
from genpon.records import audit
from genpon.records.access import Actor, require_external_system
from genpon.records.audit import AuditAction
from genpon.records.documents.common import (
    _by_external_ref,
    _require_doc_write,
    _require_live,
    enqueue_index,
    get_document,
)
from genpon.records.documents.originals import promote_to_original
from genpon.records.lifecycle import case_scheduler
from genpon.records.models import (
    Approval,
    Document,
    DocumentStatus,
    IndexReason,
)
from sqlmodel import Session


@dataclass
class ApprovalIn:
    """決裁 data as a depositing system knows it."""

    approved_on: date
    approvers: list[str] = field(default_factory=list)
    external_system: str | None = None
    external_id: str | None = None

    @classmethod
    def parse(cls, raw: str | dict[str, Any] | None) -> ApprovalIn | None:
        if raw in (None, "", {}):
            return None
        try:
            data = json.loads(raw) if isinstance(raw, str) else dict(raw)
        except (json.JSONDecodeError, TypeError, ValueError):
            raise InvalidInput(
                "invalid_json", "approval は JSON オブジェクトで指定してください。"
            ) from None
        if not isinstance(data, dict):
            raise InvalidInput("invalid_json", "approval は JSON オブジェクトで指定してください。")
        unknown = set(data) - {"approved_on", "approvers", "external_system", "external_id"}
        if unknown:
            raise InvalidInput(
                "invalid_approval", f"approval に不明な項目があります: {', '.join(sorted(unknown))}"
            )
        try:
            approved_on = date.fromisoformat(str(data.get("approved_on", "")))
        except ValueError:
            raise InvalidInput(
                "invalid_approval", "approved_on（決裁日）は YYYY-MM-DD で指定してください。"
            ) from None
        approvers = data.get("approvers") or []
        if not isinstance(approvers, list) or not all(
            isinstance(a, str) and a.strip() for a in approvers
        ):
            raise InvalidInput("invalid_approval", "approvers（決裁者）は文字列のリストです。")
        ext_sys, ext_id = data.get("external_system"), data.get("external_id")
        if (ext_sys is None) != (ext_id is None):
            raise InvalidInput(
                "invalid_approval", "external_system と external_id は両方指定してください。"
            )
        for v in (ext_sys, ext_id):
            if v is not None and (not isinstance(v, str) or not v.strip() or len(v) > 200):
                raise InvalidInput("invalid_approval", "external_system / external_id が不正です。")
        return cls(
            approved_on=approved_on,
            approvers=[a.strip() for a in approvers],
            external_system=ext_sys,
            external_id=ext_id,
        )


def _record_approval(
    session: Session, actor: Actor, doc: Document, approval: ApprovalIn, case_id: str | None
) -> Approval:
    row = Approval(
        document_id=doc.id or 0,
        approved_on=approval.approved_on,
        approvers=approval.approvers,
        external_system=approval.external_system,
        external_id=approval.external_id,
        recorded_by=actor.user_id or None,
    )
    session.add(row)
    audit.record(
        session,
        actor=actor.login,
        action=AuditAction.DOCUMENT_APPROVED,
        target_type="document",
        target_id=doc.id or 0,
        case_id=case_id,
        details={
            "approved_on": approval.approved_on.isoformat(),
            "approvers": approval.approvers,
            "external_system": approval.external_system,
            "external_id": approval.external_id,
        },
    )
    return row


def approve(
    session: Session, actor: Actor, document_id: int, approval: ApprovalIn, *, timezone: str
) -> Document:
    """決裁: declare a working document official; its content is frozen from now on."""
    doc = get_document(session, actor, document_id)
    _require_live(doc)
    _folder, case = _require_doc_write(session, actor, doc)
    if doc.status == "official":
        raise Conflict("already_official", "この文書は既に決裁済みです。")
    if case is None:
        raise InvalidInput(
            "approval_needs_case",
            "決裁できるのは案件フォルダの文書です。案件フォルダに写しを作ってから決裁してください。",
        )
    require_external_system(actor, approval.external_system)
    if approval.external_system:
        other = _by_external_ref(session, approval.external_system, approval.external_id or "")
        if other is not None and other.id != doc.id:
            raise Conflict("external_id_conflict", "同じ外部IDの文書が既に登録されています。")
        doc.external_system, doc.external_id = approval.external_system, approval.external_id
    doc.status = DocumentStatus.OFFICIAL
    doc.approved_at = utcnow()
    doc.document_class_id = case.document_class_id
    doc.updated_at = utcnow()
    session.add(doc)
    session.flush()
    _record_approval(session, actor, doc, approval, case.case_id)
    if doc.original_id is not None:
        original = session.get(Document, doc.original_id)
        if original is not None and original.status != "official":
            promote_to_original(session, doc)
    if case.status == "closed":
        case_scheduler().case_closed(session, case, timezone=timezone)
    enqueue_index(session, doc.sha256, IndexReason.APPROVE)
    return doc
