"""Security headers on every response (one ASGI middleware, outermost).

- all responses: ``X-Content-Type-Options: nosniff``, ``X-Frame-Options: DENY`` and a CSP with
  ``frame-ancestors 'none'`` (nothing of Genpon may be framed; a page's own, stricter CSP from the
  web UI is kept);
- stored content (``/api/v1/documents/{id}/content``, the web UI's ``/documents/{id}/download``):
  ``Content-Security-Policy: sandbox; default-src 'none'`` replaces any other, so an uploaded
  HTML or SVG file opened in the browser runs no script and loads nothing;
- authenticated responses (a Bearer key or the session cookie was sent): ``Cache-Control:
  no-store``, so no shared or browser cache keeps what only the caller may read. Static assets
  keep their caching.

Headers a route or an inner middleware already set are left alone, except the content CSP and
``Cache-Control`` of authenticated responses.
"""

from __future__ import annotations

import re

from starlette.types import ASGIApp, Message, Receive, Scope, Send

CONTENT_PATH = re.compile(r"^(?:/api/v1)?/documents/[^/]+/(?:content|download)$")
CONTENT_CSP = b"sandbox; default-src 'none'; frame-ancestors 'none'"
DEFAULT_CSP = b"frame-ancestors 'none'"
SESSION_COOKIE = "genpon_session"

_ALWAYS = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"content-security-policy", DEFAULT_CSP),
)


def _authenticated(scope: Scope) -> bool:
    for name, value in scope.get("headers", []):
        if name == b"authorization":
            return True
        if name == b"cookie" and SESSION_COOKIE.encode() in value:
            return True
    return False


def security_headers(
    path: str, authenticated: bool, headers: list[tuple[bytes, bytes]]
) -> list[tuple[bytes, bytes]]:
    """``headers`` with the security headers added (pure: easy to test on its own)."""
    replace: dict[bytes, bytes] = {}
    if CONTENT_PATH.match(path):
        replace[b"content-security-policy"] = CONTENT_CSP
    if authenticated and not path.startswith("/static/"):
        replace[b"cache-control"] = b"no-store"
    out = [(k, v) for k, v in headers if k.lower() not in replace]
    out += replace.items()
    present = {k.lower() for k, _ in out}
    out += [(name, value) for name, value in _ALWAYS if name not in present]
    return out


class SecurityHeadersMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope.get("path", "")
        authenticated = _authenticated(scope)

        async def wrapped(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = security_headers(
                    path, authenticated, list(message.get("headers", []))
                )
            await send(message)

        await self.app(scope, receive, wrapped)
