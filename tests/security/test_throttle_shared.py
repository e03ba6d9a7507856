"""The sign-in and API-key throttles count in the database: several server processes (two app
instances with engines of their own over one database) apply one limit, not one each."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from genpon.api.app import create_app
from genpon.core.db import make_engine
from genpon.records.models import AuditEvent, SignInFailures
from genpon.storage.context import AppContext
from genpon.storage.registry import make_store
from sqlmodel import Session, select

from tests.web.helpers import HTML, csrf_of

BAD_KEY = "gp_000000000000_" + "x" * 43


class FakeClock:
    def __init__(self) -> None:
        self.now = 2_000_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def two_servers(ctx: AppContext, demo: Any, clock: FakeClock) -> Iterator[list[TestClient]]:
    """Two apps as two processes would be: own engine, own store object, own throttle."""
    other = AppContext(
        settings=ctx.settings,
        engine=make_engine(ctx.settings.db_url),
        store=make_store(ctx.settings),
    )
    clients = []
    for c in (ctx, other):
        app = create_app(c.settings, c)
        app.state.sign_in_throttle.clock = clock
        clients.append(TestClient(app, raise_server_exceptions=False))
    try:
        for client in clients:
            client.__enter__()
        yield clients
    finally:
        for client in clients:
            client.__exit__(None, None, None)
        other.engine.dispose()


def _login(client: TestClient, login: str, password: str) -> Any:
    token = csrf_of(client.get("/login", headers=HTML).text)
    return client.post(
        "/login",
        data={"csrf": token, "login": login, "password": password},
        headers=HTML,
        follow_redirects=False,
    )


def _rows(ctx: AppContext) -> dict[str, int]:
    with Session(ctx.engine) as s:
        return {r.key: r.failures for r in s.exec(select(SignInFailures))}


def test_password_failures_count_across_processes(two_servers, ctx, clock):
    a, b = two_servers
    for client in (a, b, a, b, a):  # five failures, spread over both processes
        assert _login(client, "tanaka", "wrong-password").status_code == 401
    assert _rows(ctx) == {"account:tanaka": 5, "client:testclient": 5}
    for client in (a, b):  # each process refuses, even the right password
        r = _login(client, "tanaka", "genpon-demo")
        assert r.status_code == 429 and "一時的にサインインできません" in r.text
    clock.now += 1.5
    assert _login(b, "tanaka", "genpon-demo").status_code == 303
    assert "account:tanaka" not in _rows(ctx)  # a success clears the account's count


def test_invalid_api_keys_are_limited_per_client(two_servers, ctx, demo, clock):
    a, b = two_servers
    bad = {"Authorization": f"Bearer {BAD_KEY}"}
    for client in (a, b, a, b, a):
        r = client.get("/api/v1/me", headers=bad)
        assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_api_key", r.text
    assert _rows(ctx) == {"apikey:testclient": 5}
    for client in (a, b):
        r = client.get("/api/v1/me", headers=bad)
        assert r.status_code == 429, r.text
        assert r.json()["error"]["code"] == "too_many_failures"
        assert r.headers["retry-after"] == "1"
        assert "お待ちください" in r.json()["error"]["message"]
    # a valid key from the same client still works: keys are not guessable
    assert b.get("/api/v1/me", headers=demo.auth("tanaka")).status_code == 200
    with Session(ctx.engine) as s:
        locked = s.exec(select(AuditEvent).where(AuditEvent.action == "auth.sign_in_locked")).all()
    assert [(e.target_type, e.target_id, e.details["via"]) for e in locked] == [
        ("client", "testclient", "api_key")
    ]
    clock.now += 1.5  # the wait is over: the next failure is a 401 again, and doubles the wait
    assert a.get("/api/v1/me", headers=bad).status_code == 401
    assert b.get("/api/v1/me", headers=bad).headers["retry-after"] == "2"
    # the web form's key sign-in has its own per-client count
    assert "client:testclient" not in _rows(ctx)
