"""Tables of the legacy import: runs, per-entry state and provenance, text signatures,
near-duplicate clusters.

``import_entry`` is both the resumable work list of a run (one row per path seen, with its
state) and the permanent provenance record: where a file was (raw path bytes and a decoded
display path), its mtime and owner, and which document it became ("where did my file go").
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from genpon.core.clock import utcnow
from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    DateTime,
    Index,
    LargeBinary,
    Text,
    UniqueConstraint,
)
from sqlmodel import Field, SQLModel

RUN_STATUSES = ("running", "completed", "failed")
ENTRY_STATES = ("seen", "hashed", "done", "planned", "skipped")


def _ts(nullable: bool = False) -> Any:
    return Field(
        default_factory=utcnow if not nullable else None,
        sa_column=Column(DateTime(timezone=True), nullable=nullable),
    )


class ImportRun(SQLModel, table=True):
    """One ``genpon import`` of a tree into a team or shared folder."""

    __tablename__ = "import_run"
    id: int | None = Field(default=None, primary_key=True)
    source_root: str = Field(sa_column=Column(Text, nullable=False))
    source_root_raw: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    organization_id: int = Field(foreign_key="organization.id", index=True)
    folder_kind: str = Field(max_length=16)
    folder_name: str = Field(max_length=255)
    root_folder_id: int | None = Field(default=None, foreign_key="folder.id")
    dry_run: bool = False
    with_text: bool = True
    status: str = Field(default="running", max_length=16, index=True)
    phase: str = Field(default="scan", max_length=16)
    original_rule: str = Field(max_length=200)
    near_threshold: float = 0.8
    started_by: str = Field(max_length=64)
    started_at: datetime = _ts()
    finished_at: datetime | None = _ts(nullable=True)
    summary: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


class ImportEntry(SQLModel, table=True):
    """A path seen by a run: its state, why it was skipped, and what it became."""

    __tablename__ = "import_entry"
    __table_args__ = (
        UniqueConstraint("run_id", "path_key", name="uq_import_entry_path"),
        Index("ix_import_entry_run_state", "run_id", "state"),
        Index("ix_import_entry_run_sha", "run_id", "sha256"),
    )
    id: int | None = Field(default=None, primary_key=True)
    run_id: int = Field(foreign_key="import_run.id")
    seq: int = 0  # walk order
    path_key: str = Field(max_length=64)  # sha256 of the raw relative path
    rel_path_raw: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    rel_path: str = Field(sa_column=Column(Text, nullable=False))  # decoded, NFC
    name_encoding: str = Field(default="utf-8", max_length=16)  # utf-8 | cp932 | undecodable
    entry_type: str = Field(default="file", max_length=16)  # file|symlink|special|directory
    state: str = Field(default="seen", max_length=16)
    reason: str | None = Field(default=None, max_length=64)
    detail: str | None = Field(default=None, sa_column=Column(Text))
    size: int | None = Field(default=None, sa_column=Column(BigInteger))
    mtime: datetime | None = _ts(nullable=True)
    mtime_ns: int | None = Field(default=None, sa_column=Column(BigInteger))
    owner: str | None = Field(default=None, max_length=64)
    uid: int | None = None
    sha256: str | None = Field(default=None, max_length=64)
    mime_type: str | None = Field(default=None, max_length=255)
    role: str | None = Field(default=None, max_length=16)  # original | copy
    document_id: int | None = Field(default=None, foreign_key="document.id", index=True)
    original_document_id: int | None = Field(default=None)
    updated_at: datetime = _ts()


class TextSignature(SQLModel, table=True):
    """MinHash of a content's text (NFKC character shingles), computed once per SHA-256."""

    __tablename__ = "text_signature"
    sha256: str = Field(primary_key=True, max_length=64)
    status: str = Field(max_length=16)  # ok | empty | failed | unsupported
    extractor: str | None = Field(default=None, max_length=32)
    reason: str | None = Field(default=None, max_length=500)
    chars: int = 0
    shingle_k: int = 5
    num_perm: int = 256
    hashvalues: bytes | None = Field(default=None, sa_column=Column(LargeBinary))
    created_at: datetime = _ts()


class NearDupCluster(SQLModel, table=True):
    """Contents whose texts are nearly the same: suggested for review, never merged.

    ``scope`` is ``import`` (within one run, ``run_id`` set) or ``genpon`` (documents already in
    Genpon, from ``genpon duplicates near``). ``pairs`` holds ``[sha_a, sha_b, score]``.
    """

    __tablename__ = "near_dup_cluster"
    id: int | None = Field(default=None, primary_key=True)
    scope: str = Field(max_length=16, index=True)
    run_id: int | None = Field(default=None, foreign_key="import_run.id", index=True)
    threshold: float
    size: int
    max_score: float
    min_score: float
    members: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    pairs: list[Any] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    created_at: datetime = _ts()
