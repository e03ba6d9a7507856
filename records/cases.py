"""案件 (cases): issued or registered case IDs, members, close/reopen, timeline (経緯).

Issued case IDs follow ``settings.case_id_format`` (default ``{fy}-{org}-{seq:05d}``, e.g.
``2026-SOUMU-00001``): ``fy`` is the fiscal year (年度, April–March) of the opening date in the
city's time zone, ``org`` the organization code, ``seq`` a serial per (fy, org) drawn with an
atomic upsert, so concurrent creations never share a number, and a number whose ID is already
taken is skipped. Case IDs issued by another platform are registered as they are (idempotent
upsert) by a service account within the organizations it is granted, or by an admin; an ID of the
issued shape for a known organization is Genpon's to issue and is refused.

A service account deposits and registers cases, nothing else: membership, closing, reopening and
renaming are people's actions (they grant access or change retention).
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from genpon.core.clock import fiscal_year_of, local_date, utcnow
from genpon.core.errors import Conflict, Forbidden, InvalidInput, NotFound
from genpon.records import audit
from genpon.records.access import Actor, can_read_folder, require_role
from genpon.records.folders import case_root_folder, create_case_folder
from genpon.records.lifecycle import case_scheduler
from genpon.records.master import get_class, get_organization
from genpon.records.models import (
    AuditEvent,
    Case,
    CaseMember,
    CaseSequence,
    CaseStatus,
    DocumentClass,
    Folder,
    FolderKind,
    Organization,
    User,
)
from sqlalchemy import func
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

CASE_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")


@dataclass
class CasePage:
    items: list[Case]
    count: int


def format_case_id(fmt: str, *, fy: int, org: str, seq: int) -> str:
    try:
        return fmt.format(fy=fy, org=org, seq=seq)
    except (KeyError, IndexError, ValueError) as exc:  # misconfiguration, caught at start-up too
        raise ValueError(f"GENPON_CASE_ID_FORMAT is invalid: {exc}") from None


def next_sequence(session: Session, fiscal_year: int, org_code: str) -> int:
    """Atomically take the next serial for (fiscal_year, org_code)."""
    dialect = session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    stmt = (
        insert(CaseSequence)
        .values(fiscal_year=fiscal_year, org_code=org_code, last=1)
        .on_conflict_do_update(
            index_elements=["fiscal_year", "org_code"], set_={"last": CaseSequence.last + 1}
        )
        .returning(col(CaseSequence.last))
    )
    return int(session.execute(stmt).scalar_one())


def issued_id_pattern(session: Session, fmt: str) -> re.Pattern[str]:
    """IDs of the issued shape for a known organization (e.g. ``2026-SOUMU-ZAISEI-00002``)."""
    codes = sorted(session.exec(select(Organization.code)).all(), key=len, reverse=True)
    fields = {"fy": "[0-9]+", "seq": "[0-9]+", "org": "|".join(map(re.escape, codes)) or "(?!)"}
    parts = []
    for literal, name, _spec, _conv in string.Formatter().parse(fmt):
        parts.append(re.escape(literal))
        if name is not None:
            parts.append(f"(?:{fields.get(name, '.+')})")
    return re.compile("".join(parts))


def _refuse_service(actor: Actor) -> None:
    if actor.kind == "service":
        raise Forbidden(
            "forbidden_for_service_account",
            "サービスアカウントは文書と案件の登録のみ行えます。"
            "メンバーの追加・完結・再開・件名の変更は職員が行ってください。",
        )


def _can_see_case(session: Session, actor: Actor, case: Case) -> bool:
    folder = Folder(
        kind=FolderKind.CASE, name="", organization_id=case.organization_id, case_pk=case.id
    )
    return can_read_folder(actor, folder, case)


def get_case(session: Session, actor: Actor, case_id: str) -> Case:
    case = session.exec(select(Case).where(Case.case_id == case_id)).first()
    if case is None or not _can_see_case(session, actor, case):
        raise NotFound("case_not_found", f"案件 {case_id} が見つかりません。", {"case_id": case_id})
    return case


def _check_may_create(actor: Actor, org_id: int) -> None:
    if actor.is_admin:
        return
    if actor.kind == "service":
        if org_id not in actor.granted_orgs:
            raise NotFound("organization_not_found", "所属が見つかりません。")
        return
    require_role(actor, "staff", "records_officer")
    if org_id != actor.organization_id:
        raise InvalidInput("organization_not_allowed", "自分の所属の案件のみ作成できます。")


def create_case(
    session: Session,
    actor: Actor,
    *,
    title: str,
    organization_code: str,
    class_code: str,
    case_id_format: str,
    timezone: str,
    opened_on: date | None = None,
    members: list[str] | None = None,
) -> tuple[Case, Folder]:
    title = _clean_title(title)
    org = get_organization(session, organization_code)
    cls = get_class(session, class_code)
    _check_may_create(actor, org.id or 0)
    if members:
        _refuse_service(actor)
    opened = opened_on or local_date(utcnow(), timezone)
    fy = fiscal_year_of(opened)
    while True:  # a number whose ID is taken (registered before it was refused) is skipped
        seq = next_sequence(session, fy, org.code)
        case_id = format_case_id(case_id_format, fy=fy, org=org.code, seq=seq)
        if session.exec(select(Case.id).where(Case.case_id == case_id)).first() is not None:
            continue
        try:
            return _insert_case(
                session,
                actor,
                case_id=case_id,
                title=title,
                org_id=org.id or 0,
                class_id=cls.id or 0,
                fy=fy,
                opened=opened,
                issuer="genpon",
                members=members,
            )
        except _CaseIdTaken:
            continue


def _check_may_register(actor: Actor) -> None:
    if not actor.is_admin and actor.kind != "service":
        raise Forbidden(
            "case_registration_forbidden",
            "外部で発番された案件IDの登録は、サービスアカウントまたは管理者のみが行えます。"
            "案件を作成するときは案件IDを発番してください。",
        )


def register_case(
    session: Session,
    actor: Actor,
    *,
    case_id: str,
    title: str,
    organization_code: str,
    class_code: str,
    timezone: str,
    issuer: str,
    case_id_format: str,
    opened_on: date | None = None,
    members: list[str] | None = None,
) -> tuple[Case, Folder, bool]:
    """Register (upsert) a case ID issued by another platform. Returns (case, folder, created)."""
    _check_may_register(actor)
    if members:
        _refuse_service(actor)
    if not CASE_ID_RE.match(case_id or ""):
        raise InvalidInput(
            "invalid_case_id", "案件IDは英数字と - _ . で64文字以内です。", {"case_id": case_id}
        )
    if issuer == "genpon":
        raise InvalidInput("issuer_reserved", "発番元 genpon は原本自身を表すため指定できません。")
    title = _clean_title(title)
    org = get_organization(session, organization_code)
    cls = get_class(session, class_code)
    _check_may_create(actor, org.id or 0)
    existing = session.exec(select(Case).where(Case.case_id == case_id)).first()
    if existing is not None:
        if not _can_see_case(session, actor, existing):
            raise Conflict("case_id_taken", "この案件IDは既に使われています。")
        changes: dict[str, list[object]] = {}
        if existing.title != title:
            changes["title"] = [existing.title, title]
            existing.title = title
        if existing.organization_id != org.id:
            raise Conflict("case_organization_mismatch", "登録済みの案件と所属が異なります。")
        if existing.document_class_id != cls.id:
            changes["document_class"] = [existing.document_class_id, cls.id]
            existing.document_class_id = cls.id or 0
        if changes:
            _refuse_service(actor)
            existing.updated_at = utcnow()
            session.add(existing)
            audit.record(
                session,
                actor=actor.login,
                action=audit.AuditAction.CASE_UPDATED,
                target_type="case",
                target_id=existing.case_id,
                case_id=existing.case_id,
                details=changes,
            )
        _add_members(session, actor, existing, members or [])
        return existing, case_root_folder(session, existing), False
    if issued_id_pattern(session, case_id_format).fullmatch(case_id):
        raise InvalidInput(
            "case_id_reserved",
            "この形式の案件IDは原本が発番します。外部で発番された案件IDを指定してください。",
            {"case_id": case_id},
        )
    opened = opened_on or local_date(utcnow(), timezone)
    try:
        case, folder = _insert_case(
            session,
            actor,
            case_id=case_id,
            title=title,
            org_id=org.id or 0,
            class_id=cls.id or 0,
            fy=fiscal_year_of(opened),
            opened=opened,
            issuer=issuer,
            members=members,
        )
    except _CaseIdTaken:  # lost a race with a concurrent registration of the same ID
        raise Conflict("case_id_taken", "この案件IDは既に使われています。") from None
    return case, folder, True


def _clean_title(title: str) -> str:
    title = (title or "").strip()
    if not title:
        raise InvalidInput("title_required", "件名を入力してください。")
    if len(title) > 500:
        raise InvalidInput("title_too_long", "件名は500文字以内です。")
    return title


class _CaseIdTaken(Exception):
    """The case ID was inserted concurrently (its savepoint rolled back)."""


def _insert_case(
    session: Session,
    actor: Actor,
    *,
    case_id: str,
    title: str,
    org_id: int,
    class_id: int,
    fy: int,
    opened: date,
    issuer: str,
    members: list[str] | None,
) -> tuple[Case, Folder]:
    case = Case(
        case_id=case_id,
        title=title,
        organization_id=org_id,
        document_class_id=class_id,
        fiscal_year=fy,
        opened_on=opened,
        issuer=issuer,
        created_by=actor.user_id or None,
    )
    try:
        with session.begin_nested():
            session.add(case)
            session.flush()
    except IntegrityError:
        if case in session:
            session.expunge(case)
        raise _CaseIdTaken(case_id) from None
    folder = create_case_folder(session, actor, case)
    audit.record(
        session,
        actor=actor.login,
        action=audit.AuditAction.CASE_CREATED,
        target_type="case",
        target_id=case_id,
        case_id=case_id,
        details={"title": title, "issuer": issuer, "folder_id": folder.id, "fiscal_year": fy},
    )
    if actor.kind == "person" and actor.user_id:
        members = [*(members or []), actor.login]
    _add_members(session, actor, case, members or [])
    return case, folder


def _add_members(session: Session, actor: Actor, case: Case, logins: list[str]) -> None:
    for login in dict.fromkeys(logins):
        user = session.exec(select(User).where(User.login == login)).first()
        if user is None:
            raise InvalidInput(
                "unknown_member", f"利用者 {login} が見つかりません。", {"login": login}
            )
        if session.get(CaseMember, (case.id, user.id)) is None:
            session.add(CaseMember(case_pk=case.id or 0, user_id=user.id or 0))
            session.flush()
            audit.record(
                session,
                actor=actor.login,
                action=audit.AuditAction.CASE_MEMBER_ADDED,
                target_type="case",
                target_id=case.case_id,
                case_id=case.case_id,
                details={"login": login},
            )


def add_members(session: Session, actor: Actor, case_id: str, logins: list[str]) -> Case:
    _refuse_service(actor)
    case = get_case(session, actor, case_id)
    _require_case_write(actor, case)
    _add_members(session, actor, case, logins)
    return case


def _require_case_write(actor: Actor, case: Case) -> None:
    from genpon.records.access import require_write

    folder = Folder(
        kind=FolderKind.CASE, name="", organization_id=case.organization_id, case_pk=case.id
    )
    require_write(actor, folder, case)


def _require_may_close(actor: Actor, case: Case) -> None:
    """Closing (完結) and reopening (再開) a case fix or clear its retention dates, so they are
    the owning section's decision (its staff, 主管課) or the records office's (records officers,
    city-wide); members from other organizations deposit into the case but do not close it."""
    if actor.is_admin or actor.has_role("records_officer"):
        return
    if "staff" in actor.roles and case.organization_id == actor.organization_id:
        return
    raise Forbidden(
        "case_close_forbidden",
        "案件の完結・再開は、案件を担当する所属の職員または文書管理担当が行います。",
        {"case_id": case.case_id},
    )


def close_case(
    session: Session,
    actor: Actor,
    case_id: str,
    *,
    timezone: str,
    closed_at: datetime | None = None,
) -> Case:
    """Close a case: fixes the retention dates of all its official documents."""
    _refuse_service(actor)
    case = get_case(session, actor, case_id)
    _require_may_close(actor, case)
    if case.status == "closed":
        raise Conflict("case_already_closed", "この案件は既に完結しています。")
    case.status = CaseStatus.CLOSED
    case.closed_at = closed_at or utcnow()
    case.updated_at = utcnow()
    session.add(case)
    fixed = case_scheduler().case_closed(session, case, timezone=timezone)
    audit.record(
        session,
        actor=actor.login,
        action=audit.AuditAction.CASE_CLOSED,
        target_type="case",
        target_id=case.case_id,
        case_id=case.case_id,
        details={"closed_at": case.closed_at.isoformat(), "documents_scheduled": fixed},
    )
    return case


def reopen_case(session: Session, actor: Actor, case_id: str, *, timezone: str) -> Case:
    """Reopen a case: clears the retention dates fixed at closing."""
    _refuse_service(actor)
    case = get_case(session, actor, case_id)
    _require_may_close(actor, case)
    if case.status != "closed":
        raise Conflict("case_not_closed", "この案件は完結していません。")
    case.status = CaseStatus.OPEN
    case.closed_at = None
    case.updated_at = utcnow()
    session.add(case)
    cleared = case_scheduler().case_reopened(session, case, timezone=timezone)
    audit.record(
        session,
        actor=actor.login,
        action=audit.AuditAction.CASE_REOPENED,
        target_type="case",
        target_id=case.case_id,
        case_id=case.case_id,
        details={"documents_cleared": cleared},
    )
    return case


CASE_SORTS = {
    "case_id": col(Case.case_id),
    "title": col(Case.title),
    "fiscal_year": col(Case.fiscal_year),
    "opened_on": col(Case.opened_on),
    "status": col(Case.status),
    "created": col(Case.id),
}
"""Columns a case list can be sorted by (``-name`` sorts descending)."""


def list_cases(
    session: Session,
    actor: Actor,
    *,
    organization_code: str | None = None,
    status: str | None = None,
    class_code: str | None = None,
    fiscal_year: int | None = None,
    sort: str = "-created",
    offset: int = 0,
    limit: int = 50,
) -> CasePage:
    """Readable cases, filtered (status, document class with its sub-classes, fiscal year),
    sorted by one column (ties by newest) and paged."""
    if offset < 0 or not 1 <= limit <= 500:
        raise InvalidInput("invalid_paging", "offset は0以上、limit は1〜500です。")
    key = sort.removeprefix("-")
    if key not in CASE_SORTS:
        raise InvalidInput(
            "invalid_sort", f"並べ替えは {', '.join(CASE_SORTS)} のいずれかです（- で降順）。"
        )
    stmt = select(Case)
    if organization_code:
        stmt = stmt.where(Case.organization_id == get_organization(session, organization_code).id)
    if status:
        if status not in ("open", "closed"):
            raise InvalidInput("invalid_status", "status は open か closed です。")
        stmt = stmt.where(Case.status == status)
    if class_code:
        stmt = stmt.where(col(Case.document_class_id).in_(class_ids_under(session, class_code)))
    if fiscal_year is not None:
        if not 1900 <= fiscal_year <= 9999:
            raise InvalidInput("invalid_fiscal_year", "年度は西暦4桁で指定してください。")
        stmt = stmt.where(Case.fiscal_year == fiscal_year)
    if not actor.reads_everything:
        if actor.kind == "service":
            stmt = stmt.where(col(Case.organization_id).in_(sorted(actor.granted_orgs) or [-1]))
        else:
            from sqlalchemy import or_

            stmt = stmt.where(
                or_(
                    col(Case.organization_id) == actor.organization_id,
                    col(Case.id).in_(sorted(actor.member_cases) or [-1]),
                )
            )
    count = session.exec(select(func.count()).select_from(stmt.subquery())).one()
    column = CASE_SORTS[key]
    order: list[Any] = [column.desc() if sort.startswith("-") else column.asc()]
    if key != "created":
        order.append(col(Case.id).desc())
    items = session.exec(stmt.order_by(*order).offset(offset).limit(limit)).all()
    return CasePage(items=list(items), count=count)


def class_ids_under(session: Session, class_code: str) -> list[int]:
    """The class of ``class_code`` and every class below it (a filter by 大分類 finds 小分類)."""
    root = get_class(session, class_code)
    ids = [root.id or 0]
    frontier = list(ids)
    while frontier:
        children = session.exec(
            select(DocumentClass.id).where(col(DocumentClass.parent_id).in_(frontier))
        ).all()
        frontier = [c for c in children if c is not None and c not in ids]
        ids += frontier
    return ids


def timeline(session: Session, actor: Actor, case_id: str) -> list[AuditEvent]:
    case = get_case(session, actor, case_id)
    return audit.case_timeline(session, case.case_id)


def members(session: Session, case: Case) -> list[str]:
    rows = session.exec(
        select(User.login)
        .join(CaseMember, col(CaseMember.user_id) == User.id)
        .where(CaseMember.case_pk == case.id)
        .order_by(User.login)
    ).all()
    return list(rows)
