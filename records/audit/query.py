"""What auditors (監査) ask of the log: events, checkpoints, proofs, fixity runs.

Every function takes the acting :class:`~records.access.Actor` and allows auditors and admins
only (``Forbidden`` otherwise). They return table rows or small frozen dataclasses with an
``as_dict()``; the API and the web UI shape them, nothing here knows about HTTP.

Functions
    list_events(session, actor, *, target_type, target_id, actor_login, action, case_id,
                since, until, after_seq, before_seq, limit, newest_first) -> EventPage
    get_event(session, actor, seq) -> AuditEvent
    list_checkpoints(session, actor, *, offset, limit) -> tuple[list[Checkpoint], int]
    get_checkpoint(session, actor, checkpoint_id) -> Checkpoint
    latest_checkpoint(session, actor) -> Checkpoint | None
    inclusion_proof(session, actor, seq, *, tree_size=None) -> InclusionProof
    document_proof(session, actor, document_id) -> InclusionProof   (its deposit event)
    consistency_proof(session, actor, first, second=None) -> ConsistencyProof
    list_fixity_runs(session, actor, *, offset, limit) -> tuple[list[FixityRun], int]
    get_fixity_run(session, actor, run_id) -> tuple[FixityRun, list[FixityFinding]]
    check_log(session, actor, keyring) -> LogCheck   (chain + checkpoints, server side)
    local_day_range(day, tz) -> (since, until)       (a business date as a UTC range)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from genpon.core.errors import Conflict, InvalidInput, NotFound
from genpon.core.signing import SystemKeyring, verify_json
from genpon.records.access import Actor, require_role
from genpon.records.audit.actions import AuditAction
from genpon.records.audit.checkpoints import event_dict, statement
from genpon.records.audit.format import event_hash, format_time
from genpon.records.audit.merkle import leaf_hashes, log_size
from genpon.records.audit.models import Checkpoint, FixityFinding, FixityRun
from genpon.records.models import AuditEvent
from sqlalchemy import func
from sqlmodel import Session, col, select

from genpon_verify.canonical import GENESIS_HASH
from genpon_verify.merkle import (
    Frontier,
    consistency_path,
    inclusion_path,
    leaf_hash,
    root_of,
    verify_consistency,
    verify_inclusion,
)

AUDIT_ROLES = ("auditor", "admin")
MAX_LIMIT = 1000


def _require_auditor(actor: Actor) -> None:
    require_role(actor, *AUDIT_ROLES)


# --- events ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class EventPage:
    """A page of events. ``next_after`` / ``next_before``: pass as ``after_seq`` /
    ``before_seq`` to get the following page (None when this page is the last)."""

    items: list[AuditEvent]
    next_after: int | None
    next_before: int | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "items": [event_dict(e) for e in self.items],
            "next_after": self.next_after,
            "next_before": self.next_before,
        }


def local_day_range(day: date, tz: str) -> tuple[datetime, datetime]:
    """The UTC instants [since, until) of a business date in the city's time zone."""
    start = datetime.combine(day, time(0), tzinfo=ZoneInfo(tz))
    return start, start + timedelta(days=1)


def list_events(
    session: Session,
    actor: Actor,
    *,
    target_type: str | None = None,
    target_id: str | None = None,
    actor_login: str | None = None,
    action: str | None = None,
    case_id: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    after_seq: int | None = None,
    before_seq: int | None = None,
    limit: int = 100,
    newest_first: bool = False,
) -> EventPage:
    """Events matching every given filter. ``action`` ending in ``.`` or ``*`` is a prefix
    (``document.`` = every document action); ``since`` inclusive, ``until`` exclusive."""
    _require_auditor(actor)
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidInput("bad_limit", f"件数は 1〜{MAX_LIMIT} で指定してください。")
    if target_id is not None and target_type is None:
        raise InvalidInput("target_type_required", "target_id には target_type が必要です。")
    stmt = select(AuditEvent)
    if target_type:
        stmt = stmt.where(AuditEvent.target_type == target_type)
    if target_id is not None:
        stmt = stmt.where(AuditEvent.target_id == str(target_id))
    if actor_login:
        stmt = stmt.where(AuditEvent.actor == actor_login)
    if action:
        if action.endswith((".", "*")):
            stmt = stmt.where(col(AuditEvent.action).startswith(action.rstrip("*")))
        else:
            stmt = stmt.where(AuditEvent.action == action)
    if case_id:
        stmt = stmt.where(AuditEvent.case_id == case_id)
    if since is not None:
        stmt = stmt.where(col(AuditEvent.at) >= format_time(since))
    if until is not None:
        stmt = stmt.where(col(AuditEvent.at) < format_time(until))
    if after_seq is not None:
        stmt = stmt.where(col(AuditEvent.seq) > after_seq)
    if before_seq is not None:
        stmt = stmt.where(col(AuditEvent.seq) < before_seq)
    order = col(AuditEvent.seq).desc() if newest_first else col(AuditEvent.seq)
    rows = list(session.exec(stmt.order_by(order).limit(limit + 1)).all())
    more = len(rows) > limit
    rows = rows[:limit]
    last = rows[-1].seq if rows and more else None
    return EventPage(
        items=rows,
        next_after=None if newest_first else last,
        next_before=last if newest_first else None,
    )


def get_event(session: Session, actor: Actor, seq: int) -> AuditEvent:
    _require_auditor(actor)
    ev = session.get(AuditEvent, seq)
    if ev is None:
        raise NotFound("event_not_found", f"イベント {seq} はありません。", {"seq": seq})
    return ev


# --- checkpoints -----------------------------------------------------------------------------


def list_checkpoints(
    session: Session, actor: Actor, *, offset: int = 0, limit: int = 50
) -> tuple[list[Checkpoint], int]:
    """Checkpoints, newest first, and their total count."""
    _require_auditor(actor)
    if not 1 <= limit <= MAX_LIMIT or offset < 0:
        raise InvalidInput("bad_page", "offset/limit が不正です。")
    total = int(session.exec(select(func.count()).select_from(Checkpoint)).one())
    rows = session.exec(
        select(Checkpoint)
        .order_by(col(Checkpoint.tree_size).desc(), col(Checkpoint.id).desc())
        .offset(offset)
        .limit(limit)
    ).all()
    return list(rows), total


def get_checkpoint(session: Session, actor: Actor, checkpoint_id: int) -> Checkpoint:
    _require_auditor(actor)
    cp = session.get(Checkpoint, checkpoint_id)
    if cp is None:
        raise NotFound("checkpoint_not_found", "チェックポイントがありません。")
    return cp


def latest_checkpoint(session: Session, actor: Actor) -> Checkpoint | None:
    _require_auditor(actor)
    return session.exec(
        select(Checkpoint).order_by(col(Checkpoint.tree_size).desc(), col(Checkpoint.id).desc())
    ).first()


def _checkpoint_of_size(session: Session, size: int) -> Checkpoint | None:
    return session.exec(
        select(Checkpoint).where(Checkpoint.tree_size == size).order_by(col(Checkpoint.id).desc())
    ).first()


# --- proofs ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class InclusionProof:
    """Event ``seq`` is leaf ``seq - 1`` of the tree signed by ``checkpoint``."""

    event: dict[str, Any]
    tree_size: int
    root_hash: str
    path: list[str]
    checkpoint: dict[str, Any]
    verified: bool

    def as_dict(self) -> dict[str, Any]:
        return {
            "type": "inclusion",
            "seq": self.event["seq"],
            "leaf_index": self.event["seq"] - 1,
            "event_hash": self.event["hash"],
            "event": self.event,
            "tree_size": self.tree_size,
            "root_hash": self.root_hash,
            "path": self.path,
            "checkpoint": self.checkpoint,
            "verified": self.verified,
        }


@dataclass(frozen=True)
class ConsistencyProof:
    """The tree of size ``second`` extends the tree of size ``first`` (append-only)."""

    first: int
    second: int
    first_root: str
    second_root: str
    path: list[str]
    first_checkpoint: dict[str, Any] | None
    second_checkpoint: dict[str, Any] | None
    verified: bool

    def as_dict(self) -> dict[str, Any]:
        return {"type": "consistency", **self.__dict__}


def _leaves(session: Session, size: int) -> list[bytes]:
    try:
        return leaf_hashes(session, size)
    except ValueError as exc:
        raise Conflict("audit_log_gap", f"監査ログに欠けがあります: {exc}") from exc


def inclusion_proof(
    session: Session, actor: Actor, seq: int, *, tree_size: int | None = None
) -> InclusionProof:
    """Proof that event ``seq`` is in the tree of a signed checkpoint (by default the newest;
    else the newest one of exactly ``tree_size``). ``verified`` is the server's own check."""
    _require_auditor(actor)
    ev = get_event(session, actor, seq)
    if tree_size is None:
        cp = latest_checkpoint(session, actor)
        if cp is None or cp.tree_size < seq:
            raise Conflict(
                "not_checkpointed",
                f"イベント {seq} を含むチェックポイントがまだありません（genpon audit checkpoint）。",
                {"seq": seq},
            )
    else:
        cp = _checkpoint_of_size(session, tree_size)
        if cp is None:
            raise NotFound(
                "checkpoint_not_found", f"サイズ {tree_size} のチェックポイントはありません。"
            )
        if cp.tree_size < seq:
            raise InvalidInput("event_after_checkpoint", "イベントはチェックポイントより後です。")
    leaves = _leaves(session, cp.tree_size)
    path = inclusion_path(leaves, seq - 1, cp.tree_size)
    ok = verify_inclusion(
        leaf_hash(ev.hash), seq - 1, cp.tree_size, path, bytes.fromhex(cp.root_hash)
    )
    ok = ok and event_hash(event_dict(ev)) == ev.hash
    return InclusionProof(
        event=event_dict(ev),
        tree_size=cp.tree_size,
        root_hash=cp.root_hash,
        path=[p.hex() for p in path],
        checkpoint=statement(cp),
        verified=ok,
    )


def document_proof(session: Session, actor: Actor, document_id: int) -> InclusionProof:
    """Inclusion proof of the event that registered a document (deposit, copy or import)."""
    _require_auditor(actor)
    ev = session.exec(
        select(AuditEvent)
        .where(
            AuditEvent.target_type == "document",
            AuditEvent.target_id == str(document_id),
            col(AuditEvent.action).in_(
                [
                    AuditAction.DOCUMENT_DEPOSITED,
                    AuditAction.DOCUMENT_COPIED,
                    AuditAction.DOCUMENT_IMPORTED,
                ]
            ),
        )
        .order_by(col(AuditEvent.seq))
    ).first()
    if ev is None:
        raise NotFound(
            "document_event_not_found", "この文書の登録イベントはありません。", {"id": document_id}
        )
    return inclusion_proof(session, actor, ev.seq)


def consistency_proof(
    session: Session, actor: Actor, first: int, second: int | None = None
) -> ConsistencyProof:
    """Proof that the log at size ``second`` (default: newest checkpoint) only appended to the
    log at size ``first``. Roots come from the signed checkpoints of those sizes when they
    exist, so a log rewritten since gives a proof that does not verify (``verified`` False).
    A log now shorter than ``first`` is a Conflict ``log_truncated``."""
    _require_auditor(actor)
    size = log_size(session)
    if size < max(first, second or 0):
        raise Conflict(
            "log_truncated",
            f"監査ログは {size} 件しかなく、サイズ {max(first, second or 0)} より短くなっています（切り詰め）。",
            {"log_size": size, "requested": max(first, second or 0)},
        )
    if second is None:
        newest = latest_checkpoint(session, actor)
        if newest is None:
            raise Conflict("not_checkpointed", "チェックポイントがまだありません。")
        second = newest.tree_size
    if first < 1 or second < first:
        raise InvalidInput("bad_sizes", "1 <= first <= second で指定してください。")
    leaves = _leaves(session, second)
    path = consistency_path(leaves, first, second)
    cp1, cp2 = _checkpoint_of_size(session, first), _checkpoint_of_size(session, second)
    r1 = cp1.root_hash if cp1 else root_of(leaves[:first]).hex()
    r2 = cp2.root_hash if cp2 else root_of(leaves).hex()
    ok = verify_consistency(first, second, bytes.fromhex(r1), bytes.fromhex(r2), path)
    return ConsistencyProof(
        first=first,
        second=second,
        first_root=r1,
        second_root=r2,
        path=[p.hex() for p in path],
        first_checkpoint=statement(cp1) if cp1 else None,
        second_checkpoint=statement(cp2) if cp2 else None,
        verified=ok,
    )


# --- fixity ----------------------------------------------------------------------------------


def list_fixity_runs(
    session: Session, actor: Actor, *, offset: int = 0, limit: int = 50
) -> tuple[list[FixityRun], int]:
    """Fixity runs, newest first, and their total count."""
    _require_auditor(actor)
    if not 1 <= limit <= MAX_LIMIT or offset < 0:
        raise InvalidInput("bad_page", "offset/limit が不正です。")
    total = int(session.exec(select(func.count()).select_from(FixityRun)).one())
    rows = session.exec(
        select(FixityRun).order_by(col(FixityRun.id).desc()).offset(offset).limit(limit)
    ).all()
    return list(rows), total


def get_fixity_run(
    session: Session, actor: Actor, run_id: int
) -> tuple[FixityRun, list[FixityFinding]]:
    _require_auditor(actor)
    run = session.get(FixityRun, run_id)
    if run is None:
        raise NotFound("fixity_run_not_found", "点検の記録がありません。", {"id": run_id})
    findings = session.exec(
        select(FixityFinding).where(FixityFinding.run_id == run_id).order_by(col(FixityFinding.id))
    ).all()
    return run, list(findings)


# --- server-side check -----------------------------------------------------------------------


@dataclass
class LogCheck:
    """Result of :func:`check_log`: the first broken event and bad checkpoints, if any."""

    events: int = 0
    checkpoints: int = 0
    first_bad_seq: int | None = None
    reason: str | None = None
    bad_checkpoints: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.first_bad_seq is None and not self.bad_checkpoints

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, **self.__dict__}


def check_log(session: Session, actor: Actor, keyring: SystemKeyring) -> LogCheck:
    """Re-check the whole chain and every checkpoint in the database (a quick look for the
    UI; the authoritative check is ``genpon-verify`` on an export)."""
    _require_auditor(actor)
    out = LogCheck()
    cps = list(session.exec(select(Checkpoint).order_by(col(Checkpoint.tree_size))).all())
    out.checkpoints = len(cps)
    by_size: dict[int, list[Checkpoint]] = {}
    for cp in cps:
        by_size.setdefault(cp.tree_size, []).append(cp)
    keys = keyring.public_keys()
    frontier = Frontier()
    prev = GENESIS_HASH
    expected = 1
    for size_cps in by_size.get(0, []):
        if not verify_json(statement(size_cps), keys):
            out.bad_checkpoints.append({"id": size_cps.id, "reason": "signature"})
    last = 0
    while True:
        rows = session.exec(
            select(AuditEvent)
            .where(col(AuditEvent.seq) > last)
            .order_by(col(AuditEvent.seq))
            .limit(5000)
        ).all()
        if not rows:
            break
        for e in rows:
            if out.first_bad_seq is None:
                if e.seq != expected:
                    out.first_bad_seq, out.reason = expected, "missing"
                elif event_hash(event_dict(e)) != e.hash:
                    out.first_bad_seq, out.reason = e.seq, "hash"
                elif e.prev_hash != prev:
                    out.first_bad_seq, out.reason = e.seq, "chain"
            prev = e.hash
            expected = e.seq + 1
            frontier.append(leaf_hash(event_hash(event_dict(e))))
            for cp in by_size.get(frontier.size, []):
                if not verify_json(statement(cp), keys):
                    out.bad_checkpoints.append({"id": cp.id, "reason": "signature"})
                elif cp.root_hash != frontier.root().hex():
                    out.bad_checkpoints.append({"id": cp.id, "reason": "root"})
            last = e.seq
    out.events = frontier.size
    for cp in cps:
        if cp.tree_size > frontier.size:
            out.bad_checkpoints.append({"id": cp.id, "reason": "truncated"})
    return out
