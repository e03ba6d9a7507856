"""Tables of the records domain: common master, cases, folders, documents, audit log.

Names follow DESIGN.md. Timestamps are UTC; business dates (年度, 起算日) are computed in the
city's time zone by the services.
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Any

from genpon.core.choices import ENUM_VALUES, one_of
from genpon.core.clock import utcnow
from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    DateTime,
    Index,
    LargeBinary,
    String,
    UniqueConstraint,
    text,
)
from sqlmodel import Field, SQLModel


class UserKind(StrEnum):
    PERSON = "person"
    SERVICE = "service"  # another system, depositing through the API


class RetentionCode(StrEnum):
    """保存期間 of a document class as stored (``retention.rules.RetentionPeriod`` reads it)."""

    LT1 = "lt1"
    Y1 = "1"
    Y3 = "3"
    Y5 = "5"
    Y10 = "10"
    Y30 = "30"
    PERMANENT = "permanent"


class DispositionCode(StrEnum):
    """満了時の措置 of a document class as stored (``retention.rules.Disposition``)."""

    DESTROY = "destroy"
    TRANSFER = "transfer"


class StartRuleCode(StrEnum):
    """起算日の規則 of a document class as stored (``retention.rules.StartRule``)."""

    NEXT_FISCAL_YEAR = "next_fiscal_year"
    CLOSING_DATE = "closing_date"


class CaseStatus(StrEnum):
    OPEN = "open"
    CLOSED = "closed"


class FolderKind(StrEnum):
    CASE = "case"  # 案件フォルダ
    TEAM = "team"  # チームフォルダ
    SHARED = "shared"  # 組織共用フォルダ


class BlobState(StrEnum):
    STORED = "stored"
    DELETED = "deleted"  # content removed by a disposal


class DocumentStatus(StrEnum):
    WORKING = "working"
    OFFICIAL = "official"  # 決裁済: content never changes


class DocumentState(StrEnum):
    LIVE = "live"
    DESTROYED = "destroyed"
    TRANSFERRED = "transferred"


class IndexReason(StrEnum):
    """Why a content was queued for the search index."""

    DEPOSIT = "deposit"
    COPY = "copy"
    APPROVE = "approve"
    VERSION = "version"
    DESTROY = "destroy"
    OCR = "ocr"  # ``genpon ocr``: the text was extracted again with OCR


class TextStatus(StrEnum):
    """Outcome of text extraction (``pending`` until it ran)."""

    PENDING = "pending"
    OK = "ok"
    EMPTY = "empty"
    FAILED = "failed"
    UNSUPPORTED = "unsupported"


ROLES = ("staff", "records_officer", "auditor", "admin")
RETENTIONS = tuple(r.value for r in RetentionCode)
DISPOSITIONS = tuple(d.value for d in DispositionCode)
FOLDER_KINDS = tuple(k.value for k in FolderKind)


def _ts(nullable: bool = False) -> Any:
    return Field(
        default_factory=utcnow if not nullable else None,
        sa_column=Column(DateTime(timezone=True), nullable=nullable),
    )


class Organization(SQLModel, table=True):
    """所属: hierarchical organization unit (e.g. 総務部 > 総務課)."""

    __tablename__ = "organization"
    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(max_length=32, unique=True, index=True)
    name: str = Field(max_length=200)
    parent_id: int | None = Field(default=None, foreign_key="organization.id", index=True)
    active: bool = True
    created_at: datetime = _ts()
    updated_at: datetime = _ts()


class User(SQLModel, table=True):
    """職員 or a service account of another system (kind="service")."""

    __tablename__ = "user_account"
    model_config = ENUM_VALUES
    __table_args__ = (one_of("user_account", "kind", UserKind),)
    id: int | None = Field(default=None, primary_key=True)
    login: str = Field(max_length=64, unique=True, index=True)
    name: str = Field(max_length=200)
    organization_id: int = Field(foreign_key="organization.id", index=True)
    kind: UserKind = Field(default=UserKind.PERSON, sa_type=String(16))
    roles: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    password_hash: str | None = Field(default=None, max_length=255)
    active: bool = True
    created_at: datetime = _ts()
    updated_at: datetime = _ts()


class ServiceGrant(SQLModel, table=True):
    """Organizations a service account may deposit into (case folders only)."""

    __tablename__ = "service_grant"
    user_id: int = Field(foreign_key="user_account.id", primary_key=True)
    organization_id: int = Field(foreign_key="organization.id", primary_key=True)


class ApiKey(SQLModel, table=True):
    """Bearer key ``gp_<prefix>_<secret>``; only a SHA-256 of the secret is stored."""

    __tablename__ = "api_key"
    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="user_account.id", index=True)
    prefix: str = Field(max_length=16, unique=True, index=True)
    secret_hash: str = Field(max_length=64)
    label: str = Field(default="", max_length=200)
    created_at: datetime = _ts()
    revoked_at: datetime | None = _ts(nullable=True)


class WebSignIn(SQLModel, table=True):
    """画面のサインイン: one row per browser sign-in, so signing out ends it on the server (a
    copied cookie is refused afterwards). Only a SHA-256 of the session token is stored."""

    __tablename__ = "web_sign_in"
    id: int | None = Field(default=None, primary_key=True)
    token_hash: str = Field(max_length=64, unique=True, index=True)
    user_id: int = Field(foreign_key="user_account.id", index=True)
    key_prefix: str | None = Field(default=None, max_length=16)
    created_at: datetime = _ts()
    expires_at: datetime = _ts()
    ended_at: datetime | None = _ts(nullable=True)


class SignInFailures(SQLModel, table=True):
    """Consecutive sign-in failures of one throttle key (``account:<login>``,
    ``client:<address>``, ``apikey:<address>``), shared by every server process
    (``records.users.SignInThrottle``). ``last_failure`` is in seconds since the epoch."""

    __tablename__ = "sign_in_failures"
    key: str = Field(primary_key=True, max_length=200)
    failures: int
    last_failure: float


class DocumentClass(SQLModel, table=True):
    """文書分類: 大(1)・中(2)・小(3) hierarchy carrying the retention rule."""

    __tablename__ = "document_class"
    model_config = ENUM_VALUES
    __table_args__ = (
        one_of("document_class", "retention", RetentionCode),
        one_of("document_class", "disposition", DispositionCode),
        one_of("document_class", "start_rule", StartRuleCode),
    )
    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(max_length=32, unique=True, index=True)
    name: str = Field(max_length=200)
    parent_id: int | None = Field(default=None, foreign_key="document_class.id", index=True)
    level: int = 1
    retention: RetentionCode = Field(default=RetentionCode.Y30, sa_type=String(16))
    disposition: DispositionCode = Field(default=DispositionCode.DESTROY, sa_type=String(16))
    start_rule: StartRuleCode = Field(default=StartRuleCode.NEXT_FISCAL_YEAR, sa_type=String(32))
    active: bool = True
    created_at: datetime = _ts()
    updated_at: datetime = _ts()


class Case(SQLModel, table=True):
    """案件: one piece of work; ``case_id`` is the business ID (issued here or elsewhere)."""

    __tablename__ = "case_record"
    model_config = ENUM_VALUES
    __table_args__ = (one_of("case_record", "status", CaseStatus),)
    id: int | None = Field(default=None, primary_key=True)
    case_id: str = Field(max_length=64, unique=True, index=True)
    title: str = Field(max_length=500)
    organization_id: int = Field(foreign_key="organization.id", index=True)
    document_class_id: int = Field(foreign_key="document_class.id", index=True)
    status: CaseStatus = Field(default=CaseStatus.OPEN, sa_type=String(16))
    fiscal_year: int
    opened_on: date
    closed_at: datetime | None = _ts(nullable=True)
    issuer: str = Field(default="genpon", max_length=64)  # genpon | external system name
    created_by: int | None = Field(default=None, foreign_key="user_account.id")
    created_at: datetime = _ts()
    updated_at: datetime = _ts()


class CaseMember(SQLModel, table=True):
    __tablename__ = "case_member"
    case_pk: int = Field(foreign_key="case_record.id", primary_key=True)
    user_id: int = Field(foreign_key="user_account.id", primary_key=True, index=True)


class CaseSequence(SQLModel, table=True):
    """Next serial number per (fiscal year, organization) for issued case IDs."""

    __tablename__ = "case_sequence"
    fiscal_year: int = Field(primary_key=True)
    org_code: str = Field(primary_key=True, max_length=32)
    last: int = 0


class Folder(SQLModel, table=True):
    """案件フォルダ (case) / チームフォルダ (team) / 組織共用フォルダ (shared)."""

    __tablename__ = "folder"
    model_config = ENUM_VALUES
    __table_args__ = (
        UniqueConstraint("parent_id", "name", name="uq_folder_parent_name"),
        one_of("folder", "kind", FolderKind),
    )
    id: int | None = Field(default=None, primary_key=True)
    kind: FolderKind = Field(index=True, sa_type=String(16))
    name: str = Field(max_length=255)
    parent_id: int | None = Field(default=None, foreign_key="folder.id", index=True)
    organization_id: int = Field(foreign_key="organization.id", index=True)
    case_pk: int | None = Field(default=None, foreign_key="case_record.id", index=True)
    created_by: int | None = Field(default=None, foreign_key="user_account.id")
    created_at: datetime = _ts()


class Blob(SQLModel, table=True):
    """One stored content, addressed by SHA-256. Written to the store before this row commits."""

    __tablename__ = "blob"
    model_config = ENUM_VALUES
    __table_args__ = (
        Index("ix_blob_last_fixity_at", "last_fixity_at"),  # oldest-checked first (fixity)
        one_of("blob", "state", BlobState),
    )
    sha256: str = Field(primary_key=True, max_length=64)
    size: int = Field(sa_column=Column(BigInteger, nullable=False))
    mime_type: str = Field(max_length=255)
    state: BlobState = Field(default=BlobState.STORED, sa_type=String(16))
    stored_at: datetime = _ts()
    deleted_at: datetime | None = _ts(nullable=True)
    last_fixity_at: datetime | None = _ts(nullable=True)
    fixity_ok: bool | None = None


class Document(SQLModel, table=True):
    """A placement of content in a folder. The original (原本) has ``original_id`` NULL;
    every copy (写し) points to it. Official (決裁済) documents never change content."""

    __tablename__ = "document"
    model_config = ENUM_VALUES
    __table_args__ = (
        Index(
            "uq_document_one_original",
            "sha256",
            unique=True,
            sqlite_where=text("original_id IS NULL AND state = 'live'"),
            postgresql_where=text("original_id IS NULL AND state = 'live'"),
        ),
        Index(
            "uq_document_external_ref",
            "external_system",
            "external_id",
            unique=True,
            sqlite_where=text("external_system IS NOT NULL"),
            postgresql_where=text("external_system IS NOT NULL"),
        ),
        Index("ix_document_sha_state", "sha256", "state"),
        one_of("document", "status", DocumentStatus),
        one_of("document", "state", DocumentState),
    )
    id: int | None = Field(default=None, primary_key=True)
    folder_id: int = Field(foreign_key="folder.id", index=True)
    case_pk: int | None = Field(default=None, foreign_key="case_record.id", index=True)
    organization_id: int = Field(foreign_key="organization.id", index=True)
    document_class_id: int | None = Field(default=None, foreign_key="document_class.id")
    title: str = Field(max_length=500)
    filename: str = Field(max_length=255)
    sha256: str = Field(foreign_key="blob.sha256", max_length=64)
    size: int = Field(sa_column=Column(BigInteger, nullable=False))
    mime_type: str = Field(max_length=255)
    declared_type: str | None = Field(default=None, max_length=255)
    status: DocumentStatus = Field(default=DocumentStatus.WORKING, sa_type=String(16))
    state: DocumentState = Field(default=DocumentState.LIVE, sa_type=String(16))
    original_id: int | None = Field(default=None, foreign_key="document.id", index=True)
    supersedes_id: int | None = Field(default=None, foreign_key="document.id")
    version: int = 1
    doc_date: date
    external_system: str | None = Field(default=None, max_length=64)
    external_id: str | None = Field(default=None, max_length=200)
    retention_start: date | None = None
    retention_end: date | None = None
    provenance: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    approved_at: datetime | None = _ts(nullable=True)
    created_by: int | None = Field(default=None, foreign_key="user_account.id")
    created_at: datetime = _ts()
    updated_at: datetime = _ts()


class DocumentVersion(SQLModel, table=True):
    """Version history of a working document (版)."""

    __tablename__ = "document_version"
    __table_args__ = (UniqueConstraint("document_id", "version", name="uq_version"),)
    id: int | None = Field(default=None, primary_key=True)
    document_id: int = Field(foreign_key="document.id", index=True)
    version: int
    sha256: str = Field(foreign_key="blob.sha256", max_length=64)
    size: int = Field(sa_column=Column(BigInteger, nullable=False))
    filename: str = Field(max_length=255)
    mime_type: str = Field(max_length=255)
    created_by: int | None = Field(default=None, foreign_key="user_account.id")
    created_at: datetime = _ts()


class Approval(SQLModel, table=True):
    """決裁: approval record of an official document."""

    __tablename__ = "approval"
    id: int | None = Field(default=None, primary_key=True)
    document_id: int = Field(foreign_key="document.id", unique=True, index=True)
    approved_on: date
    approvers: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    external_system: str | None = Field(default=None, max_length=64)
    external_id: str | None = Field(default=None, max_length=200)
    recorded_by: int | None = Field(default=None, foreign_key="user_account.id")
    recorded_at: datetime = _ts()


class IdempotencyKey(SQLModel, table=True):
    """``Idempotency-Key`` header of a deposit: a retry after a lost response gets the same answer."""

    __tablename__ = "idempotency_key"
    user_id: int = Field(foreign_key="user_account.id", primary_key=True)
    key: str = Field(primary_key=True, max_length=200)
    fingerprint: str = Field(max_length=64)
    document_id: int = Field(foreign_key="document.id")
    created_at: datetime = _ts()


class AuditEvent(SQLModel, table=True):
    """Append-only, hash-chained audit log (監査ログ). Rows are only ever inserted."""

    __tablename__ = "audit_event"
    __table_args__ = (
        Index("ix_audit_target", "target_type", "target_id"),
        Index("ix_audit_case", "case_id"),
        Index("ix_audit_actor", "actor"),
    )
    seq: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    at: str = Field(max_length=32, index=True)  # canonical UTC text, part of the hash
    actor: str = Field(max_length=64)
    action: str = Field(max_length=64, index=True)
    target_type: str = Field(max_length=32)
    target_id: str = Field(max_length=128)
    case_id: str | None = Field(default=None, max_length=64)
    details: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    prev_hash: str = Field(max_length=64)
    hash: str = Field(max_length=64, unique=True)


class AuditHead(SQLModel, table=True):
    """Single row (id=1) locked by every appender: keeps one unbroken chain under concurrency."""

    __tablename__ = "audit_head"
    id: int = Field(default=1, primary_key=True)
    seq: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))
    hash: str = Field(max_length=64)


class IndexOutbox(SQLModel, table=True):
    """Search index work recorded in the same transaction as the document change."""

    __tablename__ = "index_outbox"
    model_config = ENUM_VALUES
    __table_args__ = (one_of("index_outbox", "reason", IndexReason),)
    id: int | None = Field(default=None, primary_key=True)
    sha256: str = Field(max_length=64, index=True)
    reason: IndexReason = Field(sa_type=String(32))
    created_at: datetime = _ts()
    # lease of the worker applying it (search.leases.claim); expired leases are taken again
    claimed_by: str | None = Field(default=None, max_length=64)
    lease_until: datetime | None = Field(
        default=None, sa_column=Column(DateTime(timezone=True), nullable=True)
    )


class BlobText(SQLModel, table=True):
    """Extracted text of a content (compressed), so the index can be rebuilt without
    re-extracting. Filled by the search domain."""

    __tablename__ = "blob_text"
    model_config = ENUM_VALUES
    __table_args__ = (one_of("blob_text", "status", TextStatus),)
    sha256: str = Field(primary_key=True, max_length=64, foreign_key="blob.sha256")
    status: TextStatus = Field(default=TextStatus.PENDING, sa_type=String(16))
    extractor: str | None = Field(default=None, max_length=32)
    reason: str | None = Field(default=None, max_length=500)
    text_z: bytes | None = Field(default=None, sa_column=Column(LargeBinary))
    chars: int = 0
    extracted_at: datetime | None = _ts(nullable=True)
    # OCR: engine and version, models, per page its outcome and mean confidence (search.ocr)
    details: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    # OCR: per page its lines of words with their boxes (search.ocr.page_words), zlib JSON
    words_z: bytes | None = Field(default=None, sa_column=Column(LargeBinary))
    # the directory of the snippet chunks (search.snippets): per chunk its start in the
    # normalized text and a bloom filter of its characters; None: not built yet
    chunk_dir: bytes | None = Field(default=None, sa_column=Column(LargeBinary))


class BlobTextChunk(SQLModel, table=True):
    """One fixed-size piece of a content's text for snippets (search.snippets): the original
    characters, their normalized form and the offsets where the two differ in length, zlib-
    compressed, so a snippet reads the piece holding the match instead of the whole text."""

    __tablename__ = "blob_text_chunk"
    sha256: str = Field(primary_key=True, max_length=64, foreign_key="blob_text.sha256")
    seq: int = Field(primary_key=True)
    data: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
