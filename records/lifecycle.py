"""Hooks through which a higher layer reacts to a records event without records importing it.

Closing a case (案件の完結) fixes the retention dates (起算日・満了日) of its documents, reopening
clears them, and approving a document of a closed case schedules it. Those rules belong to
``genpon.retention``, which sits above records; records only announces the event here, and
retention registers its scheduler when it is imported (``genpon.retention.__init__``).

Announcing an event that has no scheduler registered is an error, not a no-op: a case closed
with its dates silently left open would never come due for disposal.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from genpon.records.models import Case
    from sqlmodel import Session


class CaseScheduler(Protocol):
    """What records asks of the retention schedule (保存期間の起算)."""

    def case_closed(self, session: Session, case: Case, *, timezone: str) -> int:
        """The case closed (or a document of a closed case was approved): fix its documents'
        dates; returns how many documents are scheduled."""
        ...

    def case_reopened(self, session: Session, case: Case, *, timezone: str) -> int:
        """The case reopened: clear the dates fixed at closing; returns how many had dates."""
        ...


_scheduler: CaseScheduler | None = None


def register_case_scheduler(scheduler: CaseScheduler) -> None:
    """Called once by the retention layer on import; a later call replaces the earlier one."""
    global _scheduler
    _scheduler = scheduler


def case_scheduler() -> CaseScheduler:
    if _scheduler is None:
        raise RuntimeError(
            "no retention scheduler is registered: import genpon.retention before closing, "
            "reopening or approving into cases"
        )
    return _scheduler
