"""The steps after a disposal batch is approved (承認後の手順): which step may start from which
status (:data:`STEPS`), what a person may do now (:func:`available_steps`), the state check the
service functions make (:func:`check_state`), and what a step will do before it is confirmed
(:func:`preview_step`, the confirmation screens). Split from :mod:`.batches`, which creates and
reviews batches.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from genpon.core.clock import local_date, utcnow
from genpon.core.errors import Conflict, Forbidden, InvalidInput, NotFound
from genpon.records.access import Actor
from genpon.records.models import Case, Document
from genpon.retention.batches import _problem, blocked_reason, load_docs
from genpon.retention.holding import active_holds
from genpon.retention.models import DispositionBatch, DispositionItem
from genpon.retention.rules import Disposition
from genpon.retention.service import require_officer, require_reader
from sqlmodel import Session, select

# --- the steps after approval ----------------------------------------------------------------


# The steps after approval: the batch's action and the statuses each step may start (or
# resume) from. The service functions below check them; screens ask ``available_steps``.
STEPS: dict[str, tuple[str, tuple[str, ...]]] = {
    "execute": ("destroy", ("approved", "executing")),
    "export": ("transfer", ("approved",)),
    "acknowledge": ("transfer", ("exported", "acknowledging")),
}


def available_steps(actor: Actor, batch: DispositionBatch) -> frozenset[str]:
    """What ``actor`` may do with ``batch`` now: ``decide`` (a records officer other than its
    creator, while it is pending) and the ``STEPS`` whose start status it is in. The same rules
    the service functions enforce, so a screen offers only what will be accepted."""
    try:
        require_officer(actor)
    except Forbidden:
        return frozenset()
    out = {
        name
        for name, (action, statuses) in STEPS.items()
        if batch.action == action and batch.status in statuses
    }
    if batch.status == "pending" and batch.created_by != actor.login:
        out.add("decide")
    return frozenset(out)


def check_state(batch: DispositionBatch, action: str, from_statuses: tuple[str, ...]) -> None:
    """The batch is of ``action`` and in one of ``from_statuses``, else a Conflict saying why."""
    if batch.action != action:
        raise Conflict(
            "wrong_batch_action",
            f"この伺いは{Disposition(batch.action).label}の伺いです。",
            {"action": batch.action},
        )
    if batch.status not in from_statuses:
        code, msg = {
            "pending": ("batch_not_approved", "この伺いはまだ承認されていません。"),
            "rejected": ("batch_rejected", "この伺いは却下されています。"),
            "executed": ("batch_already_executed", "この伺いは実行済みです。"),
            "transferred": ("batch_already_transferred", "この伺いは移管済みです。"),
            "exported": ("batch_already_exported", "移管パッケージは作成済みです。"),
            "approved": ("batch_not_exported", "移管パッケージがまだ作成されていません。"),
        }.get(batch.status, ("batch_state_conflict", "この伺いは実行できない状態です。"))
        raise Conflict(code, msg, {"status": batch.status})


# --- what a step will do (the confirmation screens) -----------------------------------------


@dataclass
class StepPreview:
    """What running ``step`` on a batch now would dispose of, and what would stop it."""

    batch: DispositionBatch
    step: str  # execute | export | acknowledge
    documents: list[Document]  # approved, not yet processed
    cases: list[tuple[str, str, int]]  # (case ID, title, documents of the batch in it)
    holds: list[tuple[Any, list[int]]]  # (active hold, the batch's documents it covers)
    blocked: list[dict[str, Any]]  # document_id, title, reason, message

    @property
    def ready(self) -> list[Document]:
        """The documents the step processes when blocked ones are left out (skip_blocked)."""
        out = {b["document_id"] for b in self.blocked}
        return [d for d in self.documents if d.id not in out]


def preview_step(
    session: Session,
    actor: Actor,
    batch_id: int,
    step: str,
    *,
    timezone: str,
    as_of: date | None = None,
) -> StepPreview:
    """The same re-check the step runs (:mod:`.disposal`), without changing anything: every
    approved pending item, the cases it belongs to, the holds covering it and why an item would
    stop the step (409 ``items_blocked``, or left out with ``skip_blocked``)."""
    require_reader(actor)
    if step not in STEPS:
        raise InvalidInput("invalid_step", "実行できる操作は execute, export, acknowledge です。")
    batch = session.get(DispositionBatch, batch_id)
    if batch is None:
        raise NotFound("batch_not_found", "伺いが見つかりません。", {"batch_id": batch_id})
    check_state(batch, *STEPS[step])
    day = as_of or local_date(utcnow(), timezone)
    ids = list(
        session.exec(
            select(DispositionItem.document_id).where(
                DispositionItem.batch_id == batch_id,
                DispositionItem.decision == "approved",
                DispositionItem.status == "pending",
            )
        ).all()
    )
    docs = load_docs(session, ids)
    by_id = {d.id: d for d in docs}
    holds = active_holds(session, docs)
    blocked = []
    for doc_id in sorted(ids):
        doc = by_id.get(doc_id)
        why = blocked_reason(session, doc, day, batch.action, holds)
        if why is not None:
            blocked.append({**_problem(doc_id, doc, why), "title": doc.title if doc else ""})
    counts: dict[int, int] = {}
    for d in docs:
        if d.case_pk:
            counts[d.case_pk] = counts.get(d.case_pk, 0) + 1
    cases = []
    for pk, n in sorted(counts.items()):
        case = session.get(Case, pk)
        if case is not None:
            cases.append((case.case_id, case.title, n))
    covered: dict[int, tuple[Any, list[int]]] = {}
    for doc_id, hs in holds.items():
        for h in hs:
            covered.setdefault(h.id or 0, (h, []))[1].append(doc_id)
    return StepPreview(
        batch=batch,
        step=step,
        documents=docs,
        cases=cases,
        holds=[covered[k] for k in sorted(covered)],
        blocked=blocked,
    )
