"""Folders: 案件フォルダ (case), チームフォルダ (team, of an organization unit),
組織共用フォルダ (shared, of an organization and everyone below it). Nested by ``parent_id``."""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from genpon.core.errors import Conflict, InvalidInput, NotFound
from genpon.records import audit
from genpon.records.access import Actor, can_read_folder, require_read, require_role, require_write
from genpon.records.models import (
    FOLDER_KINDS,
    Case,
    Document,
    DocumentState,
    Folder,
    FolderKind,
    Organization,
)
from sqlalchemy import func
from sqlmodel import Session, col, select

MAX_PAGE = 500


@dataclass
class FolderPage:
    items: list[Folder]
    count: int
    offset: int
    limit: int


def clean_name(name: str) -> str:
    """NFC, no path separators or control characters, not empty."""
    name = unicodedata.normalize("NFC", name or "").strip()
    name = name.replace("/", "／").replace("\\", "＼")
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C")
    if not name or name in (".", ".."):
        raise InvalidInput("invalid_name", "名前が空か不正です。")
    return name[:255]


def get_folder(session: Session, actor: Actor, folder_id: int) -> tuple[Folder, Case | None]:
    folder = session.get(Folder, folder_id)
    if folder is None:
        raise NotFound("folder_not_found", "フォルダが見つかりません。", {"folder_id": folder_id})
    case = session.get(Case, folder.case_pk) if folder.case_pk else None
    require_read(actor, folder, case)
    return folder, case


def create_folder(
    session: Session,
    actor: Actor,
    *,
    name: str,
    kind: str | None = None,
    organization_code: str | None = None,
    parent_id: int | None = None,
) -> Folder:
    name = clean_name(name)
    if parent_id is not None:
        parent, case = get_folder(session, actor, parent_id)
        require_write(actor, parent, case)
        if kind and kind != parent.kind:
            raise InvalidInput("folder_kind_mismatch", "サブフォルダは親フォルダと同じ種類です。")
        folder = Folder(
            kind=parent.kind,
            name=name,
            parent_id=parent.id,
            organization_id=parent.organization_id,
            case_pk=parent.case_pk,
            created_by=actor.user_id or None,
        )
    else:
        if kind not in ("team", "shared"):
            raise InvalidInput(
                "invalid_folder_kind",
                "最上位フォルダの種類は team か shared です（案件フォルダは案件作成時に作られます）。",
                {"allowed": ["team", "shared"]},
            )
        if not organization_code:
            raise InvalidInput("organization_required", "所属コードを指定してください。")
        org = session.exec(
            select(Organization).where(Organization.code == organization_code)
        ).first()
        if org is None:
            raise NotFound("organization_not_found", f"所属 {organization_code} が見つかりません。")
        folder = Folder(
            kind=FolderKind(kind),
            name=name,
            organization_id=org.id or 0,
            created_by=actor.user_id or None,
        )
        require_write(actor, folder, None)
        dup = session.exec(
            select(Folder).where(
                col(Folder.parent_id).is_(None),
                Folder.kind == kind,
                Folder.organization_id == folder.organization_id,
                Folder.name == name,
            )
        ).first()
        if dup is not None:
            raise Conflict(
                "folder_exists", "同じ名前のフォルダが既にあります。", {"folder_id": dup.id}
            )
    if (
        parent_id is not None
        and session.exec(
            select(Folder).where(Folder.parent_id == parent_id, Folder.name == name)
        ).first()
    ):
        raise Conflict("folder_exists", "同じ名前のフォルダが既にあります。")
    session.add(folder)
    session.flush()
    case = session.get(Case, folder.case_pk) if folder.case_pk else None
    audit.record(session, actor=actor.login, **_created_event(folder, case))
    return folder


def _created_event(folder: Folder, case: Case | None) -> dict[str, Any]:
    """The ``folder.created`` audit event of a new (flushed) folder."""
    return {
        "action": audit.AuditAction.FOLDER_CREATED,
        "target_type": "folder",
        "target_id": folder.id or 0,
        "case_id": case.case_id if case else None,
        "details": {"kind": folder.kind, "name": folder.name, "parent_id": folder.parent_id},
    }


def create_folder_paths(
    session: Session,
    actor: Actor,
    *,
    parent_id: int,
    paths: Iterable[Sequence[str]],
) -> dict[tuple[str, ...], int]:
    """Get-or-create many subfolder paths below ``parent_id`` in one go (bulk import).

    Each path is a sequence of names relative to the parent. Names are cleaned with
    :func:`clean_name` (an invalid name raises ``InvalidInput`` like :func:`create_folder`).
    Access is checked once on the parent (subfolders share its kind, organization and case, so
    :func:`create_folder` would decide the same for each of them). Existing folders are reused;
    the missing ones are added level by level with one flush per level and get the same
    ``folder.created`` audit events as :func:`create_folder` (one :func:`audit.record_many`
    call per level). Returns ``{cleaned path: folder id}`` for every prefix of every path."""
    parent, case = get_folder(session, actor, parent_id)
    require_write(actor, parent, case)
    wanted: set[tuple[str, ...]] = set()
    for path in paths:
        clean = tuple(clean_name(p) for p in path)
        for i in range(1, len(clean) + 1):
            wanted.add(clean[:i])
    ids: dict[tuple[str, ...], int] = {(): parent.id or 0}
    depth = 1
    while True:
        level = sorted(p for p in wanted if len(p) == depth)
        if not level:
            break
        parent_ids = sorted({ids[p[:-1]] for p in level})
        by_parent = {pid: key for key, pid in ids.items() if len(key) == depth - 1}
        for i in range(0, len(parent_ids), 500):
            for f in session.exec(
                select(Folder).where(col(Folder.parent_id).in_(parent_ids[i : i + 500]))
            ).all():
                key = (*by_parent[f.parent_id or 0], f.name)
                if key in wanted:
                    ids.setdefault(key, f.id or 0)
        new: list[tuple[tuple[str, ...], Folder]] = [
            (
                p,
                Folder(
                    kind=parent.kind,
                    name=p[-1],
                    parent_id=ids[p[:-1]],
                    organization_id=parent.organization_id,
                    case_pk=parent.case_pk,
                    created_by=actor.user_id or None,
                ),
            )
            for p in level
            if p not in ids
        ]
        if new:
            session.add_all([f for _p, f in new])
            session.flush()
            audit.record_many(
                session, actor=actor.login, events=[_created_event(f, case) for _p, f in new]
            )
            for p, f in new:
                ids[p] = f.id or 0
        depth += 1
    return ids


def create_case_folder(session: Session, actor: Actor, case: Case) -> Folder:
    folder = Folder(
        kind=FolderKind.CASE,
        name=case.case_id,
        organization_id=case.organization_id,
        case_pk=case.id,
        created_by=actor.user_id or None,
    )
    session.add(folder)
    session.flush()
    return folder


def case_root_folder(session: Session, case: Case) -> Folder:
    folder = session.exec(
        select(Folder).where(Folder.case_pk == case.id, Folder.parent_id.is_(None))  # type: ignore[union-attr]
    ).first()
    if folder is None:  # pragma: no cover - created with every case
        raise NotFound("folder_not_found", "案件フォルダが見つかりません。")
    return folder


def folder_path(session: Session, folder: Folder) -> str:
    parts: list[str] = []
    current: Folder | None = folder
    seen: set[int] = set()
    while current is not None and current.id not in seen:
        seen.add(current.id or 0)
        parts.append(current.name)
        current = session.get(Folder, current.parent_id) if current.parent_id else None
    return "/" + "/".join(reversed(parts))


def list_folders(
    session: Session,
    actor: Actor,
    *,
    kind: str | None = None,
    organization_code: str | None = None,
    parent_id: int | None = None,
    offset: int = 0,
    limit: int = 50,
) -> FolderPage:
    """Readable folders, paged. Without ``parent_id`` lists top-level folders."""
    if kind is not None and kind not in FOLDER_KINDS:
        raise InvalidInput(
            "invalid_folder_kind", "フォルダの種類は case, team, shared のいずれかです。"
        )
    if offset < 0 or not 1 <= limit <= MAX_PAGE:
        raise InvalidInput("invalid_paging", f"offset は0以上、limit は1〜{MAX_PAGE}です。")
    stmt = select(Folder)
    if parent_id is not None:
        get_folder(session, actor, parent_id)
        stmt = stmt.where(Folder.parent_id == parent_id)
    else:
        stmt = stmt.where(Folder.parent_id.is_(None))  # type: ignore[union-attr]
    if kind:
        stmt = stmt.where(Folder.kind == kind)
    if organization_code:
        org = session.exec(
            select(Organization).where(Organization.code == organization_code)
        ).first()
        if org is None:
            raise NotFound("organization_not_found", f"所属 {organization_code} が見つかりません。")
        stmt = stmt.where(Folder.organization_id == org.id)
    stmt = stmt.where(readable_folder_clause(actor))
    count = session.exec(select(func.count()).select_from(stmt.subquery())).one()
    items = session.exec(
        stmt.order_by(col(Folder.kind), col(Folder.name), col(Folder.id))
        .offset(offset)
        .limit(limit)
    ).all()
    return FolderPage(items=list(items), count=count, offset=offset, limit=limit)


DOCUMENT_SORTS = ("title", "filename", "size", "doc_date", "created", "status")
"""Columns a folder's document list can be sorted by (``-name`` sorts descending)."""


@dataclass
class DocumentPage:
    items: list[Document]
    count: int


def list_documents(
    session: Session,
    actor: Actor,
    folder_id: int,
    *,
    status: str | None = None,
    class_ids: Sequence[int] | None = None,
    fiscal_year: int | None = None,
    sort: str = "created",
    offset: int = 0,
    limit: int = 100,
) -> DocumentPage:
    """A folder's live documents, filtered (決裁区分, document classes, fiscal year of the
    document date: April to March), sorted by one column (ties by registration) and paged."""
    folder, _case = get_folder(session, actor, folder_id)
    if offset < 0 or not 1 <= limit <= MAX_PAGE:
        raise InvalidInput("invalid_paging", f"offset は0以上、limit は1〜{MAX_PAGE}です。")
    key = sort.removeprefix("-")
    if key not in DOCUMENT_SORTS:
        raise InvalidInput(
            "invalid_sort", f"並べ替えは {', '.join(DOCUMENT_SORTS)} のいずれかです（- で降順）。"
        )
    stmt = select(Document).where(
        Document.folder_id == folder.id, Document.state == DocumentState.LIVE
    )
    if status:
        if status not in ("working", "official"):
            raise InvalidInput("invalid_status", "決裁区分は working か official です。")
        stmt = stmt.where(Document.status == status)
    if class_ids is not None:
        stmt = stmt.where(col(Document.document_class_id).in_(list(class_ids) or [-1]))
    if fiscal_year is not None:
        if not 1900 <= fiscal_year <= 9999:
            raise InvalidInput("invalid_fiscal_year", "年度は西暦4桁で指定してください。")
        stmt = stmt.where(
            col(Document.doc_date) >= date(fiscal_year, 4, 1),
            col(Document.doc_date) < date(fiscal_year + 1, 4, 1),
        )
    count = session.exec(select(func.count()).select_from(stmt.subquery())).one()
    column = col(Document.id) if key == "created" else col(getattr(Document, key))
    order = [column.desc() if sort.startswith("-") else column.asc()]
    if key != "created":
        order.append(col(Document.id).asc())
    items = session.exec(stmt.order_by(*order).offset(offset).limit(limit)).all()
    return DocumentPage(items=list(items), count=count)


def readable_folder_clause(actor: Actor):  # type: ignore[no-untyped-def]
    """SQL condition equivalent to :func:`can_read_folder` (paging happens after filtering)."""
    from sqlalchemy import and_, false, or_, true

    if actor.reads_everything:
        return true()
    case_org = select(Case.organization_id).where(Case.id == Folder.case_pk).scalar_subquery()
    if actor.kind == "service":
        if not actor.granted_orgs:
            return false()
        return and_(col(Folder.kind) == "case", case_org.in_(sorted(actor.granted_orgs)))
    return or_(
        and_(col(Folder.kind) == "team", col(Folder.organization_id) == actor.organization_id),
        and_(
            col(Folder.kind) == "shared",
            col(Folder.organization_id).in_(sorted(actor.org_and_ancestors)),
        ),
        and_(
            col(Folder.kind) == "case",
            or_(
                case_org == actor.organization_id,
                col(Folder.case_pk).in_(sorted(actor.member_cases) or [-1]),
            ),
        ),
    )


def ensure_admin(actor: Actor) -> None:
    require_role(actor, "admin")


__all__ = [
    "FolderPage",
    "can_read_folder",
    "create_folder",
    "create_folder_paths",
    "folder_path",
    "get_folder",
    "list_documents",
    "list_folders",
]
