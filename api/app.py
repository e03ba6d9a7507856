"""The FastAPI application: API, web UI and health check, built from one settings object."""

from __future__ import annotations

import logging

from fastapi import FastAPI
from genpon.api import errors
from genpon.api.context import build_context
from genpon.api.routes import (
    audit,
    cases,
    documents,
    folders,
    health,
    imports,
    masters,
    preview,
    retention,
    search,
    users,
)
from genpon.api.security import SecurityHeadersMiddleware
from genpon.api.web import routes as web
from genpon.core.settings import Settings, get_settings
from genpon.storage.context import AppContext

log = logging.getLogger("genpon")


def create_app(settings: Settings | None = None, ctx: AppContext | None = None) -> FastAPI:
    settings = settings or get_settings()
    ctx = ctx or build_context(settings)
    app = FastAPI(
        title="Genpon 原本",
        version="0.1.0",
        description="公文書の原本管理（保存・検索・保存期間・監査）",
    )
    app.state.ctx = ctx
    errors.install(app)
    for module in (health, masters, cases, folders, documents, preview, users, retention, imports):
        app.include_router(module.router)
    for installer in (search.install, audit.install, web.install):
        installer(app)  # router plus what it runs in the server (index worker, checkpointer)
    app.add_middleware(SecurityHeadersMiddleware)  # added last: outermost, sees every response
    return app
