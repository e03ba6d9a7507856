"""Cookie session of the web UI and CSRF protection.

The session is a signed cookie (itsdangerous, keyed by ``GENPON_SECRET_KEY``) holding the user
id, the sign-in's token, a CSRF token and the language; it is ``HttpOnly`` and ``SameSite=Lax``
(``Secure`` when ``GENPON_COOKIE_SECURE``), and expires after :data:`MAX_AGE` seconds. Each
sign-in is also a row on the server (``records.access.open_web_sign_in``): signing out ends it
there, so a copy of the cookie is refused afterwards. A session opened with an
API key remembers the key prefix and ends when the key is revoked; a deactivated user is signed
out on the next request. Every form posts the session's CSRF token (field ``csrf``); scripts
send it in the ``X-CSRF-Token`` header, which is also required when the JSON API is called with
the cookie instead of a Bearer key.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Any

from fastapi import Request, Response
from genpon.core.errors import GenponError
from genpon.records.access import Actor, close_web_sign_in, open_web_sign_in, web_session_actor
from genpon.records.models import User
from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlmodel import Session

COOKIE = "genpon_session"
MAX_AGE = 8 * 3600
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class CsrfError(GenponError):
    status_code = 403


@dataclass
class WebSession:
    user_id: int | None = None
    csrf: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    lang: str = "ja"
    key_prefix: str | None = None
    token: str | None = None  # the server-side sign-in
    dirty: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "u": self.user_id,
            "c": self.csrf,
            "l": self.lang,
            "k": self.key_prefix,
            "t": self.token,
        }


def _serializer(request: Request) -> URLSafeTimedSerializer:
    secret = request.app.state.ctx.settings.secret_key.get_secret_value()
    return URLSafeTimedSerializer(secret, salt="genpon-web-session")


def load(request: Request) -> WebSession:
    """The request's session (a fresh anonymous one when the cookie is absent or invalid)."""
    cached = getattr(request.state, "web_session", None)
    if cached is not None:
        return cached  # type: ignore[no-any-return]
    sess = WebSession(dirty=True)
    raw = request.cookies.get(COOKIE)
    if raw:
        try:
            data = _serializer(request).loads(raw, max_age=MAX_AGE)
            sess = WebSession(
                user_id=data.get("u"),
                csrf=str(data.get("c") or secrets.token_urlsafe(24)),
                lang=data.get("l") if data.get("l") in ("ja", "en") else "ja",
                key_prefix=data.get("k"),
                token=data.get("t") if isinstance(data.get("t"), str) else None,
            )
        except (BadSignature, TypeError, AttributeError):
            pass
    request.state.web_session = sess
    return sess


def save(request: Request, response: Response, sess: WebSession) -> None:
    settings = request.app.state.ctx.settings
    response.set_cookie(
        COOKIE,
        _serializer(request).dumps(sess.to_dict()),
        max_age=MAX_AGE,
        httponly=True,
        samesite="lax",
        secure=settings.cookie_secure,
        path="/",
    )


def sign_in(request: Request, sess: WebSession, actor: Actor, key_prefix: str | None) -> None:
    """Start a signed-in session; a new CSRF token prevents session fixation."""
    with Session(request.app.state.ctx.engine) as s:
        if sess.token:
            close_web_sign_in(s, sess.token)  # a sign-in over another ends the old one
        sess.token = open_web_sign_in(s, actor, key_prefix, max_age_s=MAX_AGE)
        s.commit()
    sess.user_id = actor.user_id
    sess.key_prefix = key_prefix
    sess.csrf = secrets.token_urlsafe(24)
    sess.dirty = True
    request.state.actor = actor


def sign_out(request: Request, sess: WebSession) -> None:
    if sess.token:
        with Session(request.app.state.ctx.engine) as s:
            close_web_sign_in(s, sess.token)
            s.commit()
    sess.user_id = None
    sess.key_prefix = None
    sess.token = None
    sess.csrf = secrets.token_urlsafe(24)
    sess.dirty = True


def actor_of(request: Request) -> Actor | None:
    """The signed-in actor, or None. Ends the session of a deactivated user or a revoked key."""
    cached = getattr(request.state, "actor", None)
    if cached is not None:
        return cached  # type: ignore[no-any-return]
    sess = load(request)
    if sess.user_id is None:
        return None
    with Session(request.app.state.ctx.engine) as s:
        actor = web_session_actor(s, sess.user_id, sess.key_prefix, sess.token)
        if actor is not None:
            user = s.get(User, sess.user_id)
            request.state.display_name = user.name if user else actor.login
    if actor is None:
        sign_out(request, sess)
        return None
    request.state.actor = actor
    return actor


def api_session_actor(request: Request) -> Actor | None:
    """Resolver for the JSON API (``api.deps.get_actor``): the cookie session counts only with
    the CSRF header on unsafe methods."""
    if request.method not in SAFE_METHODS:
        sent = request.headers.get("x-csrf-token", "")
        if not sent or not secrets.compare_digest(sent, load(request).csrf):
            return None
    return actor_of(request)


def check_csrf(request: Request, sent: str | None) -> None:
    sess = load(request)
    sent = sent or request.headers.get("x-csrf-token", "")
    if not sent or not secrets.compare_digest(str(sent), sess.csrf):
        raise CsrfError(
            "csrf_failed",
            "フォームの有効期限が切れたか、不正な送信です。ページを開き直してもう一度お試しください。",
        )
