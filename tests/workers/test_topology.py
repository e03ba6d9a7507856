"""Nodes register; a node-local index with two writers is refused; /healthz says degraded."""

from __future__ import annotations

import socket
from datetime import timedelta

import pytest
from genpon.core.clock import utcnow
from genpon.core.signing import SystemKeyring, provision
from genpon.records.models import IndexOutbox
from genpon.records.nodes import NodeInfo, TopologyError, deregister, register
from sqlmodel import Session


@pytest.fixture
def db_kind() -> str:
    return "sqlite"


def _node(name: str, backend: str, writes: bool, host: str = "h1") -> NodeInfo:
    return NodeInfo(
        id=name,
        kind="worker",
        search_backend=backend,
        writes_index=writes,
        can_sign=True,
        host=host,
        pid=1,
    )


def test_a_second_writer_of_a_local_index_is_refused(ctx) -> None:
    register(ctx.engine, _node("a", "tantivy", True), stale_after=30)
    with pytest.raises(TopologyError, match="GENPON_SEARCH_BACKEND=postgres"):
        register(ctx.engine, _node("b", "tantivy", True), stale_after=30)
    with pytest.raises(TopologyError, match="一つだけ"):  # another machine cannot read it
        register(ctx.engine, _node("c", "tantivy", False, host="h2"), stale_after=30)
    register(ctx.engine, _node("d", "tantivy", False), stale_after=30)  # a reader beside it
    deregister(ctx.engine, "a")
    register(ctx.engine, _node("b", "tantivy", True), stale_after=30)  # the old one is gone


def test_a_dead_node_does_not_block_and_postgres_takes_any_number(ctx) -> None:
    register(ctx.engine, _node("a", "tantivy", True), stale_after=30)
    register(ctx.engine, _node("b", "tantivy", True), stale_after=-1)  # "a" counts as dead
    for i in range(3):
        register(ctx.engine, _node(f"pg{i}", "postgres", True, host=f"h{i}"), stale_after=30)


def test_healthz_reports_missing_worker_stale_outbox_and_signing(client, ctx) -> None:
    body = client.get("/healthz").json()
    assert body["status"] == "degraded"
    assert set(body["problems"]) == {"no_worker", "cannot_sign"}
    provision(SystemKeyring.from_settings(ctx.settings, ctx.engine), ctx.engine)
    register(ctx.engine, _node("w", "tantivy", True, host=socket.gethostname()), stale_after=30)
    r = client.get("/healthz")
    assert r.status_code == 200 and r.json()["status"] == "ok", r.json()
    assert r.json()["workers"] == 1 and r.json()["can_sign"] is True
    with Session(ctx.engine) as s:
        s.add(
            IndexOutbox(sha256="0" * 64, reason="deposit", created_at=utcnow() - timedelta(hours=2))
        )
        s.commit()
    body = client.get("/healthz").json()
    assert body["status"] == "degraded" and body["problems"] == ["outbox_stale"]
    assert body["outbox_pending"] == 1 and body["outbox_oldest_seconds"] > 3600


def test_serve_registers_itself_and_runs_the_worker_only_when_embedded(ctx, settings) -> None:
    from fastapi.testclient import TestClient
    from genpon.api.app import create_app

    embedded = settings.model_copy(update={"index_autostart": True})
    assert embedded.runs_worker_in_server  # SQLite: one command, as before
    assert not settings.model_copy(
        update={"index_autostart": True, "database_url": "postgresql://x/y"}
    ).runs_worker_in_server
    ctx.settings = embedded
    with TestClient(create_app(embedded, ctx)) as c:
        assert c.get("/healthz").json()["workers"] == 1
        second = TestClient(create_app(embedded, ctx))
        with pytest.raises(TopologyError):  # a second embedded server on the same index
            second.__enter__()
    with TestClient(create_app(embedded, ctx)) as c:  # the first one deregistered on stop
        assert c.get("/healthz").json()["workers"] == 1
