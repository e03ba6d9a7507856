"""Tables of the retention domain: holds (保留), extensions (延長), disposition batches
(廃棄伺い・移管) with their items, tombstones of disposed documents and disposal certificates.

Scopes: a hold or an extension targets exactly one of a document, a case or a document class
(``scope`` says which; the matching ``*_id`` column is set, the others are NULL). A class scope
covers its sub-classes too.

Batch life cycle (``DispositionBatch.status``)::

    pending ──approve/reject (another records officer, item by item or whole)──▶ approved | rejected
    approved ──execute──▶ executing ──(every approved item done or skipped)──▶ executed   (destroy)
    approved ──execute──▶ exported ──acknowledge (archives received it)──▶ transferred     (transfer)

Item ``decision``: pending → approved | rejected; item ``status``: pending → done | skipped.
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Any

from genpon.core.choices import ENUM_VALUES, one_of
from genpon.core.clock import utcnow
from genpon.records.models import Document
from genpon.retention.rules import HoldType
from sqlalchemy import JSON, BigInteger, Column, DateTime, Index, String, UniqueConstraint
from sqlmodel import Field, SQLModel


class Scope(StrEnum):
    """What a hold or an extension targets."""

    DOCUMENT = "document"
    CASE = "case"
    CLASS = "class"  # a document class and its sub-classes


class BatchAction(StrEnum):
    DESTROY = "destroy"  # 廃棄
    TRANSFER = "transfer"  # 移管


class BatchStatus(StrEnum):
    """See the life cycle in the module docstring."""

    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    EXECUTING = "executing"
    EXECUTED = "executed"
    EXPORTED = "exported"
    ACKNOWLEDGING = "acknowledging"
    TRANSFERRED = "transferred"


class ItemDecision(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"


class ItemStatus(StrEnum):
    PENDING = "pending"
    DONE = "done"
    SKIPPED = "skipped"  # blocked at execution (a hold, a changed document …): see ``result``


class TombstoneAction(StrEnum):
    DESTROYED = "destroyed"
    TRANSFERRED = "transferred"


HOLD_SCOPES = tuple(s.value for s in Scope)
BATCH_ACTIONS = tuple(a.value for a in BatchAction)
BATCH_OPEN_STATUSES = ("pending", "approved", "executing", "exported", "acknowledging")


def _ts(nullable: bool = False) -> Any:
    return Field(
        default_factory=utcnow if not nullable else None,
        sa_column=Column(DateTime(timezone=True), nullable=nullable),
    )


# The disposition list at a million documents: the count reads only this index (end and start
# are both in it), and a page walks the second one in its display order (case, class, id) and
# stops after ``limit`` due rows instead of sorting every due document.
_doc = Document.__table__.c  # type: ignore[attr-defined]
Index("ix_document_retention_due", _doc.state, _doc.retention_end, _doc.retention_start)
Index(
    "ix_document_retention_page",
    _doc.state,
    _doc.case_pk,
    _doc.document_class_id,
    _doc.id,
    _doc.retention_end,
    _doc.retention_start,
)


class RetentionHold(SQLModel, table=True):
    """保留: blocks disposal of a document, a case or a class while ``released_at`` is NULL."""

    __tablename__ = "retention_hold"
    model_config = ENUM_VALUES
    __table_args__ = (
        Index("ix_retention_hold_active", "released_at", "scope"),
        Index("ix_retention_hold_document", "document_id"),
        Index("ix_retention_hold_case", "case_pk"),
        Index("ix_retention_hold_class", "document_class_id"),
        one_of("retention_hold", "hold_type", HoldType),
        one_of("retention_hold", "scope", Scope),
    )
    id: int | None = Field(default=None, primary_key=True)
    hold_type: HoldType = Field(sa_type=String(16))
    scope: Scope = Field(sa_type=String(16))
    document_id: int | None = Field(default=None, foreign_key="document.id")
    case_pk: int | None = Field(default=None, foreign_key="case_record.id")
    document_class_id: int | None = Field(default=None, foreign_key="document_class.id")
    reason: str = Field(max_length=1000)
    reference: str | None = Field(default=None, max_length=200)  # 事件番号, 請求番号 …
    placed_by: str = Field(max_length=64)
    placed_at: datetime = _ts()
    released_by: str | None = Field(default=None, max_length=64)
    released_at: datetime | None = _ts(nullable=True)
    release_reason: str | None = Field(default=None, max_length=1000)


class RetentionExtension(SQLModel, table=True):
    """延長: adds ``years`` to the retention of a document, a case or a class (cumulative)."""

    __tablename__ = "retention_extension"
    model_config = ENUM_VALUES
    __table_args__ = (
        Index("ix_retention_extension_document", "document_id"),
        Index("ix_retention_extension_case", "case_pk"),
        Index("ix_retention_extension_class", "document_class_id"),
        one_of("retention_extension", "scope", Scope),
    )
    id: int | None = Field(default=None, primary_key=True)
    scope: Scope = Field(sa_type=String(16))
    document_id: int | None = Field(default=None, foreign_key="document.id")
    case_pk: int | None = Field(default=None, foreign_key="case_record.id")
    document_class_id: int | None = Field(default=None, foreign_key="document_class.id")
    years: int
    reason: str = Field(max_length=1000)
    created_by: str = Field(max_length=64)
    created_at: datetime = _ts()


class DispositionBatch(SQLModel, table=True):
    """廃棄伺い (destroy) or 移管 (transfer) batch, reviewed by a second records officer."""

    __tablename__ = "disposition_batch"
    model_config = ENUM_VALUES
    __table_args__ = (
        one_of("disposition_batch", "action", BatchAction),
        one_of("disposition_batch", "status", BatchStatus),
    )
    id: int | None = Field(default=None, primary_key=True)
    action: BatchAction = Field(sa_type=String(16))
    status: BatchStatus = Field(default=BatchStatus.PENDING, index=True, sa_type=String(16))
    title: str = Field(default="", max_length=500)
    as_of: date
    organization_id: int | None = Field(default=None, foreign_key="organization.id")
    created_by: str = Field(max_length=64)
    created_at: datetime = _ts()
    decided_by: str | None = Field(default=None, max_length=64)
    decided_at: datetime | None = _ts(nullable=True)
    executed_by: str | None = Field(default=None, max_length=64)
    started_at: datetime | None = _ts(nullable=True)
    executed_at: datetime | None = _ts(nullable=True)
    acknowledged_by: str | None = Field(default=None, max_length=64)
    acknowledged_at: datetime | None = _ts(nullable=True)
    receipt_reference: str | None = Field(default=None, max_length=200)
    package_path: str | None = Field(default=None, max_length=1000)
    certificate_id: str | None = Field(default=None, max_length=64)
    item_count: int = 0


class DispositionItem(SQLModel, table=True):
    """One document of a batch, with its review decision and execution result."""

    __tablename__ = "disposition_item"
    model_config = ENUM_VALUES
    __table_args__ = (
        UniqueConstraint("batch_id", "document_id", name="uq_disposition_item"),
        Index("ix_disposition_item_document", "document_id"),
        one_of("disposition_item", "decision", ItemDecision),
        one_of("disposition_item", "status", ItemStatus),
    )
    id: int | None = Field(default=None, primary_key=True)
    batch_id: int = Field(foreign_key="disposition_batch.id", index=True)
    document_id: int = Field(foreign_key="document.id")
    decision: ItemDecision = Field(default=ItemDecision.PENDING, sa_type=String(16))
    decided_by: str | None = Field(default=None, max_length=64)
    decided_at: datetime | None = _ts(nullable=True)
    decision_reason: str | None = Field(default=None, max_length=1000)
    status: ItemStatus = Field(default=ItemStatus.PENDING, sa_type=String(16))
    result: str | None = Field(default=None, max_length=200)  # why skipped
    executed_at: datetime | None = _ts(nullable=True)


class Tombstone(SQLModel, table=True):
    """What remains of a destroyed or transferred document: metadata, hash, size, approvals."""

    __tablename__ = "retention_tombstone"
    model_config = ENUM_VALUES
    __table_args__ = (one_of("retention_tombstone", "action", TombstoneAction),)
    document_id: int = Field(primary_key=True, foreign_key="document.id")
    action: TombstoneAction = Field(sa_type=String(16))
    batch_id: int = Field(foreign_key="disposition_batch.id", index=True)
    sha256: str = Field(max_length=64, index=True)
    size: int = Field(sa_column=Column(BigInteger, nullable=False))
    title: str = Field(max_length=500)
    filename: str = Field(max_length=255)
    case_id: str | None = Field(default=None, max_length=64)
    class_code: str | None = Field(default=None, max_length=32)
    organization_id: int = Field(foreign_key="organization.id")
    retention_start: date | None = None
    retention_end: date | None = None
    requested_by: str = Field(max_length=64)
    approved_by: str = Field(max_length=64)
    executed_by: str = Field(max_length=64)
    disposed_at: datetime = _ts()
    content_removed: bool = False


class DisposalCertificate(SQLModel, table=True):
    """廃棄証明書 of a destroy batch: the signed JSON, also stored as a record (document)."""

    __tablename__ = "disposal_certificate"
    id: int | None = Field(default=None, primary_key=True)
    certificate_id: str = Field(max_length=64, unique=True)
    batch_id: int = Field(foreign_key="disposition_batch.id", unique=True)
    document_id: int | None = Field(default=None, foreign_key="document.id")
    key_id: str = Field(max_length=32)
    body: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    issued_at: datetime = _ts()
