"""Users and their credentials: API keys (shown once, stored hashed) and web passwords (argon2).

Password sign-in is throttled per account and per client (:class:`SignInThrottle`): after
:attr:`~SignInThrottle.threshold` failures in a row the next attempt must wait, doubling from
one second up to a 15-minute lockout; attempts during the wait are refused without checking the
password. Failures and lockouts are in the audit log; a success clears the account's count. The
counts are rows in the database, so every server process applies the same limit.
"""

from __future__ import annotations

import math
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from genpon.core.clock import utcnow
from genpon.core.errors import Forbidden, InvalidInput, NotFound, TooManyRequests, Unauthorized
from genpon.core.signing import SystemKey, SystemKeyring, current_key_id, signing_state
from genpon.records import audit
from genpon.records.access import Actor, actor_for_user, create_api_key, require_role
from genpon.records.audit.actions import AuditAction
from genpon.records.master import get_user
from genpon.records.models import ApiKey, SignInFailures, User
from sqlalchemy import delete
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

_hasher = PasswordHasher()


def _may_manage(actor: Actor, user: User) -> None:
    if actor.is_admin or actor.user_id == user.id:
        return
    raise Forbidden("role_required", "他の利用者の鍵は管理者のみが発行できます。")


def issue_key(session: Session, actor: Actor, login: str, label: str = "") -> tuple[ApiKey, str]:
    user = get_user(session, login)
    _may_manage(actor, user)
    clear = create_api_key(session, user, label=label)
    key = session.exec(
        select(ApiKey).where(ApiKey.user_id == user.id).order_by(col(ApiKey.id).desc())
    ).first()
    assert key is not None
    audit.record(
        session,
        actor=actor.login,
        action=audit.AuditAction.KEY_ISSUED,
        target_type="user",
        target_id=login,
        details={"prefix": key.prefix, "label": label},
    )
    return key, clear


def list_keys(session: Session, actor: Actor, login: str) -> list[ApiKey]:
    user = get_user(session, login)
    _may_manage(actor, user)
    return list(session.exec(select(ApiKey).where(ApiKey.user_id == user.id)).all())


def revoke_key(session: Session, actor: Actor, prefix: str) -> ApiKey:
    key = session.exec(select(ApiKey).where(ApiKey.prefix == prefix)).first()
    user = session.get(User, key.user_id) if key else None
    if key is None or user is None:
        raise NotFound("key_not_found", "APIキーが見つかりません。")
    _may_manage(actor, user)
    if key.revoked_at is None:
        key.revoked_at = utcnow()
        session.add(key)
        audit.record(
            session,
            actor=actor.login,
            action=audit.AuditAction.KEY_REVOKED,
            target_type="user",
            target_id=user.login,
            details={"prefix": prefix},
        )
    return key


def set_password(session: Session, actor: Actor, login: str, password: str) -> None:
    user = get_user(session, login)
    _may_manage(actor, user)
    if len(password) < 8:
        raise InvalidInput("password_too_short", "パスワードは8文字以上にしてください。")
    user.password_hash = _hasher.hash(password)
    user.updated_at = utcnow()
    session.add(user)
    audit.record(
        session,
        actor=actor.login,
        action=audit.AuditAction.USER_PASSWORD_SET,
        target_type="user",
        target_id=login,
    )


def reset_password(session: Session, actor: Actor, login: str) -> str:
    """Give a person a new random password (admins only) and return it in clear: the only
    time anyone sees it. Audited as ``user.password_set``; sign-ins already open stay open."""
    require_role(actor, "admin")
    user = get_user(session, login)
    if user.kind != "person":
        raise InvalidInput(
            "not_a_person",
            "サービスアカウントは画面にサインインしないため、パスワードはありません。",
        )
    password = secrets.token_urlsafe(12)
    set_password(session, actor, login, password)
    return password


def list_all_keys(
    session: Session, actor: Actor, *, active_only: bool = False
) -> list[tuple[ApiKey, User]]:
    """Every API key with its user, newest first (admins only)."""
    require_role(actor, "admin")
    query = select(ApiKey, User).where(ApiKey.user_id == User.id)
    if active_only:
        query = query.where(col(ApiKey.revoked_at).is_(None))
    rows = session.exec(query.order_by(col(ApiKey.created_at).desc(), col(ApiKey.id).desc()))
    return [(k, u) for k, u in rows.all()]


@dataclass
class SystemKeyStatus:
    """What an administrator needs to know about the system signing key (システム署名鍵)."""

    key_id: str | None  # this node's key (None: none here)
    source: str  # env | file | dir
    can_sign: bool
    reason: str | None
    current_key_id: str | None  # the deployment's current key (table ``system_key``)
    history: list[tuple[str, datetime, datetime | None]]  # key id, created, retired; newest first


def system_key_status(
    session: Session, actor: Actor, keyring: SystemKeyring, engine: Engine
) -> SystemKeyStatus:
    """Key id, source, whether this node can sign, and the rotation history (admins only)."""
    require_role(actor, "admin")
    can_sign, reason = signing_state(keyring, engine)
    try:
        kid: str | None = keyring.key_id if keyring.ready() else None
    except Exception:  # unreadable key: signing_state's reason says why
        kid = None
    rows = session.exec(
        select(SystemKey).order_by(col(SystemKey.created_at).desc(), col(SystemKey.key_id))
    ).all()
    return SystemKeyStatus(
        key_id=kid,
        source=keyring.source,
        can_sign=can_sign,
        reason=reason,
        current_key_id=current_key_id(session),
        history=[(r.key_id, r.created_at, r.retired_at) for r in rows],
    )


@dataclass
class SignInThrottle:
    """Consecutive sign-in failures per key (``account:<login>``, ``client:<address>``,
    ``apikey:<address>``), kept in the database (``sign_in_failures``) so that every server
    process sees the same counts. A count is forgotten ``window_s`` after its last failure.
    Every method works in the caller's session; the caller commits (a failure's count must be
    committed even when the request fails)."""

    threshold: int = 5
    base_s: float = 1.0
    lockout_s: float = 15 * 60.0
    window_s: float = 15 * 60.0
    clock: Callable[[], float] = time.time  # wall clock: processes share it

    def delay(self, count: int) -> float:
        """Seconds to wait after ``count`` consecutive failures."""
        if count < self.threshold:
            return 0.0
        return min(self.base_s * 2.0 ** (count - self.threshold), self.lockout_s)

    def _current(self, row: SignInFailures | None, now: float) -> tuple[int, float]:
        if row is None or now - row.last_failure > max(self.window_s, self.delay(row.failures)):
            return 0, 0.0
        return row.failures, row.last_failure

    def retry_after(self, session: Session, *keys: str) -> float:
        """Seconds until any of ``keys`` may try again (0: now)."""
        now = self.clock()
        waits = [0.0]
        for key in keys:
            count, last = self._current(session.get(SignInFailures, key), now)
            waits.append(last + self.delay(count) - now)
        return max(waits)

    def failed(self, session: Session, key: str) -> int:
        """Count one more failure of ``key``; returns the consecutive failures so far."""
        now = self.clock()
        table = SignInFailures.__table__  # type: ignore[attr-defined]
        dialect = session.get_bind().dialect.name
        insert = postgresql_insert if dialect == "postgresql" else sqlite_insert
        # the row exists before it is locked: two processes never both insert it
        session.connection().execute(
            insert(table)
            .values(key=key, failures=0, last_failure=now)
            .on_conflict_do_nothing(index_elements=["key"])
        )
        session.connection().execute(
            delete(table).where(table.c.last_failure < now - self._forget_after())
        )
        row = session.exec(
            select(SignInFailures)
            .where(SignInFailures.key == key)
            .with_for_update()
            .execution_options(populate_existing=True)
        ).one()
        count, _ = self._current(row, now)
        row.failures, row.last_failure = count + 1, now
        session.add(row)
        session.flush()
        return row.failures

    def succeeded(self, session: Session, key: str) -> None:
        row = session.get(SignInFailures, key)
        if row is not None:
            session.delete(row)
            session.flush()

    def _forget_after(self) -> float:
        return max(self.window_s, self.lockout_s) + 60.0


def authenticate_password(
    session: Session,
    login: str,
    password: str,
    *,
    client: str = "unknown",
    throttle: SignInThrottle | None = None,
) -> Actor:
    """The actor whose password this is. With a ``throttle``: refused with 429
    ``sign_in_throttled`` while the account or the client must wait, and every failure is
    recorded in the audit log (in ``session``: the caller commits it even when this raises)."""
    keys = (f"account:{login}", f"client:{client}")
    if throttle is not None:
        wait = throttle.retry_after(session, *keys)
        if wait > 0:
            seconds = math.ceil(wait)
            raise TooManyRequests(
                "sign_in_throttled",
                f"サインインの失敗が続いたため、一時的にサインインできません。"
                f"{seconds}秒後にもう一度お試しください。",
                {"retry_after": seconds},
            )
    try:
        actor = _check_password(session, login, password)
    except Unauthorized:
        if throttle is not None:
            _record_failure(session, throttle, login, client, keys)
        raise
    if throttle is not None:
        throttle.succeeded(session, keys[0])
    return actor


def _record_failure(
    session: Session, throttle: SignInThrottle, login: str, client: str, keys: tuple[str, str]
) -> None:
    counts = {
        "account": throttle.failed(session, keys[0]),
        "client": throttle.failed(session, keys[1]),
    }
    details = {"login": login, "client": client, "failures": counts}
    audit.record(
        session,
        actor=login or "-",
        action=AuditAction.SIGN_IN_FAILED,
        target_type="user",
        target_id=login or "-",
        details=details,
    )
    locked = [k for k, n in counts.items() if n >= throttle.threshold]
    if locked:
        audit.record(
            session,
            actor=login or "-",
            action=AuditAction.SIGN_IN_LOCKED,
            target_type="user",
            target_id=login or "-",
            details={
                **details,
                "locked": locked,
                "retry_after_s": throttle.retry_after(session, *keys),
            },
        )


def _check_password(session: Session, login: str, password: str) -> Actor:
    bad = Unauthorized("invalid_credentials", "利用者IDまたはパスワードが正しくありません。")
    user = session.exec(select(User).where(User.login == login)).first()
    if user is None or not user.password_hash or user.kind != "person":
        _hasher.hash("timing-equalizer")
        raise bad
    try:
        _hasher.verify(user.password_hash, password)
    except (VerificationError, InvalidHashError):
        raise bad from None
    return actor_for_user(session, user)
