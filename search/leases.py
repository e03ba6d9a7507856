"""Outbox leases (issue 14): a worker claims rows with ``SELECT … FOR UPDATE SKIP LOCKED`` on
PostgreSQL, for ``index_lease_seconds`` on the database's clock; :class:`LeaseKeeper` renews the
lease while the batch runs, so a killed worker's rows are free again within one lease. The
indexer (:mod:`search.indexer`) re-checks under lock that it still holds a row before writing."""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from genpon.core.clock import utcnow
from genpon.records.models import IndexOutbox
from sqlalchemy import func, or_, update
from sqlalchemy.engine import CursorResult
from sqlmodel import Session, col, select

if TYPE_CHECKING:
    from genpon.storage.context import AppContext

log = logging.getLogger("genpon.search")


def worker_id() -> str:
    """A fresh worker identity (host, process, random), written to ``claimed_by``."""
    return f"{socket.gethostname()[:30]}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


def _db_now(s: Session) -> datetime:
    """The lease clock: the database's on PostgreSQL (one clock for every machine)."""
    if s.get_bind().dialect.name == "postgresql":
        now: datetime = s.execute(select(func.now())).scalar_one()
        return now
    return utcnow()


def claim(ctx: AppContext, owner: str, size: int) -> list[tuple[int, str]]:
    """Lease up to ``size`` outbox rows to ``owner`` for ``settings.index_lease_seconds``:
    rows nobody holds or whose lease expired, oldest first, skipping contents another worker
    holds a live lease on. Returns ``(id, sha256)`` in id order."""
    with Session(ctx.engine) as s:
        now = _db_now(s)
        until = now + timedelta(seconds=ctx.settings.index_lease_seconds)
        held = (
            select(IndexOutbox.sha256)
            .where(col(IndexOutbox.lease_until) > now, col(IndexOutbox.claimed_by).is_not(None))
            .scalar_subquery()
        )
        pick = (
            select(IndexOutbox.id)
            .where(
                or_(col(IndexOutbox.lease_until).is_(None), col(IndexOutbox.lease_until) <= now),
                col(IndexOutbox.sha256).not_in(held),
            )
            .order_by(col(IndexOutbox.id))
            .limit(size)
            .with_for_update(skip_locked=True)
        )
        ids = [int(i or 0) for i in s.exec(pick).all()]
        if not ids:
            s.rollback()
            return []
        s.execute(
            update(IndexOutbox)
            .where(col(IndexOutbox.id).in_(ids))
            .values(claimed_by=owner, lease_until=until)
        )
        s.commit()
        rows = s.exec(
            select(IndexOutbox.id, IndexOutbox.sha256)
            .where(col(IndexOutbox.id).in_(ids), IndexOutbox.claimed_by == owner)
            .order_by(col(IndexOutbox.id))
        ).all()
        s.rollback()
    return [(int(i or 0), sha) for i, sha in rows]


def renew(ctx: AppContext, owner: str, outbox_ids: list[int]) -> int:
    """Extend the lease of the rows ``owner`` still holds; returns how many it still holds."""
    with Session(ctx.engine) as s:
        until = _db_now(s) + timedelta(seconds=ctx.settings.index_lease_seconds)
        result: CursorResult[Any] = s.execute(  # type: ignore[assignment]
            update(IndexOutbox)
            .where(col(IndexOutbox.id).in_(outbox_ids), col(IndexOutbox.claimed_by) == owner)
            .values(lease_until=until)
        )
        n = result.rowcount
        s.commit()
    return int(n or 0)


class LeaseKeeper:
    """Renews a claimed batch's lease every third of ``index_lease_seconds`` while it is
    being applied, so a lease can be short (a killed worker's rows are free again within one
    lease) however long extraction of one batch takes."""

    def __init__(self, ctx: AppContext, owner: str, outbox_ids: list[int]) -> None:
        self.ctx, self.owner, self.ids = ctx, owner, outbox_ids
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="genpon-lease", daemon=True)

    def _run(self) -> None:
        every = max(self.ctx.settings.index_lease_seconds / 3, 0.2)
        while not self._stop.wait(every):
            try:
                if not renew(self.ctx, self.owner, self.ids):
                    return  # taken over: the write transaction keeps nothing of ours anyway
            except Exception:  # a lost connection: try again next period, the lease may hold
                log.warning("index lease renewal failed", exc_info=True)

    def __enter__(self) -> LeaseKeeper:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def release(ctx: AppContext, owner: str, outbox_ids: list[int]) -> None:
    """Give rows back (a failed batch): the next claim takes them without waiting."""
    with Session(ctx.engine) as s:
        s.execute(
            update(IndexOutbox)
            .where(col(IndexOutbox.id).in_(outbox_ids), col(IndexOutbox.claimed_by) == owner)
            .values(claimed_by=None, lease_until=None)
        )
        s.commit()
