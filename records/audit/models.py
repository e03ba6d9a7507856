"""Tables of the integrity domain: signed checkpoints and fixity audits (定期点検).

The audit events themselves (``AuditEvent``, ``AuditHead``) live in ``records/models.py``;
the per-blob check timestamps are ``Blob.last_fixity_at`` / ``Blob.fixity_ok``.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from genpon.core.choices import ENUM_VALUES, one_of
from genpon.core.clock import utcnow
from sqlalchemy import JSON, BigInteger, Column, DateTime, String
from sqlmodel import Field, SQLModel


class CheckpointReason(StrEnum):
    INTERVAL = "interval"
    DAILY = "daily"
    MANUAL = "manual"
    KEY_ROTATION = "key_rotation"
    EXPORT = "export"


class FixityMode(StrEnum):
    ALL = "all"
    SAMPLE = "sample"
    OLDER_THAN = "older_than"


class FixityStatus(StrEnum):
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


class FixityProblem(StrEnum):
    MISSING = "missing"
    CORRUPT = "corrupt"
    ERROR = "error"  # the store could not be read


CHECKPOINT_REASONS = tuple(r.value for r in CheckpointReason)
FIXITY_MODES = tuple(m.value for m in FixityMode)
FIXITY_PROBLEMS = tuple(p.value for p in FixityProblem)


class Checkpoint(SQLModel, table=True):
    """A signed tree head (署名済みチェックポイント) of the audit log.

    The signed statement is rebuilt from the columns (:func:`records.checkpoints.statement`);
    ``frontier`` (the perfect-subtree roots at ``tree_size``) lets the next checkpoint extend
    the tree without re-reading the whole log. It is not signed: a wrong frontier only makes
    later roots disagree with the events, which the verifier reports.
    """

    __tablename__ = "audit_checkpoint"
    model_config = ENUM_VALUES
    __table_args__ = (one_of("audit_checkpoint", "reason", CheckpointReason),)
    id: int | None = Field(default=None, primary_key=True)
    tree_size: int = Field(sa_column=Column(BigInteger, nullable=False, index=True))
    root_hash: str = Field(max_length=64)
    head_hash: str = Field(max_length=64)
    signed_at: str = Field(max_length=32, index=True)  # canonical UTC text, part of the signature
    reason: CheckpointReason = Field(sa_type=String(16))
    key_id: str = Field(max_length=32)
    signature: str = Field(max_length=128)
    frontier: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))


class FixityRun(SQLModel, table=True):
    """One fixity audit (保管データの定期点検): which blobs were re-hashed and what was found."""

    __tablename__ = "fixity_run"
    model_config = ENUM_VALUES
    __table_args__ = (
        one_of("fixity_run", "mode", FixityMode),
        one_of("fixity_run", "status", FixityStatus),
    )
    id: int | None = Field(default=None, primary_key=True)
    mode: FixityMode = Field(sa_type=String(16))
    params: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    store: str = Field(max_length=16)
    actor: str = Field(max_length=64)
    status: FixityStatus = Field(default=FixityStatus.RUNNING, sa_type=String(16))
    started_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False)
    )
    finished_at: datetime | None = Field(
        default=None, sa_column=Column(DateTime(timezone=True), nullable=True)
    )
    workers: int = 1
    selected: int = 0
    checked: int = 0
    ok: int = 0
    missing: int = 0
    corrupt: int = 0
    errors: int = 0
    bytes_read: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))
    seconds: float = 0.0


class FixityFinding(SQLModel, table=True):
    """A blob that failed a fixity audit, with the documents, cases and folders it backs."""

    __tablename__ = "fixity_finding"
    model_config = ENUM_VALUES
    __table_args__ = (one_of("fixity_finding", "problem", FixityProblem),)
    id: int | None = Field(default=None, primary_key=True)
    run_id: int = Field(foreign_key="fixity_run.id", index=True)
    sha256: str = Field(max_length=64, index=True)
    problem: FixityProblem = Field(sa_type=String(16))
    actual_sha256: str | None = Field(default=None, max_length=64)
    message: str = Field(default="", max_length=500)
    documents: list[dict[str, Any]] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False)
    )
    found_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False)
    )
