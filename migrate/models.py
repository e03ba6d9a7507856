"""Tables of the legacy import: runs, per-entry state and provenance, text signatures,
near-duplicate clusters.

``import_entry`` is both the resumable work list of a run (one row per path seen, with its
state) and the permanent provenance record: where a file was (raw path bytes and a decoded
display path), its mtime and owner, and which document it became ("where did my file go").
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from genpon.core.choices import ENUM_VALUES, one_of
from genpon.core.clock import utcnow
from genpon.records.models import FolderKind, TextStatus
from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    DateTime,
    Index,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlmodel import Field, SQLModel


class RunStatus(StrEnum):
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"


class Phase(StrEnum):
    """Phases of a run, in order; a resumed run starts again at the recorded one."""

    SCAN = "scan"
    HASH = "hash"
    TEXT = "text"
    DEPOSIT = "deposit"
    NEAR = "near"
    DONE = "done"


class NameEncoding(StrEnum):
    """How a path's raw bytes were decoded for display."""

    UTF8 = "utf-8"
    CP932 = "cp932"
    UNDECODABLE = "undecodable"


class EntryType(StrEnum):
    FILE = "file"
    SYMLINK = "symlink"
    SPECIAL = "special"
    DIRECTORY = "directory"


class EntryState(StrEnum):
    SEEN = "seen"
    HASHED = "hashed"
    DONE = "done"
    PLANNED = "planned"  # a dry run's decision
    SKIPPED = "skipped"


class EntryRole(StrEnum):
    ORIGINAL = "original"
    COPY = "copy"


class NearScope(StrEnum):
    IMPORT = "import"  # within one run
    GENPON = "genpon"  # documents already in Genpon


RUN_STATUSES = tuple(s.value for s in RunStatus)
ENTRY_STATES = tuple(s.value for s in EntryState)
# An import goes into a team or a shared folder, never a case folder.
IMPORT_FOLDER_KINDS = (FolderKind.TEAM.value, FolderKind.SHARED.value)
# A signature is computed from an extraction that ran: never ``pending``.
SIGNATURE_STATUSES = tuple(s.value for s in TextStatus if s is not TextStatus.PENDING)


def _ts(nullable: bool = False) -> Any:
    return Field(
        default_factory=utcnow if not nullable else None,
        sa_column=Column(DateTime(timezone=True), nullable=nullable),
    )


class ImportRun(SQLModel, table=True):
    """One ``genpon import`` of a tree into a team or shared folder."""

    __tablename__ = "import_run"
    model_config = ENUM_VALUES
    __table_args__ = (
        one_of("import_run", "folder_kind", IMPORT_FOLDER_KINDS),
        one_of("import_run", "status", RunStatus),
        one_of("import_run", "phase", Phase),
    )
    id: int | None = Field(default=None, primary_key=True)
    source_root: str = Field(sa_column=Column(Text, nullable=False))
    source_root_raw: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    organization_id: int = Field(foreign_key="organization.id", index=True)
    folder_kind: FolderKind = Field(sa_type=String(16))
    folder_name: str = Field(max_length=255)
    root_folder_id: int | None = Field(default=None, foreign_key="folder.id")
    dry_run: bool = False
    with_text: bool = True
    status: RunStatus = Field(default=RunStatus.RUNNING, index=True, sa_type=String(16))
    phase: Phase = Field(default=Phase.SCAN, sa_type=String(16))
    original_rule: str = Field(max_length=200)
    near_threshold: float = 0.8
    started_by: str = Field(max_length=64)
    started_at: datetime = _ts()
    finished_at: datetime | None = _ts(nullable=True)
    summary: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


class ImportEntry(SQLModel, table=True):
    """A path seen by a run: its state, why it was skipped, and what it became."""

    __tablename__ = "import_entry"
    model_config = ENUM_VALUES
    __table_args__ = (
        UniqueConstraint("run_id", "path_key", name="uq_import_entry_path"),
        Index("ix_import_entry_run_state", "run_id", "state"),
        Index("ix_import_entry_run_sha", "run_id", "sha256"),
        one_of("import_entry", "name_encoding", NameEncoding),
        one_of("import_entry", "entry_type", EntryType),
        one_of("import_entry", "state", EntryState),
        one_of("import_entry", "role", EntryRole),
    )
    id: int | None = Field(default=None, primary_key=True)
    run_id: int = Field(foreign_key="import_run.id")
    seq: int = 0  # walk order
    path_key: str = Field(max_length=64)  # sha256 of the raw relative path
    rel_path_raw: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    rel_path: str = Field(sa_column=Column(Text, nullable=False))  # decoded, NFC
    name_encoding: NameEncoding = Field(default=NameEncoding.UTF8, sa_type=String(16))
    entry_type: EntryType = Field(default=EntryType.FILE, sa_type=String(16))
    state: EntryState = Field(default=EntryState.SEEN, sa_type=String(16))
    reason: str | None = Field(default=None, max_length=64)
    detail: str | None = Field(default=None, sa_column=Column(Text))
    size: int | None = Field(default=None, sa_column=Column(BigInteger))
    mtime: datetime | None = _ts(nullable=True)
    mtime_ns: int | None = Field(default=None, sa_column=Column(BigInteger))
    owner: str | None = Field(default=None, max_length=64)
    uid: int | None = None
    sha256: str | None = Field(default=None, max_length=64)
    mime_type: str | None = Field(default=None, max_length=255)
    role: EntryRole | None = Field(default=None, sa_type=String(16))
    document_id: int | None = Field(default=None, foreign_key="document.id", index=True)
    original_document_id: int | None = Field(default=None)
    updated_at: datetime = _ts()


class TextSignature(SQLModel, table=True):
    """MinHash of a content's text (NFKC character shingles), computed once per SHA-256."""

    __tablename__ = "text_signature"
    model_config = ENUM_VALUES
    __table_args__ = (one_of("text_signature", "status", SIGNATURE_STATUSES),)
    sha256: str = Field(primary_key=True, max_length=64)
    status: TextStatus = Field(sa_type=String(16))
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
    model_config = ENUM_VALUES
    __table_args__ = (one_of("near_dup_cluster", "scope", NearScope),)
    id: int | None = Field(default=None, primary_key=True)
    scope: NearScope = Field(index=True, sa_type=String(16))
    run_id: int | None = Field(default=None, foreign_key="import_run.id", index=True)
    threshold: float
    size: int
    max_score: float
    min_score: float
    members: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    pairs: list[Any] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    created_at: datetime = _ts()
