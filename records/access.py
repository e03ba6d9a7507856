"""Who may see and change what. Every service calls these checks; the API never decides.

Rules (issue #2, point 12):
- staff read and deposit in their own organization's team folders, in shared folders of their
  organization or any organization above it, and in case folders of cases they belong to or
  that their organization owns;
- service accounts deposit into case folders only, of cases owned by organizations they are
  granted (and may read those folders);
- records officers, auditors and admins read everything (they run retention and audits city-wide);
  admins also write everywhere.
Objects the caller may not read are reported as *not found*, never as forbidden, so their
existence does not leak.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Protocol

from genpon.core.clock import as_utc, utcnow
from genpon.core.errors import Forbidden, NotFound, Unauthorized
from genpon.records.models import (
    ApiKey,
    Case,
    CaseMember,
    Folder,
    Organization,
    ServiceGrant,
    User,
    WebSignIn,
)
from sqlalchemy import Integer, bindparam, delete, literal, union_all
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

CITYWIDE_READ_ROLES = frozenset({"records_officer", "auditor", "admin"})


@dataclass(frozen=True)
class Actor:
    """The authenticated caller, with everything permission checks need precomputed."""

    user_id: int
    login: str
    kind: str  # person | service | system
    roles: frozenset[str]
    organization_id: int
    org_and_ancestors: frozenset[int] = field(default_factory=frozenset)
    granted_orgs: frozenset[int] = field(default_factory=frozenset)
    member_cases: frozenset[int] = field(default_factory=frozenset)

    @property
    def reads_everything(self) -> bool:
        return bool(self.roles & CITYWIDE_READ_ROLES) or self.kind == "system"

    @property
    def is_admin(self) -> bool:
        return "admin" in self.roles or self.kind == "system"

    def has_role(self, role: str) -> bool:
        return role in self.roles or self.kind == "system"

    def acl_tokens(self) -> list[str] | None:
        """Search filter tokens; ``None`` means no filter (city-wide readers)."""
        if self.reads_everything:
            return None
        if self.kind == "service":
            return [f"caseorg:{o}" for o in sorted(self.granted_orgs)]
        tokens = [f"team:{self.organization_id}", f"caseorg:{self.organization_id}"]
        tokens += [f"shared:{o}" for o in sorted(self.org_and_ancestors)]
        tokens += [f"case:{c}" for c in sorted(self.member_cases)]
        return tokens


SYSTEM_ACTOR = Actor(
    user_id=0, login="system", kind="system", roles=frozenset({"admin"}), organization_id=0
)


def _ancestors_cte() -> Any:
    """``up``: the organization ``:org_id`` and every one above it."""
    org = Organization.__table__.alias("o")  # type: ignore[attr-defined]
    up = (
        sa_select(org.c.id, org.c.parent_id)
        .where(org.c.id == bindparam("org_id"))
        .cte("up", recursive=True)
    )
    parent = Organization.__table__.alias("p")  # type: ignore[attr-defined]
    return up.union(sa_select(parent.c.id, parent.c.parent_id).where(parent.c.id == up.c.parent_id))


def _actor_rows_query() -> Any:
    """(what, id) rows: ``grant`` organizations, ``case`` memberships and the ``org`` with
    every organization above it (the recursive query of :func:`org_ancestors`)."""
    uid = bindparam("user_id", type_=Integer)
    grants = sa_select(literal("grant"), col(ServiceGrant.organization_id))
    cases = sa_select(literal("case"), col(CaseMember.case_pk))
    up = _ancestors_cte()
    return union_all(
        grants.where(col(ServiceGrant.user_id) == uid),
        cases.where(col(CaseMember.user_id) == uid),
        sa_select(literal("org"), up.c.id),
    )


# Built once: constructing a CTE's column proxies costs more than running the query.
_ANCESTORS = sa_select(_ancestors_cte().c.id)
_ACTOR_ROWS = _actor_rows_query()


def org_ancestors(session: Session, org_id: int) -> frozenset[int]:
    """The organization and every one above it: one recursive query (``UNION`` ends a cycle)."""
    return frozenset(session.execute(_ANCESTORS, {"org_id": org_id}).scalars())


class _UserFields(Protocol):
    """What :func:`actor_for_user` reads of a user: a ``User`` or a row with these columns."""

    @property
    def id(self) -> int | None: ...
    @property
    def login(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def roles(self) -> list[str]: ...
    @property
    def organization_id(self) -> int: ...
    @property
    def active(self) -> bool: ...


def actor_for_user(session: Session, user: _UserFields) -> Actor:
    """The actor of an active user; its grants, case memberships and organizations in one
    query (it runs on every request that presents a key)."""
    if not user.active:
        raise Unauthorized("user_inactive", "この利用者は無効化されています。")
    assert user.id is not None
    rows = session.execute(_ACTOR_ROWS, {"user_id": user.id, "org_id": user.organization_id}).all()
    return Actor(
        user_id=user.id,
        login=user.login,
        kind=user.kind,
        roles=frozenset(user.roles),
        organization_id=user.organization_id,
        org_and_ancestors=frozenset(v for what, v in rows if what == "org"),
        granted_orgs=frozenset(v for what, v in rows if what == "grant"),
        member_cases=frozenset(v for what, v in rows if what == "case"),
    )


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _sign_in_row(session: Session, token: str) -> WebSignIn | None:
    return session.exec(select(WebSignIn).where(WebSignIn.token_hash == _token_hash(token))).first()


def open_web_sign_in(
    session: Session, actor: Actor, key_prefix: str | None, *, max_age_s: int
) -> str:
    """Record a browser sign-in and return its token (kept only in the signed cookie; the
    database holds its SHA-256). Sign-ins that ended or expired more than a day ago go."""
    now = utcnow()
    session.execute(delete(WebSignIn).where(col(WebSignIn.expires_at) < now - timedelta(days=1)))
    token = secrets.token_urlsafe(32)
    session.add(
        WebSignIn(
            token_hash=_token_hash(token),
            user_id=actor.user_id,
            key_prefix=key_prefix,
            created_at=now,
            expires_at=now + timedelta(seconds=max_age_s),
        )
    )
    session.flush()
    return token


def close_web_sign_in(session: Session, token: str | None) -> None:
    """Sign-out: the sign-in ends on the server, whatever copies of the cookie exist."""
    if not token:
        return
    row = _sign_in_row(session, token)
    if row is not None and row.ended_at is None:
        row.ended_at = utcnow()
        session.add(row)


def web_session_actor(
    session: Session, user_id: int, key_prefix: str | None, token: str | None = None
) -> Actor | None:
    """The actor behind a web sign-in (画面のセッション), or None when it must end: the sign-in
    is unknown, signed out or expired, the user is gone, deactivated or not a person, or the
    session was opened with an API key that has since been revoked or given to someone else."""
    if not token:
        return None
    row = _sign_in_row(session, token)
    if (
        row is None
        or row.ended_at is not None
        or row.user_id != user_id
        or row.key_prefix != key_prefix
        or as_utc(row.expires_at) <= utcnow()
    ):
        return None
    user = session.get(User, user_id)
    if user is None or not user.active or user.kind != "person":
        return None
    if key_prefix:
        key = session.exec(select(ApiKey).where(ApiKey.prefix == key_prefix)).first()
        if key is None or key.revoked_at is not None or key.user_id != user_id:
            return None
    try:
        return actor_for_user(session, user)
    except Unauthorized:
        return None


# --- API keys -------------------------------------------------------------------------------

KEY_PREFIX = "gp_"


def _hash_secret(secret: str) -> str:
    # Keys are 256-bit random: a plain SHA-256 is not brute-forceable and keeps auth fast.
    return hashlib.sha256(secret.encode()).hexdigest()


def create_api_key(session: Session, user: User, *, label: str = "") -> str:
    """Create a key and return it in clear: the only time anyone sees it."""
    assert user.id is not None
    prefix = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    session.add(
        ApiKey(user_id=user.id, prefix=prefix, secret_hash=_hash_secret(secret), label=label)
    )
    session.flush()
    return f"{KEY_PREFIX}{prefix}_{secret}"


def authenticate_key(session: Session, presented: str) -> Actor:
    bad = Unauthorized("invalid_api_key", "APIキーが正しくありません。")
    if not presented.startswith(KEY_PREFIX) or presented.count("_") < 2:
        raise bad
    prefix, _, secret = presented[len(KEY_PREFIX) :].partition("_")
    found = session.execute(_KEY_AND_USER, {"prefix": prefix}).first()
    if found is None or found.revoked_at is not None:
        raise bad
    if not secrets.compare_digest(found.secret_hash, _hash_secret(secret)):
        raise bad
    return actor_for_user(session, found)


# Every request with a key runs this: built once, and rows rather than ORM objects (building
# the statement and loading two entities cost more than the query itself).
_KEY_AND_USER = (
    sa_select(
        col(ApiKey.revoked_at),
        col(ApiKey.secret_hash),
        col(User.id),
        col(User.login),
        col(User.kind),
        col(User.roles),
        col(User.organization_id),
        col(User.active),
    )
    .join(User, col(User.id) == col(ApiKey.user_id))
    .where(col(ApiKey.prefix) == bindparam("prefix"))
)


# --- folder checks ----------------------------------------------------------------------------


def can_read_folder(actor: Actor, folder: Folder, case: Case | None) -> bool:
    if actor.reads_everything:
        return True
    if actor.kind == "service":
        return (
            folder.kind == "case"
            and case is not None
            and case.organization_id in actor.granted_orgs
        )
    if folder.kind == "team":
        return folder.organization_id == actor.organization_id
    if folder.kind == "shared":
        return folder.organization_id in actor.org_and_ancestors
    if folder.kind == "case" and case is not None:
        return case.id in actor.member_cases or case.organization_id == actor.organization_id
    return False


def folder_acl_tokens(folder: Folder, case: Case | None) -> list[str]:
    """The search tokens under which a document in ``folder`` is readable: the one builder,
    used by the indexer for every backend. An actor sees the document iff its
    :meth:`Actor.acl_tokens` share a token with these (or are ``None``), which is exactly
    :func:`can_read_folder` (a test checks the two agree)."""
    if folder.kind == "team":
        return [f"team:{folder.organization_id}"]
    if folder.kind == "shared":
        return [f"shared:{folder.organization_id}"]
    if folder.kind == "case" and case is not None:
        return [f"case:{case.id}", f"caseorg:{case.organization_id}"]
    return []


def can_write_folder(actor: Actor, folder: Folder, case: Case | None) -> bool:
    if actor.is_admin:
        return True
    if actor.kind == "service":
        return (
            folder.kind == "case"
            and case is not None
            and case.organization_id in actor.granted_orgs
        )
    if "staff" not in actor.roles and "records_officer" not in actor.roles:
        return False  # auditors only read
    if folder.kind == "team":
        return folder.organization_id == actor.organization_id
    if folder.kind == "shared":
        return folder.organization_id in actor.org_and_ancestors
    if folder.kind == "case" and case is not None:
        return case.id in actor.member_cases or case.organization_id == actor.organization_id
    return False


def require_read(actor: Actor, folder: Folder, case: Case | None) -> None:
    if not can_read_folder(actor, folder, case):
        raise NotFound("folder_not_found", "フォルダが見つかりません。", {"folder_id": folder.id})


def require_write(actor: Actor, folder: Folder, case: Case | None) -> None:
    require_read(actor, folder, case)
    if not can_write_folder(actor, folder, case):
        raise Forbidden(
            "folder_write_forbidden",
            "このフォルダに文書を登録する権限がありません。",
            {"folder_id": folder.id},
        )


def require_role(actor: Actor, *roles: str) -> None:
    if actor.kind == "system" or actor.roles & set(roles):
        return
    raise Forbidden("role_required", "この操作の権限がありません。", {"roles": list(roles)})


def require_external_system(actor: Actor, system: str | None) -> None:
    """An external system's name (``approval.external_system``) is its service account's login
    in the users master: only that account may deposit or approve under it, so nobody else can
    claim its external IDs first. The local operator (CLI, ``system``) may use any name."""
    if system is None or actor.kind == "system":
        return
    if actor.kind == "service" and actor.login == system:
        return
    raise Forbidden(
        "external_system_not_owned",
        f"外部システム名 {system} は、そのシステムのサービスアカウント（利用者ID {system}）"
        "だけが使えます。",
        {"external_system": system},
    )
