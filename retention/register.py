"""行政文書ファイル管理簿 from the database: one row per 行政文書ファイル (a case).

Row values (see :mod:`retention.register_export` for the columns and the file formats):
作成・取得年度 = the case's fiscal year; 分類 = the class and the classes above it (大・中・小);
名称 = the case title; 作成・取得者 = the organization; 起算日 / 保存期間満了日 = computed by
:mod:`retention.rules` from the closing date with every extension of the case and its class
chain (blank while the case is open); 保存期間 shows the cumulative period (延長を含む);
媒体 = 電子; 保存場所 = Genpon 公文書保管領域; 管理者 = the organization's head (〇〇課長);
備考 = active holds, extensions with their reasons, and what was destroyed or transferred.

Public functions: :func:`register_rows` (role-checked, filters by organization and fiscal
year), :func:`register_rows_for_cases` (used by the transfer package), :func:`export_register`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import IO, Any, cast

from genpon.core.errors import InvalidInput, NotFound
from genpon.records.access import Actor
from genpon.records.models import Case, Document, Organization
from genpon.retention.models import RetentionExtension, RetentionHold
from genpon.retention.register_export import write_csv, write_xlsx
from genpon.retention.rules import HoldType, retention_dates
from genpon.retention.schedule import class_chain
from genpon.retention.service import require_reader
from sqlalchemy import func, or_
from sqlmodel import Session, col, select

LOCATION = "Genpon 公文書保管領域"
MEDIUM = "電子"


def register_rows(
    session: Session,
    actor: Actor,
    *,
    organization_code: str | None = None,
    fiscal_year: int | None = None,
    timezone: str,
) -> list[dict[str, Any]]:
    """Register rows, ordered by fiscal year, organization and case ID."""
    require_reader(actor)
    stmt = select(Case.id)
    if organization_code:
        org = session.exec(
            select(Organization).where(Organization.code == organization_code)
        ).first()
        if org is None:
            raise NotFound("organization_not_found", f"所属 {organization_code} が見つかりません。")
        stmt = stmt.where(Case.organization_id == org.id)
    if fiscal_year is not None:
        if not 1900 <= fiscal_year <= 2200:
            raise InvalidInput("invalid_fiscal_year", "年度は西暦4桁で指定してください。")
        stmt = stmt.where(Case.fiscal_year == fiscal_year)
    pks = cast(list[int], list(session.exec(stmt).all()))  # primary keys: never NULL
    return register_rows_for_cases(session, pks, timezone=timezone)


def register_rows_for_cases(
    session: Session, case_pks: Iterable[int], *, timezone: str
) -> list[dict[str, Any]]:
    """Register rows of the given cases; ``timezone`` (the caller's settings) dates them."""
    pks = sorted(set(case_pks))
    cases: list[Case] = []
    for i in range(0, len(pks), 900):
        cases += session.exec(select(Case).where(col(Case.id).in_(pks[i : i + 900]))).all()
    orgs = {o.id: o for o in session.exec(select(Organization)).all()}
    ext_case, ext_class = _extensions(session, pks)
    holds_case, holds_class = _holds(session)
    states = _document_states(session, pks)
    rows = []
    for case in sorted(cases, key=lambda c: (c.fiscal_year, c.organization_id, c.case_id)):
        chain = list(reversed(class_chain(session, case.document_class_id)))
        cls = chain[-1] if chain else None
        levels = [c.name for c in chain][:3]
        levels += [""] * (3 - len(levels))
        ext_rows = ext_case.get(case.id or 0, []) + [
            e for c in chain for e in ext_class.get(c.id or 0, [])
        ]
        ext_years = sum(e.years for e in ext_rows)
        start = end = None
        if cls is not None and case.status == "closed" and case.closed_at is not None:
            start, end = retention_dates(
                case.closed_at,
                cls.retention,
                rule=cls.start_rule,
                extensions=[ext_years] if ext_years else [],
                tz=timezone,
            )
        remarks = []
        holds = holds_case.get(case.id or 0, []) + [
            h for c in chain for h in holds_class.get(c.id or 0, [])
        ]
        if holds:
            remarks.append(
                "保留中（" + "・".join(sorted({HoldType(h.hold_type).label for h in holds})) + "）"
            )
        for e in ext_rows:
            remarks.append(f"延長{e.years}年（{e.reason}）")
        st = states.get(case.id or 0, {})
        if st.get("destroyed"):
            remarks.append(f"廃棄済 {st['destroyed']}件")
        if st.get("transferred"):
            remarks.append(f"移管済 {st['transferred']}件")
        org = orgs.get(case.organization_id)
        rows.append(
            {
                "fiscal_year": case.fiscal_year,
                "class_large": levels[0],
                "class_medium": levels[1],
                "class_small": levels[2],
                "title": f"{case.title}（{case.case_id}）",
                "organization": org.name if org else "",
                "retention_start": start,
                "retention": cls.retention if cls else None,
                "extension_years": ext_years if cls and cls.retention != "permanent" else 0,
                "retention_end": end,
                "medium": MEDIUM,
                "location": LOCATION,
                "manager": f"{org.name}長" if org else "",
                "disposition": cls.disposition if cls else None,
                "remarks": " / ".join(remarks),
            }
        )
    return rows


def _extensions(
    session: Session, case_pks: list[int]
) -> tuple[dict[int, list[RetentionExtension]], dict[int, list[RetentionExtension]]]:
    by_case: dict[int, list[RetentionExtension]] = defaultdict(list)
    by_class: dict[int, list[RetentionExtension]] = defaultdict(list)
    for e in session.exec(
        select(RetentionExtension).where(
            or_(
                col(RetentionExtension.case_pk).is_not(None),
                col(RetentionExtension.document_class_id).is_not(None),
            )
        )
    ).all():
        if e.case_pk is not None:
            by_case[e.case_pk].append(e)
        elif e.document_class_id is not None:
            by_class[e.document_class_id].append(e)
    return by_case, by_class


def _holds(
    session: Session,
) -> tuple[dict[int, list[RetentionHold]], dict[int, list[RetentionHold]]]:
    by_case: dict[int, list[RetentionHold]] = defaultdict(list)
    by_class: dict[int, list[RetentionHold]] = defaultdict(list)
    for h in session.exec(
        select(RetentionHold).where(col(RetentionHold.released_at).is_(None))
    ).all():
        if h.case_pk is not None:
            by_case[h.case_pk].append(h)
        elif h.document_class_id is not None:
            by_class[h.document_class_id].append(h)
    return by_case, by_class


def _document_states(session: Session, case_pks: list[int]) -> dict[int, dict[str, int]]:
    out: dict[int, dict[str, int]] = defaultdict(dict)
    for i in range(0, len(case_pks), 900):
        for pk, state, n in session.exec(
            select(Document.case_pk, Document.state, func.count())
            .where(col(Document.case_pk).in_(case_pks[i : i + 900]), Document.state != "live")
            .group_by(col(Document.case_pk), col(Document.state))
        ).all():
            out[cast(int, pk)][state] = n  # in case_pks, so not NULL
    return out


def export_register(rows: list[dict[str, Any]], fmt: str, fp: IO[bytes]) -> int:
    """Write ``rows`` as ``csv`` (UTF-8 with BOM) or ``xlsx`` to a binary stream."""
    if fmt == "csv":
        return write_csv(rows, fp)
    if fmt == "xlsx":
        return write_xlsx(rows, fp)
    raise InvalidInput("invalid_format", "形式は csv か xlsx です。", {"format": fmt})
