"""Jinja2 rendering with the request's language, CSRF token, actor and date formats."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import Request
from fastapi.responses import HTMLResponse
from genpon.api.web import i18n
from genpon.api.web.session import actor_of, load
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup

TEMPLATES = Path(__file__).parent / "templates"

env = Environment(
    loader=FileSystemLoader(TEMPLATES),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)
env.globals.update(
    RETENTION_JA=i18n.RETENTION_JA,
    DISPOSITION_JA=i18n.DISPOSITION_JA,
    STATUS_JA=i18n.STATUS_JA,
    STATE_JA=i18n.STATE_JA,
    FOLDER_KIND_JA=i18n.FOLDER_KIND_JA,
    ROLE_JA=i18n.ROLE_JA,
    fmt_size=i18n.fmt_size,
)


def safe_next(value: str | None, default: str = "/") -> str:
    """Only local paths are followed after sign-in or a language switch (no open redirect)."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return default
    return value


def page_context(request: Request) -> dict[str, Any]:
    sess = load(request)
    lang = sess.lang
    tz = request.app.state.ctx.settings.timezone
    actor = actor_of(request)

    def _(text: str, **kw: object) -> str:
        return i18n.translate(lang, text, **kw)

    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return {
        "request": request,
        "lang": lang,
        "_": _,
        "csrf": sess.csrf,
        "actor": actor,
        "display_name": getattr(request.state, "display_name", None),
        "here": here,
        "here_q": quote(here, safe=""),
        "d": lambda v: i18n.fmt_date(v, tz, lang),
        "dt": lambda v: i18n.fmt_datetime(v, tz, lang),
        "fy": lambda v: i18n.fmt_fiscal_year(v, lang),
        "csrf_field": Markup(f'<input type="hidden" name="csrf" value="{sess.csrf}">'),
        "is_officer": bool(actor and (actor.has_role("records_officer") or actor.is_admin)),
        "is_auditor": bool(actor and (actor.has_role("auditor") or actor.is_admin)),
    }


def render(request: Request, template: str, status_code: int = 200, **data: Any) -> HTMLResponse:
    ctx = page_context(request)
    ctx.update(data)
    html = env.get_template(template).render(ctx)
    return HTMLResponse(html, status_code=status_code)
