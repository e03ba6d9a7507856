"""Users and their credentials: API keys (shown once, stored hashed) and web passwords (argon2)."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from genpon.core.clock import utcnow
from genpon.core.errors import Forbidden, InvalidInput, NotFound, Unauthorized
from genpon.records import audit
from genpon.records.access import Actor, actor_for_user, create_api_key
from genpon.records.master import get_user
from genpon.records.models import ApiKey, User
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


def authenticate_password(session: Session, login: str, password: str) -> Actor:
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
