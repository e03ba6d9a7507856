"""利用者の管理（管理画面, issue 18 point 9): one account at a time, by an admin.

The browser's administration screens change users one by one; the rules are the users CSV
import's (:func:`genpon.records.master._check_user_row`), and a form's errors carry the field
name instead of a CSV line. Every function checks the admin role itself and writes its audit
event (``user.created``, ``user.updated``, ``user.disabled``, ``user.enabled``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from genpon.core.clock import utcnow
from genpon.core.errors import Conflict, InvalidInput
from genpon.records import audit
from genpon.records.access import Actor, require_role
from genpon.records.audit import AuditAction
from genpon.records.master import (
    _check_user_row,  # the import's rules, shared on purpose
    _RowError,
    _sync_grants,
    get_user,
    grant_codes,
)
from genpon.records.models import Organization, User, UserKind
from sqlmodel import Session, select


def _form_errors(code: str, errors: list[_RowError]) -> None:
    if errors:
        raise InvalidInput(
            code,
            errors[0].message,
            {"errors": [{"field": e.column, "message": e.message} for e in errors]},
        )


def _no_service_roles(kind: str, roles: list[str], errors: list[_RowError]) -> None:
    # A service account deposits and registers cases, nothing more (DESIGN invariants).
    if kind == "service" and roles:
        errors.append(_RowError(0, "roles", "サービスアカウントには役割を付けられません"))


def _changed(
    session: Session,
    actor: Actor,
    user: User,
    action: AuditAction,
    details: dict[str, Any] | None = None,
) -> None:
    """Stamp an existing account as changed now and audit it (``user.updated``,
    ``user.enabled``, ``user.disabled``): the event's target is the account's login."""
    user.updated_at = utcnow()
    session.add(user)
    audit.record(
        session,
        actor=actor.login,
        action=action,
        target_type="user",
        target_id=user.login,
        details=details,
    )


def create_user(
    session: Session,
    actor: Actor,
    *,
    login: str,
    name: str,
    organization_code: str,
    roles: Iterable[str] = (),
    kind: str = "person",
    grants: Iterable[str] = (),
) -> User:
    """Register one user or service account (admins only); audited as ``user.created``."""
    require_role(actor, "admin")
    login, name = login.strip(), name.strip()
    if session.exec(select(User).where(User.login == login)).first() is not None:
        raise Conflict("user_exists", f"利用者ID {login} は既に使われています。", {"login": login})
    orgs = {o.code: o for o in session.exec(select(Organization)).all()}
    row = {
        "login": login,
        "name": name,
        "organization_code": organization_code,
        "roles": " ".join(roles),
        "kind": kind,
        "grants": " ".join(grants),
    }
    errors: list[_RowError] = []
    role_list, grant_ids = _check_user_row(0, row, orgs, {}, errors)
    _no_service_roles(kind, role_list, errors)
    if len(name) > 200:
        errors.append(_RowError(0, "name", "氏名は200文字以内です"))
    _form_errors("invalid_user", errors)
    user = User(
        login=login,
        name=name,
        organization_id=orgs[organization_code].id or 0,
        roles=role_list,
        kind=UserKind(kind),
    )
    session.add(user)
    session.flush()
    _sync_grants(session, user, grant_ids)
    audit.record(
        session,
        actor=actor.login,
        action=AuditAction.USER_CREATED,
        target_type="user",
        target_id=login,
        details={
            "name": name,
            "organization_code": organization_code,
            "roles": role_list,
            "kind": kind,
            "grants": sorted(set(grants)),
        },
    )
    return user


def update_user(
    session: Session,
    actor: Actor,
    login: str,
    *,
    name: str,
    organization_code: str,
    roles: Iterable[str],
) -> User:
    """Change a user's name, organization and roles (admins only); audited as
    ``user.updated`` with what changed. An admin cannot take away their own admin role."""
    require_role(actor, "admin")
    user = get_user(session, login)
    orgs = {o.code: o for o in session.exec(select(Organization)).all()}
    name = name.strip()
    row = {
        "login": login,
        "name": name,
        "organization_code": organization_code,
        "roles": " ".join(roles),
        "kind": user.kind,
    }
    errors: list[_RowError] = []
    role_list, _ = _check_user_row(0, row, orgs, {}, errors)
    _no_service_roles(user.kind, role_list, errors)
    if user.id == actor.user_id and "admin" not in role_list:
        errors.append(_RowError(0, "roles", "自分自身の管理者の役割は外せません"))
    if len(name) > 200:
        errors.append(_RowError(0, "name", "氏名は200文字以内です"))
    _form_errors("invalid_user", errors)
    org = orgs[organization_code]
    old_org = session.get(Organization, user.organization_id)
    changes: dict[str, list[Any]] = {}
    if user.name != name:
        changes["name"] = [user.name, name]
    if user.organization_id != org.id:
        changes["organization_code"] = [old_org.code if old_org else None, org.code]
    if sorted(user.roles) != sorted(role_list):
        changes["roles"] = [sorted(user.roles), sorted(role_list)]
    if changes:
        user.name, user.organization_id, user.roles = name, org.id or 0, role_list
        _changed(session, actor, user, AuditAction.USER_UPDATED, {"changes": changes})
    return user


def set_user_active(session: Session, actor: Actor, login: str, *, active: bool) -> User:
    """Disable or enable an account (admins only). A disabled user's API keys and web
    sign-ins stop working at once (``access.actor_for_user``); nobody disables themselves."""
    require_role(actor, "admin")
    user = get_user(session, login)
    if not active and user.id == actor.user_id:
        raise InvalidInput("self_lockout", "自分自身を無効にすることはできません。")
    if user.active != active:
        user.active = active
        _changed(
            session, actor, user, AuditAction.USER_ENABLED if active else AuditAction.USER_DISABLED
        )
    return user


def set_service_grants(
    session: Session, actor: Actor, login: str, organization_codes: Iterable[str]
) -> User:
    """Make a service account's granted organizations exactly ``organization_codes`` (admins
    only); audited as ``user.updated`` with the grants before and after."""
    require_role(actor, "admin")
    user = get_user(session, login)
    if user.kind != "service":
        raise InvalidInput(
            "not_a_service_account", "連携先の所属はサービスアカウントにのみ設定できます。"
        )
    codes = sorted(set(organization_codes))
    orgs = {o.code: o for o in session.exec(select(Organization)).all()}
    unknown = [c for c in codes if c not in orgs]
    if unknown:
        raise InvalidInput(
            "organization_not_found",
            f"所属コード {', '.join(unknown)} が存在しません。",
            {
                "errors": [
                    {"field": "grants", "message": f"所属コード {c} が存在しません"}
                    for c in unknown
                ]
            },
        )
    before = grant_codes(session, user)
    if _sync_grants(session, user, [orgs[c].id or 0 for c in codes]):
        _changed(
            session, actor, user, AuditAction.USER_UPDATED, {"changes": {"grants": [before, codes]}}
        )
    return user
