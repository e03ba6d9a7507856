"""Legacy import shapes: runs, entries ("where did my file go"), near-duplicate clusters."""

from __future__ import annotations

from typing import Any

from genpon.api.contracts.common import Listing, RawTime
from pydantic import BaseModel


class ImportRunPublic(BaseModel):
    id: int
    source_root: str
    organization_id: int
    folder_kind: str
    folder_name: str
    root_folder_id: int | None
    dry_run: bool
    status: str
    phase: str
    original_rule: str
    near_threshold: float
    started_by: str
    started_at: RawTime
    finished_at: RawTime | None
    summary: dict[str, Any]


class ImportRunsPublic(Listing[ImportRunPublic]):
    pass


class ImportEntryPublic(BaseModel):
    """One file or folder seen on the share. ``path_raw_hex``: the raw name bytes, when they
    are not the UTF-8 of ``path`` (e.g. Shift_JIS names)."""

    id: int
    run_id: int
    path: str
    path_raw_hex: str | None
    name_encoding: str
    entry_type: str
    state: str
    reason: str | None
    reason_ja: str | None
    detail: str | None
    size: int | None
    mtime: RawTime | None
    owner: str | None
    sha256: str | None
    mime_type: str | None
    role: str | None
    document_id: int | None
    original_document_id: int | None


class ImportEntriesPublic(Listing[ImportEntryPublic]):
    pass


class NearPair(BaseModel):
    a: str
    b: str
    score: float


class ClusterPublic(BaseModel):
    id: int
    scope: str
    run_id: int | None
    threshold: float
    size: int
    max_score: float
    min_score: float
    members: list[str]
    pairs: list[NearPair]


class RunClusterPublic(ClusterPublic):
    """``paths``: the legacy paths of each member (by SHA-256)."""

    paths: dict[str, list[str]]


class RunClustersPublic(Listing[RunClusterPublic]):
    pass


class ClusterDocument(BaseModel):
    id: int
    title: str
    is_original: bool


class DocumentClusterPublic(ClusterPublic):
    """``documents``: the documents in Genpon holding each member (by SHA-256)."""

    documents: dict[str, list[ClusterDocument]]


class DocumentClustersPublic(Listing[DocumentClusterPublic]):
    pass
