"""genpon init: schema, system signing key, and (optionally) demo data in Japanese.

Demo data is the master data (``records/demo/*.csv``), folders, keys and passwords, and, when
the caller hands over the retention layer's hold service, a few years of history: cases of
道路課 and 市民課 opened and closed in past fiscal years with official documents, so that on
the day ``genpon init --demo`` runs something is due for disposal (廃棄), something due is on
hold (保留), something is due for transfer to the archives (移管) and something is not due yet.
Every date is relative to today in the city's time zone (``GENPON_TIMEZONE``), so the same
things are due whatever the day; all of it goes through the services, as the people who would
have done it (the organizations' staff, the 電子決裁 service account, a records officer).
The 財政課 (SOUMU-ZAISEI) has no history: the README's tour opens its first case.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, time
from importlib import resources
from typing import Any
from zoneinfo import ZoneInfo

from genpon.core.clock import fiscal_year_of, local_date, utcnow
from genpon.core.db import migrate, session_scope
from genpon.core.settings import Settings
from genpon.records import cases, documents, master, users
from genpon.records.access import SYSTEM_ACTOR, Actor, actor_for_user
from genpon.records.folders import create_folder
from genpon.records.models import ApiKey, Case, Folder, Organization, User
from genpon.storage.base import BlobStore
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

# retention.service.place_hold(session, actor, *, scope, ref, hold_type, reason, reference)
PlaceHold = Callable[..., Any]

DEMO_PASSWORD = "genpon-demo"  # documented in README; demo data only


@dataclass
class InitResult:
    demo_keys: dict[str, str] = field(default_factory=dict)
    created_demo: bool = False
    public_key_id: str | None = None
    history: list[str] = field(default_factory=list)  # one line per demo case created


def ensure_keyring(settings: Settings, engine: Engine, *, join: bool = False) -> str | None:
    """One key per deployment: see :func:`genpon.core.signing.provision`."""
    from genpon.core.signing import SystemKeyring, provision

    return provision(SystemKeyring.from_settings(settings, engine), engine, join=join)


def initialize(
    settings: Settings,
    engine: Engine,
    *,
    demo: bool,
    join: bool = False,
    store: BlobStore | None = None,
    place_hold: PlaceHold | None = None,
) -> InitResult:
    """Migrate, make the signing key and, with ``demo``, load the demo data. The demo history
    is loaded too when ``store`` and ``place_hold`` are given (``genpon init --demo``)."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    migrate(settings.db_url)
    result = InitResult(public_key_id=ensure_keyring(settings, engine, join=join))
    if demo:
        with session_scope(engine) as s:
            load_demo(s, result)
        if store is not None and place_hold is not None:
            with session_scope(engine) as s:
                load_demo_history(s, store, settings, place_hold, result)
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


@dataclass(frozen=True)
class _PastCase:
    login: str  # the staff member who opened and closed it
    org: str
    class_code: str
    title: str
    years_ago: int  # opened and closed in fiscal year (this fiscal year - years_ago)
    documents: tuple[tuple[str, str], ...]  # (file name, text)
    hold: tuple[str, str, str] | None = None  # (type, reason, reference), by a records officer
    via_service: bool = False  # the last document arrives from 電子決裁


# Fiscal year T = this one. Closed in FY T-N-1 with N years of retention: 起算日 April 1 of
# FY T-N, 満了日 March 31 of FY T, so due since April 1 of this fiscal year, whatever today is.
DEMO_HISTORY = (
    _PastCase(
        "ito",
        "KENSETSU-DOURO",
        "D0102",
        "市道3号線 道路占用許可（電柱の新設）",
        6,
        (
            ("道路占用許可申請書.txt", "市道3号線における電柱新設のための道路占用許可申請書。"),
            ("道路占用許可書.txt", "市道3号線の道路占用を許可する。占用期間は5年間とする。"),
        ),
        via_service=True,
    ),
    _PastCase(
        "kobayashi",
        "SHIMIN-SHIMIN",
        "C0101",
        "住民異動届（転入・転出）綴",
        6,
        (("住民異動届綴.txt", "転入届・転出届の綴り。住所変更の記録。"),),
        hold=("disclosure", "開示請求 第3号（住民異動届）への対応中", "開示請求 第3号"),
    ),
    _PastCase(
        "ito",
        "KENSETSU-DOURO",
        "B0201",
        "市道5号線 舗装補修工事 請負契約",
        11,
        (
            ("工事請負契約書.txt", "市道5号線舗装補修工事の請負契約書。契約金額、工期を定める。"),
            ("完成検査調書.txt", "市道5号線舗装補修工事の完成検査の結果、合格と認める。"),
        ),
    ),
    _PastCase(
        "kobayashi",
        "SHIMIN-SHIMIN",
        "C0101",
        "住民異動届（転居）綴",
        2,
        (("転居届綴.txt", "市内での転居届の綴り。"),),
    ),
)


def load_demo_history(
    session: Session,
    store: BlobStore,
    settings: Settings,
    place_hold: PlaceHold,
    result: InitResult,
) -> None:
    """Create :data:`DEMO_HISTORY` once (nothing when the first of its cases exists)."""
    first = DEMO_HISTORY[0]
    if session.exec(select(Case.id).where(Case.title == first.title)).first() is not None:
        return
    tz = settings.timezone
    this_fy = fiscal_year_of(local_date(utcnow(), tz))
    officer = _person(session, "suzuki")
    for past in DEMO_HISTORY:
        fy = this_fy - past.years_ago
        staff = _person(session, past.login)
        case, _folder = cases.create_case(
            session,
            staff,
            title=past.title,
            organization_code=past.org,
            class_code=past.class_code,
            case_id_format=settings.case_id_format,
            timezone=tz,
            opened_on=date(fy, 5, 12),
        )
        for i, (name, text) in enumerate(past.documents):
            approved = date(fy, 9, 1 + 7 * i)
            service = past.via_service and i == len(past.documents) - 1
            depositor = _person(session, "denshi-kessai") if service else staff
            staged = store.stage(io.BytesIO(text.encode("utf-8")))
            documents.deposit(
                session,
                store,
                depositor,
                staged,
                documents.DepositIn(
                    filename=name,
                    case_id=case.case_id,
                    doc_date=approved,
                    approval=documents.ApprovalIn(
                        approved_on=approved,
                        approvers=["課長"],
                        external_system="denshi-kessai" if service else None,
                        external_id=f"K-{fy}-{case.id:04d}" if service else None,
                    ),
                ),
                allowed_types=settings.allowed_types,
                timezone=tz,
            )
        closed_at = datetime.combine(date(fy + 1, 2, 20), time(17), ZoneInfo(tz))
        cases.close_case(session, staff, case.case_id, timezone=tz, closed_at=closed_at)
        line = f"{case.case_id}\t{past.title}\t{fy}年度に完結"
        if past.hold is not None:
            kind, reason, reference = past.hold
            place_hold(
                session,
                officer,
                scope="case",
                ref=case.case_id,
                hold_type=kind,
                reason=reason,
                reference=reference,
            )
            line += "（保留中）"
        result.history.append(line)


def _person(session: Session, login: str) -> Actor:
    return actor_for_user(session, master.get_user(session, login))
