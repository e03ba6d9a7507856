"""genpon init: schema, system signing key, and (optionally) demo master data in Japanese."""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources

from genpon.core.db import migrate, session_scope
from genpon.core.settings import Settings
from genpon.records import master, users
from genpon.records.access import SYSTEM_ACTOR
from genpon.records.folders import create_folder
from genpon.records.models import ApiKey, Folder, Organization, User
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

DEMO_PASSWORD = "genpon-demo"  # documented in README; demo data only


@dataclass
class InitResult:
    demo_keys: dict[str, str] = field(default_factory=dict)
    created_demo: bool = False
    public_key_id: str | None = None


def ensure_keyring(settings: Settings, engine: Engine, *, join: bool = False) -> str | None:
    """One key per deployment: see :func:`genpon.core.signing.provision`."""
    from genpon.core.signing import SystemKeyring, provision

    return provision(SystemKeyring.from_settings(settings, engine), engine, join=join)


def initialize(settings: Settings, engine: Engine, *, demo: bool, join: bool = False) -> InitResult:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    migrate(settings.db_url)
    result = InitResult(public_key_id=ensure_keyring(settings, engine, join=join))
    if demo:
        with session_scope(engine) as s:
            load_demo(s, result)
    return result


def load_demo(session: Session, result: InitResult) -> None:
    files = resources.files("genpon.records") / "demo"
    for kind in ("organizations", "document_classes", "users"):
        master.import_csv(session, SYSTEM_ACTOR, kind, (files / f"{kind}.csv").read_bytes())
    orgs = {o.code: o for o in session.exec(select(Organization)).all()}
    for kind, org, name in (
        ("team", "SOUMU-ZAISEI", "財政課チーム"),
        ("team", "KENSETSU-DOURO", "道路課チーム"),
        ("team", "SHIMIN-SHIMIN", "市民課チーム"),
        ("shared", "SOUMU", "総務部共用"),
        ("shared", "CITY", "全庁共用"),
    ):
        exists = session.exec(
            select(Folder).where(
                Folder.kind == kind, Folder.name == name, Folder.organization_id == orgs[org].id
            )
        ).first()
        if exists is None:
            create_folder(session, SYSTEM_ACTOR, name=name, kind=kind, organization_code=org)
            result.created_demo = True
    for user in session.exec(select(User).order_by(User.login)).all():
        has_key = session.exec(select(ApiKey).where(ApiKey.user_id == user.id)).first()
        if has_key is None:
            _key, clear = users.issue_key(session, SYSTEM_ACTOR, user.login, "demo")
            result.demo_keys[user.login] = clear
        if user.kind == "person" and not user.password_hash:
            users.set_password(session, SYSTEM_ACTOR, user.login, DEMO_PASSWORD)
