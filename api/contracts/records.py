"""Master data, cases, folders, documents, API keys (shapes of :mod:`genpon.api.schemas`)."""

from __future__ import annotations

from typing import Any

from genpon.api.contracts.common import IsoDate, IsoTime, Page
from pydantic import BaseModel


class HealthPublic(BaseModel):
    status: str
    database: str
    storage: str
    search: str
    problems: list[str] = []
    workers: int = 0
    outbox_pending: int = 0
    outbox_oldest_seconds: float = 0.0
    can_sign: bool = False
    signing_problem: str | None = None


class OrganizationPublic(BaseModel):
    id: int
    code: str
    name: str
    parent_id: int | None
    parent_code: str | None


class OrganizationsPublic(Page[OrganizationPublic]):
    pass


class UserPublic(BaseModel):
    id: int
    login: str
    name: str
    organization_id: int
    kind: str
    roles: list[str]
    active: bool


class UsersPublic(Page[UserPublic]):
    pass


class DocumentClassPublic(BaseModel):
    id: int
    code: str
    name: str
    parent_id: int | None
    level: int
    retention: str
    disposition: str
    start_rule: str


class DocumentClassesPublic(Page[DocumentClassPublic]):
    pass


class MePublic(BaseModel):
    login: str
    kind: str
    roles: list[str]
    organization_id: int


class MasterImportPublic(BaseModel):
    kind: str
    created: int
    updated: int
    unchanged: int


class CasePublic(BaseModel):
    """A case. ``organization_code``, ``document_class_code`` and ``members`` are present when
    one case is read or changed (absent in lists); ``folder_id`` when its folder is known."""

    case_id: str
    title: str
    organization_id: int
    document_class_id: int
    status: str
    fiscal_year: int
    opened_on: IsoDate
    closed_at: IsoTime | None
    issuer: str
    created_at: IsoTime | None
    organization_code: str | None = None
    document_class_code: str | None = None
    members: list[str] | None = None
    folder_id: int | None = None


class CasesPublic(Page[CasePublic]):
    pass


class EventPublic(BaseModel):
    """An audit event: the canonical object that was hashed, plus its ``hash``."""

    seq: int
    at: IsoTime
    actor: str
    action: str
    target_type: str
    target_id: str
    case_id: str | None
    details: dict[str, Any]
    prev_hash: str
    hash: str


class EventsPublic(Page[EventPublic]):
    pass


class FolderPublic(BaseModel):
    id: int
    kind: str
    name: str
    parent_id: int | None
    organization_id: int
    case_pk: int | None
    path: str | None
    created_at: IsoTime | None


class FoldersPublic(Page[FolderPublic]):
    pass


class DocumentPublic(BaseModel):
    id: int
    title: str
    filename: str
    sha256: str
    size: int
    mime_type: str
    declared_type: str | None
    status: str
    state: str
    folder_id: int
    organization_id: int
    version: int
    is_original: bool
    original_id: int | None
    supersedes_id: int | None
    doc_date: IsoDate
    document_class_id: int | None
    external_system: str | None
    external_id: str | None
    retention_start: IsoDate | None
    retention_end: IsoDate | None
    approved_at: IsoTime | None
    created_at: IsoTime | None
    provenance: dict[str, Any] | None


class DocumentsPublic(Page[DocumentPublic]):
    pass


class OriginalRef(BaseModel):
    """The original (原本) of a copy; ``id``, ``folder_path`` and ``title`` only when the caller
    may see it (otherwise only that it exists)."""

    id: int | None
    visible: bool
    folder_path: str | None
    title: str | None


class ApprovalPublic(BaseModel):
    approved_on: IsoDate
    approvers: list[str]
    external_system: str | None
    external_id: str | None


class TextStatusPublic(BaseModel):
    """The content's extracted text: ``status`` pending (not extracted or not yet indexed),
    ok, empty, failed or unsupported (with ``reason``); ``indexed_at`` null while pending."""

    status: str
    reason: str | None
    extractor: str | None
    chars: int
    indexed_at: IsoTime | None


class DocumentViewPublic(DocumentPublic):
    folder_path: str
    folder_kind: str
    case_id: str | None
    copy_count: int
    original: OriginalRef | None
    approval: ApprovalPublic | None
    text: TextStatusPublic | None = None


class DepositInfo(BaseModel):
    created: bool
    is_copy: bool
    blob_stored: bool
    message: str | None = None  # present when the deposit became a copy (写し)


class DepositPublic(DocumentViewPublic):
    """A deposit's answer: 201 when a document was created, 200 on an idempotent replay."""

    deposit: DepositInfo


class VersionPublic(BaseModel):
    version: int
    sha256: str
    size: int
    filename: str
    mime_type: str
    created_at: IsoTime | None


class VersionsPublic(Page[VersionPublic]):
    pass


class HoldingOriginal(BaseModel):
    id: int | None  # None when the caller may not see the original
    visible: bool
    title: str | None


class PlacedDocumentPublic(DocumentPublic):
    folder_path: str


class HoldingPublic(BaseModel):
    """Who holds this content: the original and every placement the caller may see."""

    sha256: str
    original: HoldingOriginal | None
    documents: list[PlacedDocumentPublic]


class KeyIssuedPublic(BaseModel):
    prefix: str
    label: str
    api_key: str
    note: str


class KeyPublic(BaseModel):
    prefix: str
    label: str
    created_at: IsoTime | None
    revoked_at: IsoTime | None


class KeysPublic(Page[KeyPublic]):
    pass


class KeyRevokedPublic(BaseModel):
    prefix: str
    revoked_at: IsoTime | None
