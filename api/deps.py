"""Request dependencies: a unit-of-work session and the authenticated actor."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from typing import Annotated, TypeVar

from fastapi import Depends, Request, Response
from genpon.core.db import read_engine, read_only, replica_caught_up
from genpon.core.errors import TooManyRequests, Unauthorized
from genpon.records import audit, documents
from genpon.records.access import Actor, authenticate_key
from genpon.records.audit.actions import AuditAction
from genpon.records.users import SignInThrottle
from genpon.storage.base import StagedBlob
from genpon.storage.context import AppContext
from pydantic import Field
from sqlalchemy.engine import Engine
from sqlmodel import Session

T = TypeVar("T")

# Every integer a client sends (path, query, body) is bounded here: the database columns are
# 64-bit, and a larger number reaching a query is a 500 (OverflowError), not a 422.
INT64_MAX = 2**63 - 1
Id = Annotated[int, Field(ge=1, le=INT64_MAX)]
"""A row id, an audit sequence number, a version number, a tree size."""
Offset = Annotated[int, Field(ge=0, le=INT64_MAX)]
"""Rows to skip; also ``after_seq`` (0 = from the start)."""
Limit = Annotated[int, Field(ge=1, le=INT64_MAX)]
"""Rows per page; each service checks its own maximum."""
Int64 = Annotated[int, Field(ge=-INT64_MAX - 1, le=INT64_MAX)]
"""Any other integer (e.g. a fiscal year: the service says which values make sense)."""


_DEFAULT_THROTTLE = SignInThrottle()


async def get_ctx(request: Request) -> AppContext:
    # async: a plain attribute read, not worth a hop to the thread pool (FastAPI runs a sync
    # dependency there)
    return request.app.state.ctx  # type: ignore[no-any-return]


def in_transaction(engine: Engine, work: Callable[[Session], T]) -> T:
    """Run ``work`` in one transaction, opened, used and committed in the calling thread.

    For async routes (uploads): they receive the body on the event loop and then do all the
    database work in one worker-thread call, so no transaction (and no lock it took: SQLite's
    write lock, row locks) is held across an ``await``, and a request costs one hop, not one per
    step plus the commit."""
    with Session(engine, expire_on_commit=False) as session:
        try:
            out = work(session)
            session.commit()
        except BaseException:
            session.rollback()
            raise
    return out


def deposit_upload(
    ctx: AppContext,
    session: Session,
    actor: Actor,
    staged: StagedBlob,
    req: documents.DepositIn,
) -> documents.DepositOutcome:
    """:func:`records.documents.deposit` of an uploaded file with this deployment's settings
    (allowed types, time zone): what every deposit route (API and web) calls."""
    return documents.deposit(
        session,
        ctx.store,
        actor,
        staged,
        req,
        allowed_types=ctx.settings.allowed_types,
        timezone=ctx.settings.timezone,
    )


def get_session(request: Request) -> Iterator[Session]:
    """One transaction per request: committed when the handler returns, rolled back on error."""
    ctx: AppContext = request.app.state.ctx
    with Session(ctx.engine, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


def get_read_session(request: Request, response: Response) -> Iterator[Session]:
    """The session of a request that only reads (searches, document pages). With
    ``GENPON_DATABASE_READ_URL`` it is on the read replica once that has replayed everything
    committed before the request began (read-your-writes for every caller, whichever server took
    the write, with no client state), else on the primary; the response says which in
    ``X-Genpon-Read``. Without a read URL it is :func:`get_session`."""
    ctx: AppContext = request.app.state.ctx
    url = ctx.settings.database_read_url
    if not url or ctx.engine.dialect.name != "postgresql":
        yield from get_session(request)
        return
    engine = read_engine(url)
    if not replica_caught_up(ctx.engine, engine, ctx.settings.read_wait_ms / 1000):
        engine = ctx.engine
    response.headers["X-Genpon-Read"] = "replica" if engine is not ctx.engine else "primary"
    with Session(engine, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


def bearer_token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return None


def get_actor(request: Request) -> Actor:
    """Bearer API key, or (for the web UI) the cookie session set by api.web."""
    cached = getattr(request.state, "actor", None)
    if cached is not None:
        return cached  # type: ignore[no-any-return]
    token = bearer_token(request)
    ctx: AppContext = request.app.state.ctx
    if token is None:
        resolver = getattr(request.app.state, "session_actor", None)
        actor = resolver(request) if resolver else None
        if actor is None:
            raise Unauthorized(
                "authentication_required", "認証が必要です（Authorization: Bearer <APIキー>）。"
            )
    else:
        actor = _authenticate_key(request, ctx, token)
    request.state.actor = actor
    return actor


def key_throttle(request: Request) -> SignInThrottle:
    """The app's throttle (``api.web`` installs it), or the default limits."""
    throttle = getattr(request.app.state, "sign_in_throttle", None)
    return throttle if isinstance(throttle, SignInThrottle) else _DEFAULT_THROTTLE


def _authenticate_key(request: Request, ctx: AppContext, token: str) -> Actor:
    """The key's actor. A client that keeps sending invalid keys gets 429
    ``too_many_failures`` instead of 401 for a while (a valid key still works: keys are not
    guessable, and one failing system behind a shared address must not lock out the others).
    The counts are in the database, shared by all server processes; reaching the limit is in
    the audit log."""
    client = request.client.host if request.client else "unknown"
    throttle = key_throttle(request)
    key = f"apikey:{client}"
    # A valid key only reads: on SQLite that transaction must not queue for the write lock
    # behind every deposit in flight. Counting a failure writes, in a transaction of its own.
    with Session(read_only(ctx.engine)) as s:
        try:
            return authenticate_key(s, token)
        except Unauthorized as exc:
            refused = exc
    with Session(ctx.engine) as s:
        wait = throttle.retry_after(s, key)
        if wait > 0:
            raise TooManyRequests(
                "too_many_failures",
                f"無効なAPIキーによる認証の失敗が続いたため、{math.ceil(wait)}秒間お待ちください。",
                {"retry_after": math.ceil(wait)},
            ) from None
        failures = throttle.failed(s, key)
        if failures == throttle.threshold:
            audit.record(
                s,
                actor="-",
                action=AuditAction.SIGN_IN_LOCKED,
                target_type="client",
                target_id=client,
                details={"client": client, "via": "api_key", "failures": failures},
            )
        s.commit()
    raise refused


CtxDep = Annotated[AppContext, Depends(get_ctx)]
SessionDep = Annotated[Session, Depends(get_session, scope="function")]
ReadSessionDep = Annotated[Session, Depends(get_read_session, scope="function")]
ActorDep = Annotated[Actor, Depends(get_actor)]
