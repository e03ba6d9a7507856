"""Signed checkpoints (署名済みチェックポイント) of the audit log, and system key rotation.

A checkpoint signs, with the system Ed25519 key, the statement::

    {"format": "genpon-checkpoint/1", "tree_size": n, "root_hash": <RFC 6962 root of events
     1..n>, "head_hash": <hash of event n>, "signed_at": "…Z", "reason": "interval|daily|…"}

When they are made:

* **every N events** (``settings.checkpoint_every``): one checkpoint for each multiple of N
  past the newest checkpoint, so never more than N events go unsigned. The tree of the first
  k·N events never changes, so these can be signed a little after the log passed the size (:func:`ensure_checkpoints`, run by the server's
  checkpointer thread every minute and by every ``genpon audit`` command);
* **at least daily**: when the newest checkpoint is older than 24 h, one at the head;
* **on demand** (``genpon audit checkpoint``, ``POST /api/v1/audit/checkpoints``), before an
  export, and around a key rotation.

A checkpoint extends the previous one's Merkle frontier with the new events, after checking
that those events still hash to their recorded hashes and chain to the previous head: the
system never signs a broken log (:class:`ChainBroken`).
"""

from __future__ import annotations

import base64
import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from genpon.core.clock import utcnow
from genpon.core.db import session_scope
from genpon.core.errors import Conflict, InvalidInput
from genpon.core.signing import (
    SystemKeyring,
    public_pem,
    record_key,
    signing_state,
    verify_json,
)
from genpon.records.access import Actor, require_role
from genpon.records.audit import chain as audit
from genpon.records.audit.actions import AuditAction
from genpon.records.audit.format import GENESIS_HASH, event_hash, format_time
from genpon.records.audit.models import CHECKPOINT_REASONS, Checkpoint, CheckpointReason
from genpon.records.models import AuditEvent, AuditHead
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from genpon_verify.canonical import signed_bytes
from genpon_verify.merkle import Frontier, leaf_hash
from genpon_verify.verify import CHECKPOINT_FORMAT, rotation_statement

log = logging.getLogger("genpon.audit")

DAILY = timedelta(hours=24)
_MAX_PER_CALL = 10_000  # interval checkpoints made by one ensure_checkpoints() call
_READ_BATCH = 5_000


class ChainBroken(Conflict):
    """The events after the last checkpoint do not hash or chain correctly: refuse to sign."""

    def __init__(self, seq: int, reason: str) -> None:
        super().__init__(
            "audit_chain_broken",
            f"監査ログのイベント {seq} が壊れています（{reason}）。署名しません。",
            {"seq": seq, "reason": reason},
        )
        self.seq = seq


def event_dict(e: AuditEvent) -> dict[str, Any]:
    """The event as the canonical object that was hashed, plus its ``hash``."""
    return {
        "seq": e.seq,
        "at": e.at,
        "actor": e.actor,
        "action": e.action,
        "target_type": e.target_type,
        "target_id": e.target_id,
        "case_id": e.case_id,
        "details": e.details,
        "prev_hash": e.prev_hash,
        "hash": e.hash,
    }


def statement(cp: Checkpoint) -> dict[str, Any]:
    """The signed checkpoint as JSON (what auditors keep and the verifier checks)."""
    return {
        "format": CHECKPOINT_FORMAT,
        "tree_size": cp.tree_size,
        "root_hash": cp.root_hash,
        "head_hash": cp.head_hash,
        "signed_at": cp.signed_at,
        "reason": cp.reason,
        "signature": {"alg": "Ed25519", "key_id": cp.key_id, "value": cp.signature},
    }


def signature_valid(cp: Checkpoint, keyring: SystemKeyring) -> bool:
    return verify_json(statement(cp), keyring.public_keys())


def _lock_head(session: Session) -> AuditHead:
    return session.exec(select(AuditHead).where(AuditHead.id == 1).with_for_update()).one()


def latest(session: Session, *, at_most: int | None = None) -> Checkpoint | None:
    """The newest checkpoint (largest tree size, then newest), optionally of size <= at_most."""
    stmt = select(Checkpoint)
    if at_most is not None:
        stmt = stmt.where(col(Checkpoint.tree_size) <= at_most)
    stmt = stmt.order_by(col(Checkpoint.tree_size).desc(), col(Checkpoint.id).desc()).limit(1)
    return session.exec(stmt).first()


def newest_signed(session: Session) -> Checkpoint | None:
    return session.exec(
        select(Checkpoint).order_by(col(Checkpoint.signed_at).desc(), col(Checkpoint.id).desc())
    ).first()


def _extend(session: Session, base: Checkpoint | None, size: int) -> tuple[Frontier, str]:
    """Frontier and head hash at ``size``, extending ``base`` with events checked on the way."""
    if base is not None:
        frontier = Frontier.from_json({"size": base.tree_size, "hashes": base.frontier})
        prev = base.head_hash
    else:
        frontier, prev = Frontier(), GENESIS_HASH
    seq = frontier.size + 1
    while seq <= size:
        hi = min(size, seq + _READ_BATCH - 1)
        rows = session.exec(
            select(AuditEvent)
            .where(col(AuditEvent.seq) >= seq, col(AuditEvent.seq) <= hi)
            .order_by(col(AuditEvent.seq))
        ).all()
        for e in rows:
            if e.seq != seq:
                raise ChainBroken(seq, "イベントが欠けています")
            if event_hash(event_dict(e)) != e.hash:
                raise ChainBroken(seq, "内容がハッシュと一致しません")
            if e.prev_hash != prev:
                raise ChainBroken(seq, "直前のイベントとつながりません")
            frontier.append(leaf_hash(e.hash))
            prev = e.hash
            seq += 1
        if seq <= hi:
            raise ChainBroken(seq, "イベントが欠けています")
    return frontier, prev


def _sign_new(
    session: Session, keyring: SystemKeyring, size: int, reason: str, now: datetime | None = None
) -> Checkpoint:
    if reason not in CHECKPOINT_REASONS:
        raise InvalidInput("bad_reason", f"チェックポイントの理由が不正です: {reason}")
    base = latest(session, at_most=size)
    frontier, head_hash = _extend(session, base, size)
    root_hash, signed_at = frontier.root().hex(), format_time(now or utcnow())
    body = {
        "format": CHECKPOINT_FORMAT,
        "tree_size": size,
        "root_hash": root_hash,
        "head_hash": head_hash,
        "signed_at": signed_at,
        "reason": reason,
    }
    signed = keyring.sign_json(body)
    sig = signed["signature"]
    cp = Checkpoint(
        tree_size=size,
        root_hash=root_hash,
        head_hash=head_hash,
        signed_at=signed_at,
        reason=CheckpointReason(reason),
        key_id=sig["key_id"],
        signature=sig["value"],
        frontier=[h.hex() for h in frontier.hashes],
    )
    session.add(cp)
    session.flush()
    return cp


def create_checkpoint(
    session: Session, keyring: SystemKeyring, *, reason: str = "manual"
) -> Checkpoint:
    """Sign the current head of the log now (inside the caller's transaction)."""
    head = _lock_head(session)
    return _sign_new(session, keyring, head.seq, reason)


def request_checkpoint(session: Session, keyring: SystemKeyring, actor: Actor) -> Checkpoint:
    """On-demand checkpoint by an auditor or admin."""
    require_role(actor, "auditor", "admin")
    return create_checkpoint(session, keyring, reason="manual")


def due_sizes(head_seq: int, latest_size: int, every: int) -> list[int]:
    """Interval sizes (multiples of ``every``) in ``(latest_size, head_seq]``."""
    if every <= 0:
        return []
    first = latest_size // every + 1
    return [k * every for k in range(first, head_seq // every + 1)][:_MAX_PER_CALL]


def ensure_checkpoints(
    session: Session, keyring: SystemKeyring, *, every: int, now: datetime | None = None
) -> list[Checkpoint]:
    """Make the checkpoints that are due: one per ``every`` events, and a daily one."""
    now = now or utcnow()
    head = _lock_head(session)
    newest = latest(session)
    made = [
        _sign_new(session, keyring, size, "interval", now)
        for size in due_sizes(head.seq, newest.tree_size if newest else 0, every)
    ]
    last = newest_signed(session)
    stale = last is None or last.signed_at < format_time(now - DAILY)
    if head.seq > 0 and stale and not made:
        made.append(_sign_new(session, keyring, head.seq, "daily", now))
    return made


def keyring_ready(keyring: SystemKeyring) -> bool:
    return keyring.ready()


# --- key rotation ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Rotation:
    old_key_id: str
    new_key_id: str
    event_seq: int
    checkpoints: tuple[Checkpoint, Checkpoint]


def rotate_key(engine: Engine, keyring: SystemKeyring, actor: Actor) -> Rotation:
    """Replace the system signing key and record the hand-over in the log itself.

    1. the old key signs a checkpoint of the log as it is;
    2. a new key is generated (the old public key stays exportable);
    3. an event ``system_key.rotated`` carries the new public key and an *endorsement*: the old
       key's signature over ``{old_key_id, new_key_id, new_public_key}``;
    4. the new key signs a checkpoint that covers that event.

    The verifier trusts a new key only from its endorsed rotation event on. If the database
    transaction fails after step 2, the new key is current without an event, and every later
    checkpoint is reported by the verifier as signed by an unknown key — loudly, not silently.
    """
    require_role(actor, "admin")
    with session_scope(engine) as s:
        before = create_checkpoint(s, keyring, reason="key_rotation")
    old_key = keyring.private_key()
    old_id, new_id = keyring.rotate()
    new_pem = public_pem(keyring.public_key())
    details: dict[str, Any] = {
        "old_key_id": old_id,
        "new_key_id": new_id,
        "new_public_key": new_pem,
    }
    endorsement = old_key.sign(signed_bytes(rotation_statement(details)))
    details["endorsement"] = base64.b64encode(endorsement).decode("ascii")
    with session_scope(engine) as s:
        ev = audit.record(
            s,
            actor=actor.login,
            action=AuditAction.SYSTEM_KEY_ROTATED,
            target_type="system_key",
            target_id=new_id,
            details=details,
        )
        record_key(s, old_id, public_pem(old_key.public_key()), current=False)
        record_key(s, new_id, new_pem)  # every node reads the current key id from here
        after = create_checkpoint(s, keyring, reason="key_rotation")
        seq = ev.seq
    return Rotation(old_id, new_id, seq, (before, after))


# --- the checkpointer (run by `genpon worker`, or inside `genpon serve` on SQLite) ----------


class Checkpointer:
    """Background thread: :func:`ensure_checkpoints` every ``interval`` seconds.

    Safe with any number of workers: :func:`ensure_checkpoints` holds the audit head row lock
    (``SELECT … FOR UPDATE``) while it signs, so checkpointers take turns and the second one
    finds nothing due. A node without the deployment's current key signs nothing and logs it.
    """

    def __init__(
        self, engine: Engine, keyring: SystemKeyring, *, every: int, interval: float = 60.0
    ) -> None:
        self.engine = engine
        self.keyring = keyring
        self.every = every
        self.interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._warned: str | None = None

    def run_once(self) -> Sequence[Checkpoint]:
        can_sign, reason = signing_state(self.keyring, self.engine)
        if not can_sign:
            if reason != self._warned:
                log.error("audit checkpoints not signed on this node: %s", reason)
                self._warned = reason
            return []
        self._warned = None
        with session_scope(self.engine) as s:
            return ensure_checkpoints(s, self.keyring, every=self.every)

    def step(self) -> None:
        """One round, logging instead of raising (the loop keeps running)."""
        try:
            made = self.run_once()
            if made:
                log.info("signed %d audit checkpoint(s), size %d", len(made), made[-1].tree_size)
        except Exception:  # keep running: the next round may succeed
            log.exception("audit checkpoint failed")

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.step()
            self._stop.wait(self.interval)

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._loop, name="audit-checkpointer", daemon=True
            )
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
