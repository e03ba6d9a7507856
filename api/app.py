"""The FastAPI application: API, web UI and health check, built from one settings object."""

from __future__ import annotations

import importlib
import logging

from fastapi import FastAPI

from api import errors
from api.context import AppContext
from api.routes import cases, documents, folders, health, masters, users
from core.settings import Settings, get_settings

log = logging.getLogger("genpon")

# Routers of later domains; each module exposes ``router`` (and optionally ``install(app)``).
OPTIONAL_ROUTERS = (
    "api.routes.search",
    "api.routes.retention",
    "api.routes.audit",
    "api.routes.imports",
    "api.web.routes",
)


def create_app(settings: Settings | None = None, ctx: AppContext | None = None) -> FastAPI:
    settings = settings or get_settings()
    ctx = ctx or AppContext.build(settings)
    app = FastAPI(
        title="Genpon 原本",
        version="0.1.0",
        description="公文書の原本管理（保存・検索・保存期間・監査）",
    )
    app.state.ctx = ctx
    errors.install(app)
    for module in (health, masters, cases, folders, documents, users):
        app.include_router(module.router)
    for name in OPTIONAL_ROUTERS:
        try:
            mod = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name and name.startswith(exc.name):
                continue
            raise
        if hasattr(mod, "install"):
            mod.install(app)
        else:
            app.include_router(mod.router)
    return app
