"""Background work of a deployment: the index worker and the audit checkpointer, with the
node's registration and heartbeat.

``genpon worker`` runs :func:`run_worker` (any number of them, on any machines: they share
the work through leases in the database). ``genpon serve`` runs the same loops itself only in
the embedded default (SQLite, ``settings.runs_worker_in_server``); otherwise it is stateless
HTTP and registers as a ``serve`` node that writes nothing in the background.
"""

from __future__ import annotations

import logging
import signal
import threading
from types import FrameType

from genpon.core.signing import SystemKeyring, signing_state
from genpon.records.audit.checkpoints import Checkpointer
from genpon.records.nodes import NodeHeartbeat, NodeInfo, new_node_id
from genpon.search.indexer import IndexWorker
from genpon.storage.context import AppContext

log = logging.getLogger("genpon.worker")


def node_info(ctx: AppContext, kind: str, *, writes_index: bool) -> NodeInfo:
    can_sign, reason = signing_state(SystemKeyring.from_settings(ctx.settings), ctx.engine)
    if not can_sign:
        log.error("this %s node cannot sign (checkpoints, certificates): %s", kind, reason)
    return NodeInfo(
        id=new_node_id(kind),
        kind=kind,
        search_backend=ctx.settings.search_backend,
        writes_index=writes_index,
        can_sign=can_sign,
    )


class BackgroundWork:
    """Heartbeat plus, when ``with_loops``, the index worker and the checkpointer."""

    def __init__(self, ctx: AppContext, kind: str, *, with_loops: bool) -> None:
        s = ctx.settings
        self.ctx = ctx
        self.node = node_info(ctx, kind, writes_index=with_loops)
        self.heartbeat = NodeHeartbeat(
            ctx.engine,
            self.node,
            interval=s.node_heartbeat_seconds,
            stale_after=s.node_stale_seconds,
        )
        self.indexer: IndexWorker | None = None
        self.checkpointer: Checkpointer | None = None
        if with_loops:
            self.indexer = IndexWorker(ctx, interval=s.worker_poll_seconds, owner=self.node.id)
            if s.environment != "test":  # tests sign their checkpoints explicitly
                self.checkpointer = Checkpointer(
                    ctx.engine,
                    SystemKeyring.from_settings(s, ctx.engine),
                    every=s.checkpoint_every,
                )

    def start(self) -> None:
        """Register (refused by a wrong topology: :class:`genpon.records.nodes.TopologyError`)
        and start the loops."""
        self.heartbeat.start()
        if self.indexer is not None:
            self.indexer.start()
        if self.checkpointer is not None:
            self.checkpointer.start()

    def stop(self) -> None:
        """Finish the current batch, stop the loops, deregister."""
        if self.indexer is not None:
            self.indexer.stop()
        if self.checkpointer is not None:
            self.checkpointer.stop()
        self.heartbeat.stop()


def run_worker(ctx: AppContext, *, stop: threading.Event | None = None) -> None:
    """Run until SIGTERM/SIGINT (or ``stop``): the current batch is finished, then it exits."""
    stop = stop or threading.Event()

    def _on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("signal %d: finishing the current batch", signum)
        stop.set()

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _on_signal)
        signal.signal(signal.SIGINT, _on_signal)
    work = BackgroundWork(ctx, "worker", with_loops=True)
    work.start()
    log.info("worker %s started (%s)", work.node.id, ctx.settings.search_backend)
    try:
        stop.wait()
    finally:
        work.stop()
        log.info("worker %s stopped", work.node.id)
