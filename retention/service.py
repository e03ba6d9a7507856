"""Retention services: holds (保留), extensions (延長) and the disposition list (廃棄・移管対象一覧).

Every function takes a session and the acting :class:`~records.access.Actor`, checks the role
itself and records an audit event in the caller's transaction. The API, the CLI and the web UI
only parse input and shape output.

Public functions (typed, keyword arguments after the actor):

- :func:`place_hold` / :func:`release_hold` / :func:`list_holds` / :func:`get_hold`
- :func:`extend` / :func:`list_extensions`
- :func:`due_list` (one page, grouped by case and class) / :func:`iter_due` (every due item,
  streamed) / :func:`write_due_csv`
- :func:`active_holds` (document id → blocking holds), used by the batch services too.

Roles: records officers (文書管理担当) change retention; records officers, auditors and admins
read the lists.
"""

from __future__ import annotations

import csv
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date
from typing import IO, Any

from genpon.core.clock import local_date, utcnow
from genpon.core.errors import Conflict, InvalidInput, NotFound
from genpon.records import audit
from genpon.records.access import Actor, require_role
from genpon.records.audit.actions import AuditAction
from genpon.records.models import Case, Document, DocumentClass, Organization
from genpon.retention.models import (
    BATCH_OPEN_STATUSES,
    HOLD_SCOPES,
    DispositionBatch,
    DispositionItem,
    RetentionExtension,
    RetentionHold,
)
from genpon.retention.rules import Disposition, HoldType, RetentionPeriod
from genpon.retention.schedule import class_chain, reschedule
from sqlalchemy import and_, false, func, or_
from sqlmodel import Session, col, select

OFFICER_ROLES = ("records_officer",)
READER_ROLES = ("records_officer", "auditor", "admin")
MAX_REASON = 1000


def require_officer(actor: Actor) -> None:
    """文書管理担当 only (the local system operator passes too)."""
    require_role(actor, *OFFICER_ROLES)


def require_reader(actor: Actor) -> None:
    require_role(actor, *READER_ROLES)


def _reason(text: str | None, *, field_name: str = "reason") -> str:
    value = (text or "").strip()
    if not value:
        raise InvalidInput("reason_required", "理由を入力してください。", {"field": field_name})
    if len(value) > MAX_REASON:
        raise InvalidInput("reason_too_long", "理由は1000文字以内です。", {"field": field_name})
    return value


# --- targets --------------------------------------------------------------------------------


@dataclass
class Target:
    """What a hold or an extension applies to: one document, one case or one class."""

    scope: str
    document: Document | None = None
    case: Case | None = None
    document_class: DocumentClass | None = None

    @property
    def label(self) -> str:
        if self.document is not None:
            return f"document:{self.document.id}"
        if self.case is not None:
            return f"case:{self.case.case_id}"
        assert self.document_class is not None
        return f"class:{self.document_class.code}"

    @property
    def case_id(self) -> str | None:
        """The business case ID for the case timeline (None for a class)."""
        return self.case.case_id if self.case is not None else None

    @property
    def target_id(self) -> str:
        return self.label.split(":", 1)[1]


def resolve_target(session: Session, scope: str, ref: str | int, *, lock: bool = False) -> Target:
    """``scope`` document (ref = document id), case (ref = case ID) or class (ref = class code).
    With ``lock`` the row is locked (PostgreSQL) so a concurrent disposal waits for the hold."""
    if scope not in HOLD_SCOPES:
        raise InvalidInput(
            "invalid_scope", "対象は document / case / class のいずれかです。", {"scope": scope}
        )
    if scope == "document":
        try:
            doc_id = int(ref)
        except (TypeError, ValueError):
            raise InvalidInput("invalid_document_id", "文書IDは数値です。") from None
        stmt = select(Document).where(Document.id == doc_id)
        doc = session.exec(stmt.with_for_update() if lock else stmt).first()
        if doc is None:
            raise NotFound("document_not_found", "文書が見つかりません。", {"document_id": doc_id})
        case = session.get(Case, doc.case_pk) if doc.case_pk else None
        return Target(scope, document=doc, case=case)
    if scope == "case":
        stmt_c = select(Case).where(Case.case_id == str(ref))
        case = session.exec(stmt_c.with_for_update() if lock else stmt_c).first()
        if case is None:
            raise NotFound("case_not_found", f"案件 {ref} が見つかりません。", {"case_id": ref})
        return Target(scope, case=case)
    stmt_k = select(DocumentClass).where(DocumentClass.code == str(ref))
    cls = session.exec(stmt_k.with_for_update() if lock else stmt_k).first()
    if cls is None:
        raise NotFound(
            "document_class_not_found", f"文書分類 {ref} が見つかりません。", {"code": ref}
        )
    return Target(scope, document_class=cls)


def _target_columns(target: Target) -> dict[str, Any]:
    return {
        "scope": target.scope,
        "document_id": target.document.id if target.document else None,
        "case_pk": target.case.id if target.case and target.scope == "case" else None,
        "document_class_id": target.document_class.id if target.document_class else None,
    }


# --- holds ----------------------------------------------------------------------------------


def place_hold(
    session: Session,
    actor: Actor,
    *,
    scope: str,
    ref: str | int,
    hold_type: str,
    reason: str,
    reference: str | None = None,
) -> RetentionHold:
    """保留を設定する. Any active hold blocks destroy and transfer of what it covers."""
    require_officer(actor)
    try:
        kind = HoldType(hold_type)
    except ValueError:
        raise InvalidInput(
            "invalid_hold_type",
            "保留の種類は litigation（訴訟）/ disclosure（開示請求）/ appeal（不服申立て）/ "
            "audit（監査）/ other（その他）です。",
            {"hold_type": hold_type},
        ) from None
    why = _reason(reason)
    if reference is not None and len(reference) > 200:
        raise InvalidInput("reference_too_long", "参照番号は200文字以内です。")
    target = resolve_target(session, scope, ref, lock=True)
    if target.document is not None and target.document.state != "live":
        raise Conflict(
            "document_not_live",
            "この文書は廃棄または移管済みです。",
            {"state": target.document.state},
        )
    hold = RetentionHold(
        hold_type=kind.value,
        reason=why,
        reference=(reference or "").strip() or None,
        placed_by=actor.login,
        **_target_columns(target),
    )
    session.add(hold)
    session.flush()
    audit.record(
        session,
        actor=actor.login,
        action=AuditAction.RETENTION_HOLD_PLACED,
        target_type=target.scope,
        target_id=target.target_id,
        case_id=target.case_id,
        details={
            "hold_id": hold.id,
            "hold_type": kind.value,
            "hold_type_label": kind.label,
            "reason": why,
            "reference": hold.reference,
        },
    )
    return hold


def get_hold(session: Session, actor: Actor, hold_id: int) -> RetentionHold:
    require_reader(actor)
    hold = session.get(RetentionHold, hold_id)
    if hold is None:
        raise NotFound("hold_not_found", "保留が見つかりません。", {"hold_id": hold_id})
    return hold


def release_hold(session: Session, actor: Actor, hold_id: int, *, reason: str) -> RetentionHold:
    """保留を解除する (a reason is required)."""
    require_officer(actor)
    why = _reason(reason)
    stmt = select(RetentionHold).where(RetentionHold.id == hold_id).with_for_update()
    hold = session.exec(stmt).first()
    if hold is None:
        raise NotFound("hold_not_found", "保留が見つかりません。", {"hold_id": hold_id})
    if hold.released_at is not None:
        raise Conflict("hold_already_released", "この保留は既に解除されています。")
    hold.released_at = utcnow()
    hold.released_by = actor.login
    hold.release_reason = why
    session.add(hold)
    target_type, target_id, case_id = hold_target(session, hold)
    audit.record(
        session,
        actor=actor.login,
        action=AuditAction.RETENTION_HOLD_RELEASED,
        target_type=target_type,
        target_id=target_id,
        case_id=case_id,
        details={"hold_id": hold.id, "hold_type": hold.hold_type, "reason": why},
    )
    return hold


def hold_target(session: Session, hold: RetentionHold) -> tuple[str, str, str | None]:
    """(target_type, target_id, case ID for the timeline) of a hold."""
    if hold.document_id is not None:
        doc = session.get(Document, hold.document_id)
        case = session.get(Case, doc.case_pk) if doc and doc.case_pk else None
        return "document", str(hold.document_id), case.case_id if case else None
    if hold.case_pk is not None:
        case = session.get(Case, hold.case_pk)
        return "case", case.case_id if case else str(hold.case_pk), case.case_id if case else None
    cls = session.get(DocumentClass, hold.document_class_id)
    return "class", cls.code if cls else str(hold.document_class_id), None


def list_holds(
    session: Session,
    actor: Actor,
    *,
    active: bool | None = True,
    scope: str | None = None,
    ref: str | int | None = None,
) -> list[RetentionHold]:
    """Holds, newest first; ``active=None`` lists released ones too."""
    require_reader(actor)
    stmt = select(RetentionHold)
    if active is True:
        stmt = stmt.where(col(RetentionHold.released_at).is_(None))
    elif active is False:
        stmt = stmt.where(col(RetentionHold.released_at).is_not(None))
    if scope is not None and ref is not None:
        cols = _target_columns(resolve_target(session, scope, ref))
        stmt = stmt.where(RetentionHold.scope == scope)
        for name in ("document_id", "case_pk", "document_class_id"):
            if cols[name] is not None:
                stmt = stmt.where(getattr(RetentionHold, name) == cols[name])
    return list(session.exec(stmt.order_by(col(RetentionHold.id).desc())).all())


@dataclass
class _DocKey:
    id: int
    case_pk: int | None
    document_class_id: int | None


def active_holds(session: Session, docs: Iterable[Any]) -> dict[int, list[RetentionHold]]:
    """Active holds covering each document (by id): on the document, its case, its class or a
    class above it. ``docs`` are Documents or rows with ``id``, ``case_pk``,
    ``document_class_id``. Documents without a hold are absent from the answer."""
    holds = session.exec(
        select(RetentionHold).where(col(RetentionHold.released_at).is_(None))
    ).all()
    if not holds:
        return {}
    by_doc: dict[int, list[RetentionHold]] = defaultdict(list)
    by_case: dict[int, list[RetentionHold]] = defaultdict(list)
    by_class: dict[int, list[RetentionHold]] = defaultdict(list)
    for h in holds:
        if h.document_id is not None:
            by_doc[h.document_id].append(h)
        elif h.case_pk is not None:
            by_case[h.case_pk].append(h)
        elif h.document_class_id is not None:
            by_class[h.document_class_id].append(h)
    chains: dict[int | None, list[int]] = {}
    out: dict[int, list[RetentionHold]] = {}
    for d in docs:
        found = list(by_doc.get(d.id, ()))
        if d.case_pk is not None:
            found += by_case.get(d.case_pk, ())
        if by_class:
            cid = d.document_class_id
            if cid not in chains:
                chains[cid] = [c.id for c in class_chain(session, cid) if c.id is not None]
            for c in chains[cid]:
                found += by_class.get(c, ())
        if found:
            out[d.id] = found
    return out


# --- extensions -----------------------------------------------------------------------------


def extend(
    session: Session,
    actor: Actor,
    *,
    scope: str,
    ref: str | int,
    years: int,
    reason: str,
    timezone: str,
) -> tuple[RetentionExtension, int]:
    """延長: add ``years`` (1–30) to a document, a case or a whole class. Dates of the scheduled
    documents it covers are recomputed now; later closings include it. Returns the extension
    and how many documents got new dates."""
    require_officer(actor)
    if isinstance(years, bool) or not isinstance(years, int) or not 1 <= years <= 30:
        raise InvalidInput("invalid_years", "延長する年数は1〜30の整数です。", {"years": years})
    why = _reason(reason)
    target = resolve_target(session, scope, ref, lock=True)
    if target.document is not None and target.document.state != "live":
        raise Conflict("document_not_live", "この文書は廃棄または移管済みです。")
    ext = RetentionExtension(
        years=years, reason=why, created_by=actor.login, **_target_columns(target)
    )
    session.add(ext)
    session.flush()
    docs = _covered_documents(session, target)
    changed = reschedule(session, docs, timezone=timezone)
    audit.record(
        session,
        actor=actor.login,
        action=AuditAction.RETENTION_EXTENDED,
        target_type=target.scope,
        target_id=target.target_id,
        case_id=target.case_id,
        details={
            "extension_id": ext.id,
            "years": years,
            "reason": why,
            "documents_rescheduled": changed,
            "retention_end": (
                target.document.retention_end.isoformat()
                if target.document is not None and target.document.retention_end
                else None
            ),
        },
    )
    return ext, changed


def _covered_documents(session: Session, target: Target) -> list[Document]:
    stmt = select(Document).where(Document.state == "live")
    if target.document is not None:
        return [target.document]
    if target.case is not None:
        return list(session.exec(stmt.where(Document.case_pk == target.case.id)).all())
    assert target.document_class is not None
    ids = _class_subtree(session, target.document_class.id or 0)
    return list(session.exec(stmt.where(col(Document.document_class_id).in_(ids))).all())


def _class_subtree(session: Session, class_id: int) -> list[int]:
    rows = session.exec(select(DocumentClass.id, DocumentClass.parent_id)).all()
    children: dict[int | None, list[int]] = defaultdict(list)
    for cid, parent in rows:
        children[parent].append(cid)
    out, todo = [], [class_id]
    while todo:
        c = todo.pop()
        out.append(c)
        todo.extend(children.get(c, ()))
    return out


def list_extensions(
    session: Session, actor: Actor, *, scope: str | None = None, ref: str | int | None = None
) -> list[RetentionExtension]:
    require_reader(actor)
    stmt = select(RetentionExtension)
    if scope is not None and ref is not None:
        cols = _target_columns(resolve_target(session, scope, ref))
        stmt = stmt.where(RetentionExtension.scope == scope)
        for name in ("document_id", "case_pk", "document_class_id"):
            if cols[name] is not None:
                stmt = stmt.where(getattr(RetentionExtension, name) == cols[name])
    return list(session.exec(stmt.order_by(col(RetentionExtension.id))).all())


# --- the disposition list -------------------------------------------------------------------


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


def due_condition(as_of: date) -> Any:
    """SQL condition: live and past the end (1年未満: on or after the closing date)."""
    end = col(Document.retention_end)
    return and_(
        Document.state == "live",
        end.is_not(None),
        end <= as_of,
        or_(end < as_of, Document.retention_start == Document.retention_end),
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
        conds.append(col(Document.document_class_id).in_(_class_subtree(session, cls.id or 0)))
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
    return (
        select(
            Document.id,
            Document.title,
            Document.filename,
            Document.sha256,
            Document.size,
            Document.case_pk,
            Document.document_class_id,
            Document.original_id,
            Document.retention_start,
            Document.retention_end,
            Case.case_id,
            Case.title,
            DocumentClass.code,
            DocumentClass.name,
            DocumentClass.retention,
            DocumentClass.disposition,
            Organization.code,
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
