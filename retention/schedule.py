"""Fixing retention dates (起算日・満了日) when a case closes, clearing them when it reopens.

Default rule (class ``start_rule = next_fiscal_year``): start on April 1 of the fiscal year after
the closing date (in the city's time zone); end the day before the same date N years later.
``closing_date`` starts on the closing date itself. 1年未満 documents are due any time after
closing (start = end = closing date); permanent (永年) documents have no end.
"""

from __future__ import annotations

from datetime import date

from sqlmodel import Session, select

from core.clock import fiscal_year_of, local_date
from records.models import Case, Document, DocumentClass


def add_years(d: date, years: int) -> date:
    """Same date ``years`` later; Feb 29 falls back to Feb 28 in a common year."""
    try:
        return d.replace(year=d.year + years)
    except ValueError:
        return d.replace(year=d.year + years, day=28)


def retention_dates(
    cls: DocumentClass, closed_on: date, *, extra_years: int = 0
) -> tuple[date, date | None]:
    if cls.retention == "lt1":
        return closed_on, closed_on
    if cls.start_rule == "closing_date":
        start = closed_on
    else:
        start = date(fiscal_year_of(closed_on) + 1, 4, 1)
    if cls.retention == "permanent":
        return start, None
    years = int(cls.retention) + extra_years
    return start, add_years(start, years) - (date(2000, 1, 2) - date(2000, 1, 1))


def fix_case_dates(session: Session, case: Case, *, timezone: str) -> int:
    if case.closed_at is None:
        return 0
    closed_on = local_date(case.closed_at, timezone)
    docs = session.exec(
        select(Document).where(
            Document.case_pk == case.id, Document.state == "live", Document.status == "official"
        )
    ).all()
    for doc in docs:
        cls = session.get(DocumentClass, doc.document_class_id or case.document_class_id)
        if cls is None:
            continue
        doc.retention_start, doc.retention_end = retention_dates(cls, closed_on)
        session.add(doc)
    return len(docs)


def clear_case_dates(session: Session, case: Case) -> int:
    docs = session.exec(
        select(Document).where(Document.case_pk == case.id, Document.state == "live")
    ).all()
    n = 0
    for doc in docs:
        if doc.retention_start or doc.retention_end:
            doc.retention_start = doc.retention_end = None
            session.add(doc)
            n += 1
    return n
