"""Retention services, shared ground: who may act (roles), reasons, and what a hold or an
extension applies to (:class:`Target`: a document, a case or a class).

The services themselves are split by what they change; each takes a session and the acting
:class:`~genpon.records.access.Actor`, checks the role itself and records an audit event in the
caller's transaction. The API, the CLI and the web UI only parse input and shape output.

- :mod:`.holding`: holds (保留) — :func:`~.holding.place_hold`, :func:`~.holding.release_hold`,
  :func:`~.holding.list_holds`, :func:`~.holding.get_hold`, :func:`~.holding.active_holds`
  (document id → blocking holds, used by the batch services too).
- :mod:`.extension`: extensions (延長) — :func:`~.extension.extend`,
  :func:`~.extension.list_extensions`.
- :mod:`.disposition_list`: the disposition list (廃棄・移管対象一覧) —
  :func:`~.disposition_list.due_list` (one page, grouped by case and class),
  :func:`~.disposition_list.iter_due` (every due item, streamed),
  :func:`~.disposition_list.write_due_csv`.
- :mod:`.batches`, :mod:`.disposal`, :mod:`.certificates`, :mod:`.transfers`: reviewed
  disposal and transfer.

Roles: records officers (文書管理担当) change retention; records officers, auditors and admins
read the lists.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from genpon.core.errors import InvalidInput, NotFound
from genpon.records.access import Actor, require_role
from genpon.records.models import Case, Document, DocumentClass
from genpon.retention.models import HOLD_SCOPES
from sqlmodel import Session, select

OFFICER_ROLES = ("records_officer",)
READER_ROLES = ("records_officer", "auditor", "admin")
MAX_REASON = 1000


def require_officer(actor: Actor) -> None:
    """文書管理担当 only (the local system operator passes too)."""
    require_role(actor, *OFFICER_ROLES)


def require_reader(actor: Actor) -> None:
    require_role(actor, *READER_ROLES)


def valid_reason(text: str | None, *, field_name: str = "reason") -> str:
    value = (text or "").strip()
    if not value:
        raise InvalidInput("reason_required", "理由を入力してください。", {"field": field_name})
    if len(value) > MAX_REASON:
        raise InvalidInput("reason_too_long", "理由は1000文字以内です。", {"field": field_name})
    return value


# --- targets --------------------------------------------------------------------------------


@dataclass
class Target:
    """What a hold or an extension applies to: one document, one case or one class."""

    scope: str
    document: Document | None = None
    case: Case | None = None
    document_class: DocumentClass | None = None

    @property
    def label(self) -> str:
        if self.document is not None:
            return f"document:{self.document.id}"
        if self.case is not None:
            return f"case:{self.case.case_id}"
        assert self.document_class is not None
        return f"class:{self.document_class.code}"

    @property
    def case_id(self) -> str | None:
        """The business case ID for the case timeline (None for a class)."""
        return self.case.case_id if self.case is not None else None

    @property
    def target_id(self) -> str:
        return self.label.split(":", 1)[1]


def resolve_target(session: Session, scope: str, ref: str | int, *, lock: bool = False) -> Target:
    """``scope`` document (ref = document id), case (ref = case ID) or class (ref = class code).
    With ``lock`` the row is locked (PostgreSQL) so a concurrent disposal waits for the hold."""
    if scope not in HOLD_SCOPES:
        raise InvalidInput(
            "invalid_scope", "対象は document / case / class のいずれかです。", {"scope": scope}
        )
    if scope == "document":
        try:
            doc_id = int(ref)
        except (TypeError, ValueError):
            raise InvalidInput("invalid_document_id", "文書IDは数値です。") from None
        stmt = select(Document).where(Document.id == doc_id)
        doc = session.exec(stmt.with_for_update() if lock else stmt).first()
        if doc is None:
            raise NotFound("document_not_found", "文書が見つかりません。", {"document_id": doc_id})
        case = session.get(Case, doc.case_pk) if doc.case_pk else None
        return Target(scope, document=doc, case=case)
    if scope == "case":
        stmt_c = select(Case).where(Case.case_id == str(ref))
        case = session.exec(stmt_c.with_for_update() if lock else stmt_c).first()
        if case is None:
            raise NotFound("case_not_found", f"案件 {ref} が見つかりません。", {"case_id": ref})
        return Target(scope, case=case)
    stmt_k = select(DocumentClass).where(DocumentClass.code == str(ref))
    cls = session.exec(stmt_k.with_for_update() if lock else stmt_k).first()
    if cls is None:
        raise NotFound(
            "document_class_not_found", f"文書分類 {ref} が見つかりません。", {"code": ref}
        )
    return Target(scope, document_class=cls)


def target_columns(target: Target) -> dict[str, Any]:
    return {
        "scope": target.scope,
        "document_id": target.document.id if target.document else None,
        "case_pk": target.case.id if target.case and target.scope == "case" else None,
        "document_class_id": target.document_class.id if target.document_class else None,
    }


def class_subtree(session: Session, class_id: int) -> list[int]:
    rows = session.exec(select(DocumentClass.id, DocumentClass.parent_id)).all()
    children: dict[int | None, list[int]] = defaultdict(list)
    for cid, parent in rows:
        assert cid is not None  # a stored row's primary key
        children[parent].append(cid)
    out, todo = [], [class_id]
    while todo:
        c = todo.pop()
        out.append(c)
        todo.extend(children.get(c, ()))
    return out
