"""``genpon worker``: background work (indexing, audit checkpoints) for a multi-node
deployment. Any number may run; SIGTERM finishes the current batch and exits."""

from __future__ import annotations

import logging

import typer
from genpon.api.cli.common import ctx, fail


def register(app: typer.Typer) -> None:
    @app.command("worker")
    def worker_cmd() -> None:
        """バックグラウンド処理（索引・チェックポイント）を実行する。SIGTERMで現在の処理を終えて停止。"""
        from genpon.api.worker import run_worker
        from genpon.records.nodes import TopologyError

        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
        try:
            run_worker(ctx())
        except TopologyError as exc:
            fail(str(exc), 2)
