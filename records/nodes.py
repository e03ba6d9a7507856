"""Nodes of a deployment (ノード): every `genpon serve` and `genpon worker` process registers
itself in the database and sends heartbeats, so the topology is checked, not assumed.

A row lives while its process does: :class:`NodeHeartbeat` refreshes ``last_seen`` every
``settings.node_heartbeat_seconds`` and deletes the row on a clean stop; a node not seen for
``settings.node_stale_seconds`` counts as dead (its row is swept by the next registration).

Topology rule for a node-local search index (tantivy, Whoosh): the index lives in one
machine's directory and has one writer, so a deployment with such a backend has exactly **one**
node that writes it (`genpon serve` with its in-process worker, or one `genpon worker`) and no
node on another machine. Anything more is refused at start (:class:`TopologyError`) with the
fix: ``GENPON_SEARCH_BACKEND=postgres``, which any number of nodes share.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from genpon.core.clock import utcnow
from sqlalchemy import Column, DateTime, delete
from sqlalchemy.engine import Engine
from sqlmodel import Field, Session, SQLModel, col, select

log = logging.getLogger("genpon.nodes")

NODE_KINDS = ("serve", "worker")
NODE_LOCAL_BACKENDS = ("tantivy", "whoosh")


class Node(SQLModel, table=True):
    """A running server or worker process."""

    __tablename__ = "node"
    id: str = Field(primary_key=True, max_length=64)
    kind: str = Field(max_length=16)  # serve | worker
    host: str = Field(max_length=255)
    pid: int
    started_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False)
    )
    last_seen: datetime = Field(
        default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False)
    )
    search_backend: str = Field(max_length=16)
    writes_index: bool = False
    can_sign: bool = False


class TopologyError(RuntimeError):
    """This node must not start with the nodes already running (message names the fix)."""


def new_node_id(kind: str) -> str:
    return f"{kind}-{socket.gethostname()[:40]}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


@dataclass(frozen=True)
class NodeInfo:
    id: str
    kind: str
    search_backend: str
    writes_index: bool
    can_sign: bool
    host: str = socket.gethostname()
    pid: int = os.getpid()


def _aware(t: datetime) -> datetime:
    from datetime import UTC

    return t if t.tzinfo else t.replace(tzinfo=UTC)


def live_nodes(session: Session, stale_after: float, now: datetime | None = None) -> list[Node]:
    cutoff = (now or utcnow()) - timedelta(seconds=stale_after)
    rows = session.exec(select(Node).order_by(col(Node.started_at))).all()
    return [n for n in rows if _aware(n.last_seen) >= cutoff]


def check_topology(me: NodeInfo, others: list[Node]) -> None:
    """Refuse a node-local index shared by several nodes (see the module docstring)."""
    if me.search_backend not in NODE_LOCAL_BACKENDS:
        return
    conflicts = [
        n
        for n in others
        if n.id != me.id
        and n.search_backend in NODE_LOCAL_BACKENDS
        and ((me.writes_index and n.writes_index) or n.host != me.host)
    ]
    if not conflicts:
        return
    names = ", ".join(f"{n.kind}@{n.host} pid {n.pid}" for n in conflicts)
    raise TopologyError(
        f"検索索引 {me.search_backend} はこのノードのディスク上にあり、書き込めるノードは一つだけです"
        f"（稼働中: {names}）。複数のノードで動かすには GENPON_SEARCH_BACKEND=postgres を"
        "設定してください（一台で動かすなら genpon serve を一つだけ起動します）。"
        f" / The {me.search_backend} index is local to one node and has one writer (running:"
        f" {names}). For several nodes set GENPON_SEARCH_BACKEND=postgres (or run a single"
        " `genpon serve`)."
    )


def register(engine: Engine, me: NodeInfo, *, stale_after: float) -> None:
    """Sweep dead nodes, check the topology against the live ones, then add this node.

    On PostgreSQL the check and the insert run under a transaction-scoped advisory lock, so
    two nodes starting at once cannot both pass the check."""
    with Session(engine) as s:
        if engine.dialect.name == "postgresql":
            from sqlalchemy import text

            s.execute(text("SELECT pg_advisory_xact_lock(7246010)"))
        now = utcnow()
        cutoff = now - timedelta(seconds=stale_after)
        dead = [n.id for n in s.exec(select(Node)).all() if _aware(n.last_seen) < cutoff]
        if dead:
            s.execute(delete(Node).where(col(Node.id).in_(dead)))
        check_topology(me, live_nodes(s, stale_after, now))
        s.add(
            Node(
                id=me.id,
                kind=me.kind,
                host=me.host[:255],
                pid=me.pid,
                started_at=now,
                last_seen=now,
                search_backend=me.search_backend,
                writes_index=me.writes_index,
                can_sign=me.can_sign,
            )
        )
        s.commit()


def beat(engine: Engine, node_id: str, *, can_sign: bool | None = None) -> None:
    with Session(engine) as s:
        row = s.get(Node, node_id)
        if row is not None:
            row.last_seen = utcnow()
            if can_sign is not None:
                row.can_sign = can_sign
            s.add(row)
        s.commit()


def deregister(engine: Engine, node_id: str) -> None:
    with Session(engine) as s:
        s.execute(delete(Node).where(col(Node.id) == node_id))
        s.commit()


class NodeHeartbeat:
    """Registers a node and keeps its ``last_seen`` fresh from a daemon thread."""

    def __init__(self, engine: Engine, me: NodeInfo, *, interval: float, stale_after: float):
        self.engine = engine
        self.me = me
        self.interval = interval
        self.stale_after = stale_after
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        register(self.engine, self.me, stale_after=self.stale_after)
        self._thread = threading.Thread(target=self._loop, name="genpon-heartbeat", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                beat(self.engine, self.me.id)
            except Exception:  # the database may be briefly away; the next beat retries
                log.warning("node heartbeat failed", exc_info=True)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        try:
            deregister(self.engine, self.me.id)
        except Exception:
            log.warning("could not deregister node %s", self.me.id, exc_info=True)
