"""Bulk deposit (the legacy import, :mod:`genpon.migrate`): many placements with a few
statements per batch, under the same invariants as :func:`.deposit.deposit`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from genpon.core.clock import local_date, utcnow
from genpon.core.errors import Conflict, GenponError, InvalidInput, NotFound, UnsupportedType
from genpon.records import audit
from genpon.records.access import Actor, can_read_folder, require_write
from genpon.records.audit import AuditAction
from genpon.records.documents.common import (
    _title_from,
    clean_filename,
)
from genpon.records.documents.originals import current_originals
from genpon.records.models import (
    Blob,
    Case,
    Document,
    DocumentVersion,
    Folder,
    IndexOutbox,
)
from genpon.records.sniff import type_allowed
from genpon.storage.base import BlobStore, StagedBlob
from sqlalchemy import insert as sa_insert
from sqlalchemy import update as sa_update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select


@dataclass
class BatchItem:
    """One placement for :func:`deposit_batch`.

    With ``staged`` the content comes with the item (a deposit, like :func:`deposit`); without
    it the item is a copy (写し) of the content's live original, which must exist already or be
    deposited earlier in the same batch."""

    sha256: str
    size: int
    mime_type: str  # as already sniffed by the caller
    folder_id: int
    filename: str
    title: str | None = None
    doc_date: date | None = None
    provenance: dict[str, Any] | None = None
    staged: StagedBlob | None = None


@dataclass
class Placed:
    """A document row written by :func:`deposit_batch` (the columns its callers read; the rows
    are inserted with Core statements, not built as ORM objects, for speed)."""

    id: int
    sha256: str
    size: int
    filename: str
    mime_type: str
    folder_id: int
    case_pk: int | None
    original_id: int | None
    doc_date: date


@dataclass
class BatchOutcome:
    item: BatchItem
    document: Placed | None = None  # None: refused, see ``error``
    error: GenponError | None = None
    with_content: bool = False  # the item brought its content (a deposit, not a copy)

    @property
    def is_copy(self) -> bool:
        return self.document is not None and self.document.original_id is not None


def deposit_batch(
    session: Session,
    store: BlobStore,
    actor: Actor,
    items: list[BatchItem],
    *,
    allowed_types: tuple[str, ...],
    timezone: str,
) -> list[BatchOutcome]:
    """Deposit many placements in the caller's transaction with a few statements per batch.

    Same invariants as :func:`deposit`: each staged blob is stored durably (``put_staged``)
    before its rows are added; exactly one live original per content (the first staged item of
    a content nobody holds yet; the partial unique index decides races with other writers, the
    losers become copies); copies point to the original; every document gets its version row
    and its audit event (one head lock for the batch) and every content one index outbox row.
    Items are checked one by one: a refused item gets ``error`` and adds nothing, the others
    go on. Approvals, corrections and idempotency keys are not supported here."""
    outcomes = [BatchOutcome(it) for it in items]
    if not items:
        return outcomes
    try:
        folders, cases = _targets(session, items)
        ok = _check_items(outcomes, folders, cases, actor, allowed_types)
        # Durable blobs first (already stored blobs only lose their staged name), then rows.
        new_blobs = _store_blobs(store, ok)
        if new_blobs:
            _insert_blobs(session, list(new_blobs.values()))
        shas = {out.item.sha256 for out in ok}
        _place_batch(session, ok, new_blobs, shas, folders, cases, actor, timezone)
        placed = [out for out in ok if out.document is not None]
        _batch_rows(session, actor, placed, folders, cases)
        session.flush()
        return outcomes
    finally:
        for it in items:
            if it.staged is not None:
                store.discard(it.staged)  # refused items: their staged file goes


def _targets(
    session: Session, items: list[BatchItem]
) -> tuple[dict[int | None, Folder], dict[int | None, Case]]:
    """The folders the items go to, and their cases."""
    folders: dict[int | None, Folder] = {
        f.id: f
        for f in session.exec(
            select(Folder).where(col(Folder.id).in_({it.folder_id for it in items}))
        ).all()
    }
    case_pks = {f.case_pk for f in folders.values() if f.case_pk}
    cases: dict[int | None, Case] = (
        {c.id: c for c in session.exec(select(Case).where(col(Case.id).in_(case_pks))).all()}
        if case_pks
        else {}
    )
    return folders, cases


def _check_items(
    outcomes: list[BatchOutcome],
    folders: dict[int | None, Folder],
    cases: dict[int | None, Case],
    actor: Actor,
    allowed_types: tuple[str, ...],
) -> list[BatchOutcome]:
    """The outcomes whose item may be deposited; the others get their ``error``."""
    ok: list[BatchOutcome] = []
    for out in outcomes:
        it = out.item
        try:
            folder = folders.get(it.folder_id)
            case = cases.get(folder.case_pk) if folder and folder.case_pk else None
            if folder is None or not can_read_folder(actor, folder, case):
                raise NotFound("folder_not_found", "フォルダが見つかりません。")
            require_write(actor, folder, case)
            if it.size <= 0:
                raise InvalidInput("empty_file", "空のファイルは登録できません。")
            if not type_allowed(it.mime_type, allowed_types):
                raise UnsupportedType(
                    "type_not_allowed",
                    f"この種類のファイルは登録できません: {it.mime_type}",
                    {"detected_type": it.mime_type},
                )
            if it.staged is not None and (
                it.staged.sha256 != it.sha256 or it.staged.size != it.size
            ):
                raise InvalidInput("content_mismatch", "内容のハッシュが一致しません。")
            it.filename = clean_filename(it.filename)
            it.title = _title_from(it.filename, it.title)
        except GenponError as exc:
            out.error = exc
            continue
        ok.append(out)
    return ok


def _store_blobs(store: BlobStore, ok: list[BatchOutcome]) -> dict[str, BatchItem]:
    """Store every staged item durably; the first item of each content, by content."""
    new_blobs: dict[str, BatchItem] = {}
    for out in ok:
        it = out.item
        if it.staged is not None:
            store.put_staged(it.staged)
            it.staged = None
            out.with_content = True
            new_blobs.setdefault(it.sha256, it)
    return new_blobs


def _insert_blobs(session: Session, its: list[BatchItem]) -> None:
    dialect = session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    now = utcnow()
    session.execute(
        insert(Blob.__table__).on_conflict_do_nothing(index_elements=["sha256"]),  # type: ignore[attr-defined]
        [
            {
                "sha256": it.sha256,
                "size": it.size,
                "mime_type": it.mime_type,
                "state": "stored",
                "stored_at": now,
            }
            for it in its
        ],
    )
    # Contents destroyed earlier and deposited again are stored once more.
    session.execute(
        sa_update(Blob.__table__)  # type: ignore[attr-defined]
        .where(Blob.__table__.c.sha256.in_([it.sha256 for it in its]))  # type: ignore[attr-defined]
        .where(Blob.__table__.c.state != "stored")  # type: ignore[attr-defined]
        .values(state="stored", deleted_at=None)
    )


def _new_row(
    it: BatchItem,
    folder: Folder,
    case: Case | None,
    actor: Actor,
    doc_date: date,
    original_id: int | None,
    now: datetime,
) -> dict[str, Any]:
    """The ``document`` row of a batch placement (the same values :func:`deposit` sets)."""
    return {
        "folder_id": folder.id or 0,
        "case_pk": folder.case_pk,
        "organization_id": folder.organization_id,
        "document_class_id": case.document_class_id if case else None,
        "title": it.title or it.filename,
        "filename": it.filename,
        "sha256": it.sha256,
        "size": it.size,
        "mime_type": it.mime_type,
        "status": "working",
        "state": "live",
        "original_id": original_id,
        "version": 1,
        "doc_date": doc_date,
        "provenance": it.provenance,
        "created_by": actor.user_id or None,
        "created_at": now,
        "updated_at": now,
    }


def _insert_rows(session: Session, outs: list[BatchOutcome], rows: list[dict[str, Any]]) -> None:
    """Insert ``rows`` (one per outcome, same order) in one statement; each outcome gets its
    :class:`Placed` with the new id."""
    if not rows:
        return
    table = Document.__table__  # type: ignore[attr-defined]
    ids = (
        session.execute(sa_insert(table).returning(table.c.id, sort_by_parameter_order=True), rows)
        .scalars()
        .all()
    )
    for out, row, new_id in zip(outs, rows, ids, strict=True):
        out.document = Placed(
            id=new_id,
            sha256=row["sha256"],
            size=row["size"],
            filename=row["filename"],
            mime_type=row["mime_type"],
            folder_id=row["folder_id"],
            case_pk=row["case_pk"],
            original_id=row["original_id"],
            doc_date=row["doc_date"],
        )


def _place_batch(
    session: Session,
    ok: list[BatchOutcome],
    new_blobs: dict[str, BatchItem],
    shas: set[str],
    folders: dict[int | None, Folder],
    cases: dict[int | None, Case],
    actor: Actor,
    timezone: str,
) -> None:
    """Originals of new contents in one statement (in a savepoint: a lost race re-reads the
    originals and retries), then every other placement as a copy in a second one."""
    now = utcnow()
    today = local_date(now, timezone)
    originals: dict[str, Document | Placed] = {}
    firsts: dict[str, BatchOutcome] = {}
    for _attempt in range(3):
        originals = dict(current_originals(session, shas))
        firsts = {}
        for out in ok:
            sha = out.item.sha256
            if sha not in originals and sha in new_blobs and sha not in firsts:
                firsts[sha] = out
        rows = []
        for out in firsts.values():
            f = folders[out.item.folder_id]
            rows.append(
                _new_row(
                    out.item, f, cases.get(f.case_pk), actor, out.item.doc_date or today, None, now
                )
            )
        try:
            with session.begin_nested():
                _insert_rows(session, list(firsts.values()), rows)
            break
        except IntegrityError:
            for out in firsts.values():
                out.document = None
            continue
    else:  # pragma: no cover
        raise Conflict("deposit_contention", "同時登録が競合しました。もう一度お試しください。")
    for sha, out in firsts.items():
        assert out.document is not None
        originals[sha] = out.document
    copies: list[BatchOutcome] = []
    rows = []
    for out in ok:
        if out.document is not None:
            continue
        it = out.item
        original = originals.get(it.sha256)
        if original is None:
            out.error = NotFound(
                "content_not_held", "この内容の文書は保管されていません。", {"sha256": it.sha256}
            )
            continue
        f = folders[it.folder_id]
        rows.append(
            _new_row(
                it,
                f,
                cases.get(f.case_pk),
                actor,
                it.doc_date or original.doc_date,
                original.id,
                now,
            )
        )
        copies.append(out)
    _insert_rows(session, copies, rows)


def _batch_rows(
    session: Session,
    actor: Actor,
    placed: list[BatchOutcome],
    folders: dict[int | None, Folder],
    cases: dict[int | None, Case],
) -> None:
    """Version rows, audit events (as :func:`deposit` and :func:`copy_to_folder` write them)
    and one index outbox row per content, each kind with one executemany."""
    if not placed:
        return
    now = utcnow()
    originals = _sources(session, placed, cases)
    versions: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    for out in placed:
        doc = out.document
        assert doc is not None
        versions.append(
            {
                "document_id": doc.id,
                "version": 1,
                "sha256": doc.sha256,
                "size": doc.size,
                "filename": doc.filename,
                "mime_type": doc.mime_type,
                "created_by": actor.user_id or None,
                "created_at": now,
            }
        )
        events.extend(_events_of(out, doc, originals, cases))
    session.execute(sa_insert(DocumentVersion.__table__), versions)  # type: ignore[attr-defined]
    audit.record_many(session, actor=actor.login, events=events)
    reasons: dict[str, str] = {}
    for out in placed:
        assert out.document is not None
        reasons.setdefault(out.document.sha256, "deposit" if out.with_content else "copy")
    session.execute(
        sa_insert(IndexOutbox.__table__),  # type: ignore[attr-defined]
        [{"sha256": sha, "reason": r, "created_at": now} for sha, r in reasons.items()],
    )


def _sources(
    session: Session, placed: list[BatchOutcome], cases: dict[int | None, Case]
) -> dict[int | None, Document | Placed]:
    """The originals the placements point to, by id (those of this batch and those already
    held), and their cases added to ``cases``."""
    originals: dict[int | None, Document | Placed] = {
        out.document.id: out.document
        for out in placed
        if out.document is not None and out.document.original_id is None
    }
    missing = {
        out.document.original_id
        for out in placed
        if out.document is not None
        and out.document.original_id is not None
        and out.document.original_id not in originals
    }
    if missing:
        for d in session.exec(select(Document).where(col(Document.id).in_(missing))).all():
            originals[d.id] = d
    src_case_pks = {d.case_pk for d in originals.values() if d.case_pk} - set(cases)
    if src_case_pks:
        for c in session.exec(select(Case).where(col(Case.id).in_(src_case_pks))).all():
            cases[c.id] = c
    return originals


def _events_of(
    out: BatchOutcome,
    doc: Placed,
    originals: dict[int | None, Document | Placed],
    cases: dict[int | None, Case],
) -> list[dict[str, Any]]:
    """The audit events of one placement: deposited, or copied (and copy_made on the source's
    case when it is another case)."""
    case = cases.get(doc.case_pk) if doc.case_pk else None
    case_id = case.case_id if case else None
    if out.with_content:
        return [
            {
                "action": AuditAction.DOCUMENT_DEPOSITED,
                "target_type": "document",
                "target_id": doc.id or 0,
                "case_id": case_id,
                "details": {
                    "sha256": doc.sha256,
                    "size": doc.size,
                    "filename": doc.filename,
                    "folder_id": doc.folder_id,
                    "mime_type": doc.mime_type,
                    "is_copy": doc.original_id is not None,
                    "original_id": doc.original_id,
                },
            }
        ]
    original = originals[doc.original_id]
    events: list[dict[str, Any]] = [
        {
            "action": AuditAction.DOCUMENT_COPIED,
            "target_type": "document",
            "target_id": doc.id or 0,
            "case_id": case_id,
            "details": {
                "source_id": original.id,
                "original_id": original.id,
                "folder_id": doc.folder_id,
                "sha256": doc.sha256,
            },
        }
    ]
    src_case = cases.get(original.case_pk) if original.case_pk else None
    if src_case is not None and src_case.case_id != case_id:
        events.append(
            {
                "action": AuditAction.DOCUMENT_COPY_MADE,
                "target_type": "document",
                "target_id": original.id or 0,
                "case_id": src_case.case_id,
                "details": {"copy_id": doc.id, "folder_id": doc.folder_id},
            }
        )
    return events
