"""監査 API shapes: event pages, signed checkpoints, Merkle proofs, fixity runs, keys."""

from __future__ import annotations

from typing import Any, Literal

from genpon.api.contracts.common import IsoTime
from genpon.api.contracts.records import EventPublic
from pydantic import BaseModel


class EventPagePublic(BaseModel):
    """Pass ``next_after``/``next_before`` as ``after_seq``/``before_seq`` for the next page
    (null when this page is the last)."""

    items: list[EventPublic]
    next_after: int | None
    next_before: int | None


class CheckpointSignature(BaseModel):
    alg: str
    key_id: str
    value: str


class CheckpointStatement(BaseModel):
    """The signed checkpoint as auditors keep it and ``genpon-verify`` checks it."""

    format: str
    tree_size: int
    root_hash: str
    head_hash: str
    signed_at: IsoTime
    reason: str
    signature: CheckpointSignature


class CheckpointPublic(BaseModel):
    id: int
    format: str
    tree_size: int
    root_hash: str
    head_hash: str
    signed_at: IsoTime
    reason: str
    signature: CheckpointSignature


class CheckpointsPublic(BaseModel):
    items: list[CheckpointPublic]
    count: int
    offset: int
    limit: int


class InclusionProofPublic(BaseModel):
    """Event ``seq`` is leaf ``seq - 1`` of the tree signed by ``checkpoint``; ``verified``
    is the server's own check."""

    type: Literal["inclusion"]
    seq: int
    leaf_index: int
    event_hash: str
    event: EventPublic
    tree_size: int
    root_hash: str
    path: list[str]
    checkpoint: CheckpointStatement
    verified: bool


class ConsistencyProofPublic(BaseModel):
    """The tree of size ``second`` extends the tree of size ``first`` (append-only)."""

    type: Literal["consistency"]
    first: int
    second: int
    first_root: str
    second_root: str
    path: list[str]
    first_checkpoint: CheckpointStatement | None
    second_checkpoint: CheckpointStatement | None
    verified: bool


class FixityRunPublic(BaseModel):
    id: int
    mode: str
    params: dict[str, Any]
    store: str
    actor: str
    status: str
    started_at: IsoTime
    finished_at: IsoTime | None
    workers: int
    selected: int
    checked: int
    ok: int
    missing: int
    corrupt: int
    errors: int
    bytes_read: int
    seconds: float


class FixityRunsPublic(BaseModel):
    items: list[FixityRunPublic]
    count: int
    offset: int
    limit: int


class FixityFindingPublic(BaseModel):
    id: int
    run_id: int
    sha256: str
    problem: str
    actual_sha256: str | None
    message: str
    documents: list[dict[str, Any]]
    found_at: IsoTime


class FixityRunDetailPublic(FixityRunPublic):
    findings: list[FixityFindingPublic]


class AuditKeysPublic(BaseModel):
    """``keys``: PEM public key by key id; ``current``: the key that signs now."""

    current: str
    keys: dict[str, str]


class LogCheckPublic(BaseModel):
    ok: bool
    events: int
    checkpoints: int
    first_bad_seq: int | None
    reason: str | None
    bad_checkpoints: list[dict[str, Any]]
