"""保存期間・廃棄・移管 shapes: holds, extensions, the due list, batches, certificates."""

from __future__ import annotations

from typing import Any

from genpon.api.contracts.common import IsoDate, IsoTime, Listing
from pydantic import BaseModel


class HoldPublic(BaseModel):
    id: int
    hold_type: str
    hold_type_label: str
    scope: str
    document_id: int | None
    case_pk: int | None
    document_class_id: int | None
    reason: str
    reference: str | None
    placed_by: str
    placed_at: IsoTime | None
    active: bool
    released_by: str | None
    released_at: IsoTime | None
    release_reason: str | None


class HoldsPublic(Listing[HoldPublic]):
    pass


class ExtensionPublic(BaseModel):
    id: int
    scope: str
    document_id: int | None
    case_pk: int | None
    document_class_id: int | None
    years: int
    reason: str
    created_by: str
    created_at: IsoTime | None


class ExtensionsPublic(Listing[ExtensionPublic]):
    pass


class ExtensionResultPublic(ExtensionPublic):
    documents_rescheduled: int


class DueHold(BaseModel):
    id: int
    hold_type: str
    label: str
    scope: str


class DueItemPublic(BaseModel):
    document_id: int
    title: str
    filename: str
    sha256: str
    size: int
    case_id: str | None
    class_code: str | None
    organization_code: str | None
    retention: str | None
    retention_start: IsoDate | None
    retention_end: IsoDate | None
    disposition: str
    disposition_label: str
    is_copy: bool
    original_id: int | None
    held: bool
    holds: list[DueHold]
    batch_id: int | None


class DueGroupPublic(BaseModel):
    case_id: str | None
    case_title: str | None
    class_code: str | None
    class_name: str | None
    disposition: str
    items: list[DueItemPublic]


class DuePublic(BaseModel):
    """The disposition list (廃棄・移管の対象) as of ``as_of``, grouped by case; ``count`` is
    every due item matching the filters, the page may hold fewer."""

    as_of: IsoDate
    count: int
    offset: int
    limit: int
    groups: list[DueGroupPublic]


class BatchPublic(BaseModel):
    id: int
    action: str
    status: str
    title: str
    as_of: IsoDate
    created_by: str
    created_at: IsoTime | None
    decided_by: str | None
    decided_at: IsoTime | None
    executed_by: str | None
    executed_at: IsoTime | None
    acknowledged_by: str | None
    acknowledged_at: IsoTime | None
    receipt_reference: str | None
    certificate_id: str | None
    package: str | None
    item_count: int
    counts: dict[str, int]


class BatchesPublic(Listing[BatchPublic]):
    pass


class BatchItemPublic(BaseModel):
    document_id: int
    title: str
    state: str
    sha256: str
    retention_end: IsoDate | None
    decision: str
    decided_by: str | None
    decision_reason: str | None
    status: str
    result: str | None


class BatchItemsPublic(BaseModel):
    data: list[BatchItemPublic]


class ExecutionReportPublic(BaseModel):
    """``skipped``: the items left out, each ``{document_id, reason}`` (and ``message``)."""

    batch_id: int
    status: str
    done: int
    skipped: list[dict[str, Any]]
    certificate_id: str | None
    package: str | None


class CertificatePublic(BaseModel):
    certificate_id: str
    batch_id: int
    document_id: int | None
    key_id: str
    issued_at: IsoTime | None
    item_count: int | None


class PublicKeysPublic(BaseModel):
    """PEM public keys by key id (for checking certificates offline)."""

    keys: dict[str, str]


class RegisterRowPublic(BaseModel):
    """One line of the file register (法人文書ファイル管理簿)."""

    fiscal_year: int
    class_large: str
    class_medium: str
    class_small: str
    title: str
    organization: str
    retention_start: IsoDate | None
    retention: str | None
    extension_years: int
    retention_end: IsoDate | None
    medium: str
    location: str
    manager: str
    disposition: str | None
    remarks: str


class RegisterPublic(Listing[RegisterRowPublic]):
    pass


# The signed certificate file (``download=true``) is the certificate body as issued.
SignedCertificate = dict[str, Any]
