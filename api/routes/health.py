"""Liveness and readiness (Docker HEALTHCHECK, load balancers) and the deployment's health.

Always HTTP 200 while this server can reach its database: a load balancer must keep sending
requests to a server that serves, even when background work lags. ``status`` is ``ok`` or
``degraded``; ``problems`` says why (no live worker writes the index, the oldest outbox row is
older than ``settings.outbox_max_age_seconds``, this node cannot sign).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from genpon.api.contracts.records import HealthPublic
from genpon.api.deps import CtxDep
from genpon.core.clock import utcnow
from genpon.core.signing import SystemKeyring, signing_state
from genpon.records.models import IndexOutbox
from genpon.records.nodes import live_nodes
from sqlalchemy import func, text
from sqlmodel import Session, select

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=HealthPublic)
def healthz(ctx: CtxDep) -> dict[str, Any]:
    st = ctx.settings
    problems: list[str] = []
    with Session(ctx.engine) as s:
        s.exec(text("SELECT 1"))  # type: ignore[call-overload]
        workers = [n.id for n in live_nodes(s, st.node_stale_seconds) if n.writes_index]
        oldest = s.exec(select(func.min(IndexOutbox.created_at))).one()
        pending = s.exec(select(func.count()).select_from(IndexOutbox)).one()
        s.rollback()
    if not workers:
        problems.append("no_worker")
    age = 0.0
    if oldest is not None:
        now = utcnow()
        oldest = oldest if oldest.tzinfo else oldest.replace(tzinfo=now.tzinfo)
        age = max(0.0, (now - oldest).total_seconds())
        if age > st.outbox_max_age_seconds:
            problems.append("outbox_stale")
    can_sign, reason = signing_state(SystemKeyring.from_settings(st), ctx.engine)
    if not can_sign:
        problems.append("cannot_sign")
    return {
        "status": "degraded" if problems else "ok",
        "database": ctx.engine.dialect.name,
        "storage": ctx.store.name,
        "search": st.search_backend,
        "problems": problems,
        "workers": len(workers),
        "outbox_pending": int(pending),
        "outbox_oldest_seconds": round(age, 1),
        "can_sign": can_sign,
        "signing_problem": reason,
    }
