"""Identical deposits sent to several real servers at once: one creates, the others replay.

Three uvicorn servers of the app, each with its own engine (its own connection pool), share one
database and one blob store, as ``genpon serve`` processes behind a load balancer do. Each round
fires the same request at all of them at the same moment (a barrier), with the same
``Idempotency-Key`` or the same approval external reference. Allowed answers: one 201, the same
document with 200, or a clean 409 ``request_in_progress``; never a 500, never a second document.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from typing import Any

import httpx
import pytest
from genpon.api.app import create_app
from genpon.api.context import AppContext
from genpon.core.db import make_engine
from genpon.records.audit import format as audit_format
from genpon.records.models import AuditEvent, AuditHead, Document, IdempotencyKey
from genpon.storage.registry import make_store
from sqlmodel import Session, col, func, select

from tests.conftest import BOTH_DBS, Demo
from tests.live import serve
from tests.records.helpers import team_folder

SERVERS = 3
ROUNDS = 6
APPROVAL = {"approved_on": "2026-07-15", "approvers": ["財政課長"]}


@pytest.fixture
def servers(ctx: AppContext) -> Iterator[list[str]]:
    """``SERVERS`` live servers on free ports, each with its own engine, one database."""
    with ExitStack() as stack:
        urls = []
        for _ in range(SERVERS):
            engine = make_engine(ctx.settings.db_url)
            stack.callback(engine.dispose)
            own = AppContext(settings=ctx.settings, engine=engine, store=make_store(ctx.settings))
            urls.append(stack.enter_context(serve(create_app(ctx.settings, own))))
        yield urls


def _fire(urls: list[str], request: dict[str, Any]) -> list[tuple[int, dict[str, Any]]]:
    """Send ``request`` to every server at the same moment; (status, body) per server."""
    barrier = threading.Barrier(len(urls))

    def one(base: str) -> tuple[int, dict[str, Any]]:
        with httpx.Client(base_url=base, timeout=60) as c:
            built = c.build_request("POST", "/api/v1/documents", **request)
            barrier.wait()
            r = c.send(built)
            return r.status_code, r.json()

    with ThreadPoolExecutor(max_workers=len(urls)) as pool:
        return list(pool.map(one, urls))


def _check_round(results: list[tuple[int, dict[str, Any]]]) -> int:
    """One 201, the rest the same document (200) or 409 request_in_progress; the document id."""
    statuses = [s for s, _ in results]
    assert set(statuses) <= {200, 201, 409}, results
    assert statuses.count(201) == 1, results
    created = next(b for s, b in results if s == 201)
    for status, body in results:
        if status == 200:
            assert body["id"] == created["id"] and body["deposit"]["created"] is False, body
        elif status == 409:
            assert body["error"]["code"] == "request_in_progress", body
    return int(created["id"])


def _chain_verifies(s: Session) -> None:
    prev = audit_format.GENESIS_HASH
    events = s.exec(select(AuditEvent).order_by(col(AuditEvent.seq))).all()
    for i, ev in enumerate(events, start=1):
        assert ev.seq == i and ev.prev_hash == prev
        assert audit_format.event_hash(ev.model_dump()) == ev.hash
        prev = ev.hash
    head = s.get(AuditHead, 1)
    assert head is not None and head.seq == len(events) and head.hash == prev


def _deposited_events(s: Session, doc_id: int) -> int:
    return s.exec(
        select(func.count())
        .select_from(AuditEvent)
        .where(
            AuditEvent.action == "document.deposited",
            AuditEvent.target_type == "document",
            AuditEvent.target_id == str(doc_id),
        )
    ).one()


@BOTH_DBS
def test_same_idempotency_key_on_all_servers(servers, demo: Demo, ctx: AppContext) -> None:
    folder = team_folder(ctx)
    created: list[int] = []
    for i in range(ROUNDS):
        # even rounds: a content no one holds; odd rounds: the same content each time (copies)
        content = f"冪等な登録 {i}".encode() * 50 if i % 2 == 0 else "同じ内容".encode() * 50
        request = {
            "headers": {**demo.auth("tanaka"), "Idempotency-Key": f"race-{i}"},
            "data": {"folder_id": str(folder)},
            "files": {"file": (f"冪等{i}.txt", content, "text/plain")},
        }
        created.append(_check_round(_fire(servers, request)))
    with Session(ctx.engine) as s:
        assert s.exec(select(func.count()).select_from(Document)).one() == ROUNDS
        keys = s.exec(select(IdempotencyKey)).all()
        assert sorted(k.document_id for k in keys) == sorted(created)
        assert all(_deposited_events(s, d) == 1 for d in created)
        _chain_verifies(s)


@BOTH_DBS
def test_same_external_id_on_all_servers(servers, demo: Demo, ctx: AppContext) -> None:
    svc = demo.auth("denshi-kessai")
    with httpx.Client(base_url=servers[0], timeout=60) as c:
        case = c.put(
            "/api/v1/cases/RACE-1",
            json={"title": "同時決裁", "organization_code": "SOUMU-ZAISEI", "class_code": "B0102"},
            headers=svc,
        )
        assert case.status_code in (200, 201), case.text
        case_id = case.json()["case_id"]
    created: list[int] = []
    for i in range(ROUNDS):
        appr = {**APPROVAL, "external_system": "denshi-kessai", "external_id": f"R-{i}"}
        content = f"決裁文書 {i}".encode() * 50 if i % 2 == 0 else "同じ決裁文書".encode() * 50
        request = {
            "headers": svc,
            "data": {"case_id": case_id, "approval": json.dumps(appr)},
            "files": {"file": (f"決裁{i}.txt", content, "text/plain")},
        }
        created.append(_check_round(_fire(servers, request)))
    with Session(ctx.engine) as s:
        docs = s.exec(select(Document).where(col(Document.external_system).is_not(None))).all()
        assert sorted(d.id or 0 for d in docs) == sorted(created)
        assert all(_deposited_events(s, d) == 1 for d in created)
        _chain_verifies(s)
