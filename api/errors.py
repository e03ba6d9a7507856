"""One JSON error shape for the whole API: ``{"error": {"code", "message", "details"}}``."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from genpon.core.errors import GenponError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger("genpon.api")

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    411: "length_required",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid_request",
    429: "too_many_requests",
}


def error_body(code: str, message: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": details or {}}}


def _wants_html(request: Request) -> bool:
    return not request.url.path.startswith("/api/") and "text/html" in request.headers.get(
        "accept", ""
    )


async def _render_page(request: Request, status: int, code: str, message: str) -> Any:
    """The web UI's error page. Rendering reads the session (a database transaction, which on
    SQLite waits for the write lock) and template files: never on the event loop, where one
    blocked call stalls every request of the process (issue 15, item 6)."""
    render = request.app.state.render_error
    return await run_in_threadpool(render, request, status, code, message)


def _has_pages(request: Request) -> bool:
    return _wants_html(request) and getattr(request.app.state, "render_error", None) is not None


def install(app: FastAPI) -> None:
    @app.exception_handler(GenponError)
    async def _genpon(request: Request, exc: GenponError) -> Any:
        if _has_pages(request):
            return await _render_page(request, exc.status_code, exc.code, exc.message)
        headers = {"WWW-Authenticate": "Bearer"} if exc.status_code == 401 else {}
        retry = exc.details.get("retry_after") if exc.status_code == 429 else None
        if isinstance(retry, int):
            headers["Retry-After"] = str(retry)
        return JSONResponse(exc.to_dict(), status_code=exc.status_code, headers=headers or None)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> Any:
        errors = [
            {
                "loc": [str(p) for p in e.get("loc", ())],
                "message": str(e.get("msg", "")),
                "type": e.get("type"),
            }
            for e in exc.errors()
        ]
        code = (
            "invalid_json"
            if any(e["type"] == "json_invalid" for e in errors)
            else "invalid_request"
        )
        message = (
            "JSON の形式が正しくありません。"
            if code == "invalid_json"
            else "入力内容に誤りがあります。"
        )
        if _has_pages(request):
            return await _render_page(request, 422, code, message)
        return JSONResponse(error_body(code, message, {"errors": errors}), status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Any:
        code = _HTTP_CODES.get(exc.status_code, "http_error")
        message = exc.detail if isinstance(exc.detail, str) else code
        if _has_pages(request):
            return await _render_page(request, exc.status_code, code, message)
        return JSONResponse(
            error_body(code, message),
            status_code=exc.status_code,
            headers=getattr(exc, "headers", None),
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Any:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        message = "内部エラーが発生しました。管理者に連絡してください。"
        if _has_pages(request):
            return await _render_page(request, 500, "internal_error", message)
        return JSONResponse(error_body("internal_error", message), status_code=500)
