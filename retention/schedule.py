"""Fixing retention dates (起算日・満了日) when a case closes, clearing them when it reopens.

The dates follow :mod:`retention.rules`: by default (class ``start_rule = next_fiscal_year``)
the start is April 1 of the fiscal year after the closing date in the city's time zone and the
end is the day before the same date N years later; ``closing_date`` starts on the closing date.
1年未満 documents are due any time after closing (start = end = closing date); permanent (永年)
documents have no end. Extensions (延長) on the document, its case and its class (or any class
above it) add up. A copy (写し) never outlives its original: its end is capped by the
original's (:func:`retention.rules.copy_end_cap`).

Which documents are scheduled: live documents of a closed case that are official (決裁済) or
copies; a document without a case is scheduled from its own date (``doc_date``) when it has a
class and is official. ``Document.retention_end`` always holds the *effective* end (after
extensions and the copy cap), so the disposition list is one indexed range query.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date

from genpon.records.models import Case, Document, DocumentClass
from genpon.retention.rules import add_years as add_years  # re-exported for older callers
from genpon.retention.rules import copy_end_cap, retention_dates
from sqlmodel import Session, col, select


def class_chain(session: Session, class_id: int | None) -> list[DocumentClass]:
    """The class and every class above it (small, bounded by the hierarchy depth)."""
    out: list[DocumentClass] = []
    seen: set[int] = set()
    current = class_id
    while current is not None and current not in seen:
        seen.add(current)
        cls = session.get(DocumentClass, current)
        if cls is None:
            break
        out.append(cls)
        current = cls.parent_id
    return out


def extension_years(session: Session, doc: Document, case: Case | None) -> int:
    """Total years of every extension that applies to ``doc`` (document, case, class chain)."""
    from genpon.retention.models import RetentionExtension

    class_ids = [c.id for c in class_chain(session, _class_id(doc, case))]
    conds = [col(RetentionExtension.document_id) == doc.id]
    if case is not None:
        conds.append(col(RetentionExtension.case_pk) == case.id)
    if class_ids:
        conds.append(col(RetentionExtension.document_class_id).in_(class_ids))
    from sqlalchemy import or_

    years = session.exec(select(RetentionExtension.years).where(or_(*conds))).all()
    return sum(years)


def _class_id(doc: Document, case: Case | None) -> int | None:
    return doc.document_class_id or (case.document_class_id if case else None)


def own_dates(
    session: Session, doc: Document, case: Case | None, *, timezone: str
) -> tuple[date | None, date | None]:
    """The document's dates before the copy cap: ``(None, None)`` while not scheduled."""
    if doc.state != "live":
        return doc.retention_start, doc.retention_end
    if doc.status != "official" and doc.original_id is None:
        return None, None
    if case is not None:
        if case.status != "closed" or case.closed_at is None:
            return None, None
        closed: object = case.closed_at
    else:
        if doc.status != "official":
            return None, None
        closed = doc.doc_date
    cls = session.get(DocumentClass, _class_id(doc, case)) if _class_id(doc, case) else None
    if cls is None:
        return None, None
    ext = extension_years(session, doc, case)
    return retention_dates(
        closed,  # type: ignore[arg-type]
        cls.retention,
        rule=cls.start_rule,
        extensions=[ext] if ext else [],
        tz=timezone,
    )


def schedule_document(session: Session, doc: Document, *, timezone: str) -> bool:
    """(Re)compute the dates of one live document; returns True when they changed."""
    if doc.state != "live":
        return False
    case = session.get(Case, doc.case_pk) if doc.case_pk else None
    start, end = own_dates(session, doc, case, timezone=timezone)
    if doc.original_id is not None:
        original = session.get(Document, doc.original_id)
        if original is not None and original.retention_end is not None:
            end = copy_end_cap(end, original.retention_end)
    if (doc.retention_start, doc.retention_end) == (start, end):
        return False
    doc.retention_start, doc.retention_end = start, end
    session.add(doc)
    return True


def reschedule(session: Session, docs: Iterable[Document], *, timezone: str) -> int:
    """Schedule ``docs`` and then every live copy of them (their cap may have moved)."""
    changed = 0
    ids: list[int] = []
    for doc in docs:
        changed += schedule_document(session, doc, timezone=timezone)
        if doc.id is not None and doc.original_id is None:
            ids.append(doc.id)
    session.flush()
    for i in range(0, len(ids), 500):
        copies = session.exec(
            select(Document).where(
                col(Document.original_id).in_(ids[i : i + 500]), Document.state == "live"
            )
        ).all()
        for copy in copies:
            changed += schedule_document(session, copy, timezone=timezone)
    session.flush()
    return changed


def fix_case_dates(session: Session, case: Case, *, timezone: str) -> int:
    """Called when a case closes (and when a document of a closed case is approved): fixes the
    dates of its documents and re-caps their copies. Returns how many documents are scheduled."""
    if case.closed_at is None:
        return 0
    docs = session.exec(
        select(Document).where(Document.case_pk == case.id, Document.state == "live")
    ).all()
    reschedule(session, docs, timezone=timezone)
    return sum(1 for d in docs if d.retention_end is not None or d.retention_start is not None)


def clear_case_dates(session: Session, case: Case, *, timezone: str) -> int:
    """Called when a case reopens (``case.closed_at`` already cleared): its documents lose their
    dates, except that a copy stays capped by an original kept elsewhere; copies elsewhere of
    its originals lose that cap. Returns how many documents had dates."""
    docs = session.exec(
        select(Document).where(Document.case_pk == case.id, Document.state == "live")
    ).all()
    had = sum(1 for d in docs if d.retention_start or d.retention_end)
    reschedule(session, docs, timezone=timezone)
    return had


class _Scheduler:
    """The retention schedule as records' :class:`~genpon.records.lifecycle.CaseScheduler`."""

    def case_closed(self, session: Session, case: Case, *, timezone: str) -> int:
        return fix_case_dates(session, case, timezone=timezone)

    def case_reopened(self, session: Session, case: Case, *, timezone: str) -> int:
        return clear_case_dates(session, case, timezone=timezone)


SCHEDULER = _Scheduler()
