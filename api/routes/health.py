"""Liveness and readiness (Docker HEALTHCHECK)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from genpon.api.contracts.records import HealthPublic
from genpon.api.deps import CtxDep
from sqlalchemy import text
from sqlmodel import Session

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=HealthPublic)
def healthz(ctx: CtxDep) -> dict[str, Any]:
    with Session(ctx.engine) as s:
        s.exec(text("SELECT 1"))  # type: ignore[call-overload]
    return {
        "status": "ok",
        "database": ctx.engine.dialect.name,
        "storage": ctx.store.name,
        "search": ctx.settings.search_backend,
    }
