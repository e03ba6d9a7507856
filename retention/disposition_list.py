"""The disposition list (廃棄・移管対象一覧): documents whose retention has ended, with their
disposition, holds and open batches; one page grouped by case and class, every item streamed,
and the CSV for Excel."""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date
from typing import IO, Any

from genpon.core.clock import local_date, utcnow
from genpon.core.errors import InvalidInput, NotFound
from genpon.records.access import Actor
from genpon.records.models import Case, Document, DocumentClass, DocumentState, Organization
from genpon.retention.holding import active_holds
from genpon.retention.models import BATCH_OPEN_STATUSES, DispositionBatch, DispositionItem
from genpon.retention.rules import Disposition, HoldType, RetentionPeriod
from genpon.retention.service import class_subtree, require_reader
from sqlalchemy import and_, false, func, or_
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select


@dataclass
class HoldInfo:
    id: int
    hold_type: str
    label: str
    scope: str
    reason: str


@dataclass
class DueItem:
    """One due document. ``held`` items are listed but cannot go into a batch."""

    document_id: int
    title: str
    filename: str
    sha256: str
    size: int
    case_id: str | None
    case_title: str | None
    class_code: str | None
    class_name: str | None
    organization_code: str | None
    retention: str | None  # class period code ("5", "lt1" …)
    retention_start: date | None
    retention_end: date | None
    disposition: str  # destroy | transfer
    is_copy: bool
    original_id: int | None
    holds: list[HoldInfo] = field(default_factory=list)
    batch_id: int | None = None  # an open batch already holds it

    @property
    def held(self) -> bool:
        return bool(self.holds)


@dataclass
class DueGroup:
    case_id: str | None
    case_title: str | None
    class_code: str | None
    class_name: str | None
    disposition: str
    items: list[DueItem]


@dataclass
class DueList:
    as_of: date
    total: int  # every due item matching the filters (the page may hold fewer)
    offset: int
    limit: int
    groups: list[DueGroup]

    @property
    def items(self) -> list[DueItem]:
        return [i for g in self.groups for i in g.items]


@dataclass
class _DocKey:
    id: int
    case_pk: int | None
    document_class_id: int | None


def due_condition(as_of: date) -> Any:
    """SQL condition: live and past the end (1年未満: on or after the closing date)."""
    end = col(Document.retention_end)
    return and_(
        col(Document.state) == DocumentState.LIVE,
        end.is_not(None),
        end <= as_of,
        or_(end < as_of, col(Document.retention_start) == col(Document.retention_end)),
    )


def _due_conditions(
    session: Session,
    as_of: date,
    *,
    organization_code: str | None,
    class_code: str | None,
    disposition: str | None,
    case_id: str | None,
) -> list[Any]:
    """The due condition and the filters, all on document columns (names are resolved to ids
    first), so the count reads one index and a page needs no join before its limit."""
    conds: list[Any] = [due_condition(as_of)]
    if organization_code:
        org = session.exec(
            select(Organization).where(Organization.code == organization_code)
        ).first()
        if org is None:
            raise NotFound("organization_not_found", f"所属 {organization_code} が見つかりません。")
        conds.append(Document.organization_id == org.id)
    if class_code:
        cls = session.exec(select(DocumentClass).where(DocumentClass.code == class_code)).first()
        if cls is None:
            raise NotFound("document_class_not_found", f"文書分類 {class_code} が見つかりません。")
        conds.append(col(Document.document_class_id).in_(class_subtree(session, cls.id or 0)))
    if disposition:
        try:
            disp = Disposition.parse(disposition)
        except ValueError:
            raise InvalidInput(
                "invalid_disposition", "措置は destroy（廃棄）か transfer（移管）です。"
            ) from None
        class_ids = session.exec(
            select(DocumentClass.id).where(DocumentClass.disposition == disp.value)
        ).all()
        conds.append(col(Document.document_class_id).in_(list(class_ids)))
    if case_id:
        case_pk = session.exec(select(Case.id).where(Case.case_id == case_id)).first()
        conds.append(Document.case_pk == case_pk if case_pk is not None else false())
    return conds


def _due_rows_stmt(conds: list[Any]) -> Any:
    # sqlalchemy's select: sqlmodel's is typed for at most four columns
    return (
        sa_select(
            col(Document.id),
            col(Document.title),
            col(Document.filename),
            col(Document.sha256),
            col(Document.size),
            col(Document.case_pk),
            col(Document.document_class_id),
            col(Document.original_id),
            col(Document.retention_start),
            col(Document.retention_end),
            col(Case.case_id),
            col(Case.title),
            col(DocumentClass.code),
            col(DocumentClass.name),
            col(DocumentClass.retention),
            col(DocumentClass.disposition),
            col(Organization.code),
        )
        .select_from(Document)
        .join(Case, col(Case.id) == Document.case_pk, isouter=True)
        .join(DocumentClass, col(DocumentClass.id) == Document.document_class_id, isouter=True)
        .join(Organization, col(Organization.id) == Document.organization_id, isouter=True)
        .where(*conds)
    )


def _due_stmt(
    session: Session,
    as_of: date,
    *,
    organization_code: str | None,
    class_code: str | None,
    disposition: str | None,
    case_id: str | None,
) -> Any:
    return _due_rows_stmt(
        _due_conditions(
            session,
            as_of,
            organization_code=organization_code,
            class_code=class_code,
            disposition=disposition,
            case_id=case_id,
        )
    )


def _as_of(as_of: date | None, timezone: str) -> date:
    return as_of or local_date(utcnow(), timezone)


def _items_from_rows(session: Session, rows: list[Any]) -> list[DueItem]:
    keys = [_DocKey(r[0], r[5], r[6]) for r in rows]
    holds = active_holds(session, keys)
    in_batch = open_batch_of(session, [r[0] for r in rows])
    items = []
    for r in rows:
        items.append(
            DueItem(
                document_id=r[0],
                title=r[1],
                filename=r[2],
                sha256=r[3],
                size=r[4],
                original_id=r[7],
                is_copy=r[7] is not None,
                retention_start=r[8],
                retention_end=r[9],
                case_id=r[10],
                case_title=r[11],
                class_code=r[12],
                class_name=r[13],
                retention=r[14],
                disposition=r[15] or "destroy",
                organization_code=r[16],
                holds=[
                    HoldInfo(h.id or 0, h.hold_type, HoldType(h.hold_type).label, h.scope, h.reason)
                    for h in holds.get(r[0], ())
                ],
                batch_id=in_batch.get(r[0]),
            )
        )
    return items


def open_batch_of(session: Session, document_ids: list[int]) -> dict[int, int]:
    """document id → id of an open batch (pending, approved, executing, exported) holding it."""
    out: dict[int, int] = {}
    for i in range(0, len(document_ids), 900):
        rows = session.exec(
            select(DispositionItem.document_id, DispositionItem.batch_id)
            .join(DispositionBatch, col(DispositionBatch.id) == DispositionItem.batch_id)
            .where(
                col(DispositionItem.document_id).in_(document_ids[i : i + 900]),
                col(DispositionBatch.status).in_(BATCH_OPEN_STATUSES),
                DispositionItem.decision != "rejected",
                DispositionItem.status == "pending",
            )
        ).all()
        out.update({d: b for d, b in rows})
    return out


def due_list(
    session: Session,
    actor: Actor,
    *,
    timezone: str,
    as_of: date | None = None,
    organization_code: str | None = None,
    class_code: str | None = None,
    disposition: str | None = None,
    case_id: str | None = None,
    offset: int = 0,
    limit: int = 1000,
) -> DueList:
    """廃棄・移管対象一覧: documents due as of ``as_of`` (default today in the city's time zone),
    grouped by case and class, with their disposition; held items are listed as held.
    Ordered by case (registration order), class and document id; holds and open batches are
    looked up for the page's rows only."""
    require_reader(actor)
    if offset < 0 or not 1 <= limit <= 100_000:
        raise InvalidInput("invalid_paging", "offset は0以上、limit は1〜100000です。")
    day = _as_of(as_of, timezone)
    conds = _due_conditions(
        session,
        day,
        organization_code=organization_code,
        class_code=class_code,
        disposition=disposition,
        case_id=case_id,
    )
    # Count on the document table alone (an index-only scan of ix_document_retention_due);
    # the page in index order (case, class, id: ix_document_retention_page), so the database
    # stops after ``offset + limit`` due rows; names are joined for the page's rows only.
    total = session.exec(select(func.count()).select_from(Document).where(*conds)).one()
    rows = list(
        session.exec(
            _due_rows_stmt(conds)
            .order_by(col(Document.case_pk), col(Document.document_class_id), col(Document.id))
            .offset(offset)
            .limit(limit)
        ).all()
    )
    return DueList(
        as_of=day,
        total=total,
        offset=offset,
        limit=limit,
        groups=group_items(_items_from_rows(session, rows)),
    )


def group_items(items: Iterable[DueItem]) -> list[DueGroup]:
    groups: dict[tuple[Any, ...], DueGroup] = {}
    for item in items:
        key = (item.case_id, item.class_code, item.disposition)
        g = groups.get(key)
        if g is None:
            g = groups[key] = DueGroup(
                item.case_id,
                item.case_title,
                item.class_code,
                item.class_name,
                item.disposition,
                [],
            )
        g.items.append(item)
    return list(groups.values())


def iter_due(
    session: Session,
    actor: Actor,
    *,
    timezone: str,
    as_of: date | None = None,
    organization_code: str | None = None,
    class_code: str | None = None,
    disposition: str | None = None,
    case_id: str | None = None,
    chunk: int = 2000,
) -> Iterator[DueItem]:
    """Every due item (keyset pages by document id), for CSV export and batch creation."""
    require_reader(actor)
    day = _as_of(as_of, timezone)
    stmt = _due_stmt(
        session,
        day,
        organization_code=organization_code,
        class_code=class_code,
        disposition=disposition,
        case_id=case_id,
    )
    last = 0
    while True:
        rows = list(
            session.exec(
                stmt.where(col(Document.id) > last).order_by(col(Document.id)).limit(chunk)
            ).all()
        )
        if not rows:
            return
        yield from _items_from_rows(session, rows)
        last = rows[-1][0]


DUE_CSV_HEADER = (
    "案件ID",
    "案件名",
    "分類コード",
    "分類名",
    "文書ID",
    "件名",
    "ファイル名",
    "所属",
    "保存期間",
    "起算日",
    "保存期間満了日",
    "満了時の措置",
    "写し",
    "保留",
    "伺い番号",
    "SHA-256",
    "サイズ",
)


def due_csv_row(item: DueItem) -> list[str]:
    period = RetentionPeriod.parse(item.retention).label if item.retention else ""
    holds = " / ".join(f"{h.label}（{h.reason}）" for h in item.holds)
    return [
        item.case_id or "",
        item.case_title or "",
        item.class_code or "",
        item.class_name or "",
        str(item.document_id),
        item.title,
        item.filename,
        item.organization_code or "",
        period,
        item.retention_start.isoformat() if item.retention_start else "",
        item.retention_end.isoformat() if item.retention_end else "",
        Disposition.parse(item.disposition).label,
        "写し" if item.is_copy else "",
        holds,
        str(item.batch_id or ""),
        item.sha256,
        str(item.size),
    ]


def _csv_safe(value: str) -> str:
    return "'" + value if value.startswith(("=", "+", "-", "@", "\t", "\r")) else value


def write_due_csv(items: Iterable[DueItem], fp: IO[str]) -> int:
    """CSV (UTF-8 with BOM for Excel, CRLF) of due items to a text stream opened with
    ``newline=""``. Returns the number of rows."""
    fp.write("\ufeff")
    writer = csv.writer(fp, lineterminator="\r\n")
    writer.writerow(DUE_CSV_HEADER)
    n = 0
    for item in items:
        writer.writerow([_csv_safe(v) for v in due_csv_row(item)])
        n += 1
    return n
