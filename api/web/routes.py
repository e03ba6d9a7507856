"""Web UI entry point: ``install(app)`` adds the pages, static files, the cookie session, the
Japanese error pages and security headers to the FastAPI app (called by ``api.app``)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, FastAPI, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from genpon.api.web import session as websession
from genpon.api.web.deps import LoginRequired
from genpon.api.web.render import render, safe_next
from genpon.core.errors import TooManyRequests, Unauthorized
from genpon.records.access import authenticate_key
from genpon.records.users import SignInThrottle, authenticate_password
from sqlmodel import Session
from starlette.types import ASGIApp, Message, Receive, Scope, Send

STATIC = Path(__file__).parent / "static"

router = APIRouter(include_in_schema=False)

ERROR_TITLES = {
    400: "入力内容を確認してください",
    401: "サインインが必要です",
    403: "権限がありません",
    404: "ページが見つかりません",
    405: "この操作はできません",
    409: "操作を完了できませんでした",
    413: "ファイルが大きすぎます",
    415: "この種類のファイルは登録できません",
    422: "入力内容を確認してください",
    429: "しばらくしてからお試しください",
}
DEFAULT_MESSAGES = {
    403: "この操作を行う権限がありません。",
    404: "お探しのページは見つからないか、閲覧する権限がありません。",
    405: "このページではその操作はできません。",
    500: "内部エラーが発生しました。時間をおいてもう一度お試しいただき、解決しない場合は管理者に連絡してください。",
}


def render_error(request: Request, status: int, code: str, message: str) -> Response:
    """Every error as a Japanese sentence on a page with the site's navigation (no traces)."""
    if status == 401:
        return RedirectResponse(f"/login?next={quote(request.url.path, safe='')}", 303)
    if not message or message.isascii():
        message = DEFAULT_MESSAGES.get(status, DEFAULT_MESSAGES[500])
    hint = None
    if status == 404:
        hint = "存在しないか、あなたの所属・役割では閲覧できない場所にあります。"
    try:
        return render(
            request,
            "error.html",
            status_code=status,
            title=ERROR_TITLES.get(status, "問題が発生しました"),
            message=message,
            code=code,
            status=status,
            hint=hint,
        )
    except Exception:  # the error page itself must never fail
        return HTMLResponse(
            f"<!doctype html><html lang=ja><meta charset=utf-8><title>エラー</title>"
            f"<p>{DEFAULT_MESSAGES[500]}</p></html>",
            status_code=status,
        )


class WebMiddleware:
    """Writes the session cookie when it changed and adds security headers to web pages."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope.get("path", "")
        web = not path.startswith("/api/")

        async def wrapped(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                sess = scope.get("state", {}).get("web_session")
                if sess is not None and sess.dirty:
                    holder = Response()
                    request = Request(scope)
                    websession.save(request, holder, sess)
                    headers += [(k, v) for k, v in holder.raw_headers if k.lower() == b"set-cookie"]
                if web:
                    headers += [
                        (b"x-frame-options", b"DENY"),
                        (b"x-content-type-options", b"nosniff"),
                        (b"referrer-policy", b"same-origin"),
                        (
                            b"content-security-policy",
                            b"default-src 'self'; img-src 'self' data:; style-src 'self'; "
                            b"script-src 'self'; form-action 'self'; frame-ancestors 'none'",
                        ),
                    ]
                    if not path.startswith("/static/"):
                        headers.append((b"cache-control", b"no-store"))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, wrapped)


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request, next: str | None = None) -> Response:
    if websession.actor_of(request) is not None:
        return RedirectResponse(safe_next(next), 303)
    websession.load(request)
    return render(request, "login.html", next=safe_next(next), error=None, login="")


@router.post("/login", response_class=HTMLResponse)
def login_submit(
    request: Request,
    csrf: str = Form(""),
    login: str = Form("", max_length=64),
    password: str = Form("", max_length=1024),
    api_key: str = Form("", max_length=200),
    next: str = Form("/", max_length=2000),
) -> Response:
    websession.check_csrf(request, csrf)
    sess = websession.load(request)
    ctx = request.app.state.ctx
    client = request.client.host if request.client else "unknown"
    throttle: SignInThrottle = request.app.state.sign_in_throttle
    try:
        with Session(ctx.engine) as s:
            if api_key.strip():
                wait = throttle.retry_after(s, f"client:{client}")  # keys: per client only
                if wait > 0:
                    raise TooManyRequests(
                        "sign_in_throttled",
                        "サインインの失敗が続いたため、一時的にサインインできません。",
                        {"retry_after": math.ceil(wait)},
                    )
                key = api_key.strip()
                actor = authenticate_key(s, key)
                if actor.kind != "person":
                    raise Unauthorized(
                        "service_account", "システム連携用のキーでは画面にサインインできません。"
                    )
                prefix = key[3:].partition("_")[0]
            else:
                if not login.strip() or not password:
                    raise Unauthorized(
                        "credentials_required", "利用者IDとパスワードを入力してください。"
                    )
                try:
                    actor = authenticate_password(
                        s, login.strip(), password, client=client, throttle=throttle
                    )
                finally:
                    s.commit()  # a failure's audit events stay
                prefix = None
    except (Unauthorized, TooManyRequests) as exc:
        if isinstance(exc, Unauthorized) and api_key.strip():
            with Session(ctx.engine) as s:
                throttle.failed(s, f"client:{client}")
                s.commit()
        return render(
            request,
            "login.html",
            status_code=exc.status_code,
            next=safe_next(next),
            error=exc.message,
            login=login,
        )
    websession.sign_in(request, sess, actor, prefix)
    return RedirectResponse(safe_next(next), 303)


@router.post("/logout")
def logout(request: Request, csrf: str = Form("")) -> Response:
    websession.check_csrf(request, csrf)
    websession.sign_out(request, websession.load(request))
    return RedirectResponse("/login?signed_out=1", 303)


@router.post("/lang")
def set_language(
    request: Request, csrf: str = Form(""), lang: str = Form("ja"), next: str = Form("/")
) -> Response:
    websession.check_csrf(request, csrf)
    sess = websession.load(request)
    sess.lang = "en" if lang == "en" else "ja"
    sess.dirty = True
    return RedirectResponse(safe_next(next), 303)


def install(app: FastAPI) -> None:
    from genpon.api.web import pages

    app.state.session_actor = websession.api_session_actor
    app.state.sign_in_throttle = SignInThrottle()
    app.state.render_error = render_error

    @app.exception_handler(LoginRequired)
    async def _login_required(request: Request, exc: LoginRequired) -> Any:
        here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/login?next={quote(here, safe='')}", 303)

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.include_router(router)
    for module in pages.MODULES:
        app.include_router(module.router)
    app.add_middleware(WebMiddleware)
