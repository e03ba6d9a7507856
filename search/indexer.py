"""The indexer: applies the outbox to the search index; rebuilds the index from the database.

The database is the source of truth. Every document change adds an ``IndexOutbox(sha256,
reason)`` row in its own transaction; :func:`drain` takes rows in id order, makes sure the
content's text was extracted once (``BlobText``, zlib-compressed), rebuilds the index entries of
that content from the documents that are live *now* (so a destroyed or transferred document
disappears) and deletes the rows only after the index committed. A crash anywhere repeats
work, never loses it: applying a content hash twice gives the same index.

Extraction runs outside any database transaction (SQLite serializes writers), in a bounded
child process (see :mod:`search.extract`).

:func:`rebuild` (``genpon search reindex``) walks every live content hash in order and stores
its cursor in ``search_state``, so an interrupted rebuild resumes where it stopped.
:class:`IndexWorker` is the loop of `genpon worker` (and the thread `genpon serve` runs itself
on SQLite, the embedded default).

Any number of workers share one outbox (issue 14). A worker *claims* a batch
(:mod:`search.leases`): it sets ``claimed_by`` and ``lease_until`` on rows nobody holds (or
whose lease expired: that worker died) with ``SELECT … FOR UPDATE SKIP LOCKED`` on PostgreSQL,
so two workers never take the same row at once; ``LeaseKeeper`` renews the lease while the
batch runs, so the lease is short and a killed worker's rows are free again within one lease.
The write transaction then locks its rows again and keeps only those still claimed by it — a
worker whose lease expired and was taken over writes nothing, so it cannot replace a newer
entry — and, on PostgreSQL, takes a transaction advisory lock per content hash, so two rows of
the same content are applied one after the other, each from the state committed before it.
The rows are deleted in the same transaction as the index write (PostgreSQL backend),
so an item is never lost and never applied twice at once.
"""

from __future__ import annotations

import logging
import threading
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from genpon.core.clock import fiscal_year_of, utcnow
from genpon.records.access import folder_acl_tokens
from genpon.records.models import (
    Blob,
    BlobText,
    BlobTextChunk,
    Case,
    Document,
    DocumentClass,
    Folder,
    IndexOutbox,
    IndexReason,
    Organization,
    TextStatus,
)
from genpon.search import word_boxes
from genpon.search.analyzer import index_stream, index_tokens
from genpon.search.backends import make_backend
from genpon.search.backends.base import IndexEntry, SearchBackend, prior_filter_keys
from genpon.search.extract import Extraction, extract
from genpon.search.leases import LeaseKeeper, claim, release, worker_id
from genpon.search.models import SearchState
from genpon.search.snippets import Directory, store_chunks
from sqlalchemy import delete, func, inspect, text
from sqlmodel import Session, col, select

if TYPE_CHECKING:
    from genpon.storage.context import AppContext

log = logging.getLogger("genpon.search")

BATCH = 100
CURSOR_KEY = "reindex_cursor"
_drain_locks: dict[int, threading.Lock] = {}
_locks_guard = threading.Lock()


def _lock_for(backend: SearchBackend) -> threading.Lock:
    with _locks_guard:
        return _drain_locks.setdefault(id(backend), threading.Lock())


# --- text ---------------------------------------------------------------------------------------


def stored_text(row: BlobText | None) -> str | None:
    if row is None or row.text_z is None:
        return None
    return zlib.decompress(row.text_z).decode("utf-8")


def text_of(session: Session, sha256: str) -> str | None:
    return stored_text(session.get(BlobText, sha256))


def _extract_blob(
    ctx: AppContext, sha256: str, mime: str, *, force_ocr: bool = False
) -> Extraction:
    try:
        with ctx.store.as_file(sha256, ctx.settings.spool_dir) as path:
            return extract(path, mime, settings=ctx.settings, force_ocr=force_ocr)
    except FileNotFoundError:
        return Extraction(None, "failed", "content missing from the store", None)


def _save_text(
    session: Session, sha256: str, ex: Extraction, row: BlobText | None = None
) -> BlobText:
    """Store ``ex`` as the text of ``sha256``: into ``row`` when the caller already read it,
    else into the row read here or a new one."""
    row = row or session.get(BlobText, sha256) or BlobText(sha256=sha256)
    is_new = inspect(row).transient  # (then it has no chunks to delete)
    row.status = TextStatus(ex.status)
    row.extractor = ex.extractor
    row.reason = (ex.reason or None) and ex.reason[:500]
    row.text_z = zlib.compress(ex.text.encode("utf-8"), 6) if ex.text else None
    row.chars = len(ex.text or "")
    row.details = ex.details
    row.words_z = word_boxes.encode({int(k): v for k, v in (ex.words or {}).items()})
    row.extracted_at = utcnow()
    session.add(row)
    session.flush()  # (the chunks refer to the row)
    row.chunk_dir = store_chunks(session, sha256, ex.text, replace=not is_new)
    return row


def reextract(ctx: AppContext, sha256: str, *, force_ocr: bool = False) -> BlobText | None:
    """Extract a stored content's text again (``genpon ocr``: with OCR whatever
    ``ocr_enabled`` says), store it and queue the content for the index; None when the content
    is not stored. The blob itself is only read."""
    with Session(ctx.engine) as s:
        blob = s.get(Blob, sha256)
        mime = blob.mime_type if blob is not None and blob.state == "stored" else None
        s.rollback()
    if mime is None:
        return None
    ex = _extract_blob(ctx, sha256, mime, force_ocr=force_ocr)
    with Session(ctx.engine, expire_on_commit=False) as s:
        row = _save_text(s, sha256, ex)
        s.add(IndexOutbox(sha256=sha256, reason=IndexReason.OCR))
        s.commit()
    return row


# --- entries ------------------------------------------------------------------------------------


def _placements(session: Session, sha256: str) -> list[Document]:
    docs = session.exec(
        select(Document).where(Document.sha256 == sha256, Document.state == "live")
    ).all()
    return sorted(docs, key=lambda d: (d.original_id is not None, d.id or 0))


def build_entries(
    session: Session, sha256: str, text: str | None, docs: list[Document] | None = None
) -> list[IndexEntry]:
    """The entries of content ``sha256``: one per live placement (``docs`` when the caller
    already read them, in :func:`_placements` order)."""
    docs = _placements(session, sha256) if docs is None else docs
    if not docs:
        return []
    body, tri = index_stream(text) if text else ([], [])
    entries: list[IndexEntry] = []
    prior: list[str] = []
    prior_values: list[tuple[dict[str, Any], list[str]]] = []
    for n, d in enumerate(docs):
        folder = session.get(Folder, d.folder_id)
        if folder is None:
            continue
        case = session.get(Case, folder.case_pk) if folder.case_pk else None
        org = session.get(Organization, d.organization_id)
        cls = session.get(DocumentClass, d.document_class_id) if d.document_class_id else None
        acl = folder_acl_tokens(folder, case)
        meta = " ".join(
            x for x in (case.case_id if case else "", case.title if case else "", folder.name) if x
        )
        values: dict[str, Any] = {
            "case_id": case.case_id if case else "",
            "organization": org.code if org else "",
            "doc_class": cls.code if cls else "",
            "folder_kind": folder.kind,
            "status": d.status,
            "fiscal_year": case.fiscal_year if case else fiscal_year_of(d.doc_date),
        }
        entries.append(
            IndexEntry(
                document_id=d.id or 0,
                sha256=sha256,
                body_tokens=body,
                body_trigrams=tri,
                title_tokens=index_tokens(d.title),
                filename_tokens=index_tokens(d.filename),
                meta_tokens=index_tokens(meta),
                acl=acl,
                prior_acl=sorted(set(prior)),
                is_first=n == 0,
                is_original=d.original_id is None,
                **values,
                doc_date=d.doc_date,
                prior_keys=prior_filter_keys(values, prior_values),
            )
        )
        prior += acl
        prior_values.append((values, acl))
    return entries


# --- applying work ------------------------------------------------------------------------------


def _need_extraction(ctx: AppContext, shas: Iterable[str]) -> dict[str, str]:
    """Content hashes (with their type) whose text was never extracted and that are stored."""
    with Session(ctx.engine) as s:
        loaded = _prefetch(s, list(shas), placements=False)
        todo: dict[str, str] = {}
        for sha in shas:
            bt = loaded.texts.get(sha)
            if bt is not None and bt.status != "pending":
                continue
            blob = loaded.blobs.get(sha)
            if blob is not None and blob.state == "stored":
                todo[sha] = blob.mime_type
        s.rollback()
    return todo


@dataclass
class _Loaded:
    """The rows a batch reads, loaded by :func:`_prefetch` and held here. The session's
    identity map holds its objects only weakly: rows nobody references are dropped at once,
    and ``session.get`` would read them again one by one (and a row that does not exist, such
    as the text of a content not extracted yet, is read again at every ``get``)."""

    blobs: dict[str, Blob] = field(default_factory=dict)
    texts: dict[str, BlobText] = field(default_factory=dict)
    docs: dict[str, list[Document]] = field(default_factory=dict)  # in _placements order
    rows: list[Any] = field(default_factory=list)  # folders, cases, ... (for session.get)


def _prefetch(s: Session, shas: list[str], *, placements: bool = True) -> _Loaded:
    """Load the rows a batch reads per content in a few ``IN`` queries: the blobs, their
    texts and, with ``placements``, the live documents with their folders, cases,
    organizations and classes (which ``session.get`` then finds in the identity map while
    the returned :class:`_Loaded` is held)."""
    out = _Loaded()
    if not shas:
        return out
    out.blobs = {b.sha256: b for b in s.exec(select(Blob).where(col(Blob.sha256).in_(shas)))}
    out.texts = {
        t.sha256: t for t in s.exec(select(BlobText).where(col(BlobText.sha256).in_(shas)))
    }
    if not placements:
        return out
    docs = s.exec(
        select(Document).where(col(Document.sha256).in_(shas), Document.state == "live")
    ).all()
    for d in sorted(docs, key=lambda d: (d.original_id is not None, d.id or 0)):
        out.docs.setdefault(d.sha256, []).append(d)
    folders = s.exec(select(Folder).where(col(Folder.id).in_({d.folder_id for d in docs}))).all()
    out.rows += folders
    for model, ids in (
        (Case, {f.case_pk for f in folders if f.case_pk}),
        (Organization, {d.organization_id for d in docs}),
        (DocumentClass, {d.document_class_id for d in docs if d.document_class_id}),
    ):
        if ids:
            out.rows += s.exec(select(model).where(col(model.id).in_(ids))).all()
    return out


class _Entries(Mapping[str, list[IndexEntry]]):
    """A batch's entries by content hash, each content's built (:func:`build_entries`) when
    first asked for. The PostgreSQL backend sends each content's rows as soon as they are
    built (pipeline mode), so PostgreSQL inserts one content (mostly RUM index work) while
    this process tokenizes the next, instead of waiting for all of them first."""

    def __init__(self, session: Session) -> None:
        self._session = session
        self._todo: dict[str, tuple[str | None, list[Document]]] = {}
        self._built: dict[str, list[IndexEntry]] = {}

    def add(self, sha256: str, text: str | None, docs: list[Document]) -> None:
        self._todo[sha256] = (text, docs)

    def __getitem__(self, sha256: str) -> list[IndexEntry]:
        got = self._built.get(sha256)
        if got is None:
            text, docs = self._todo[sha256]
            got = self._built[sha256] = build_entries(self._session, sha256, text, docs)
        return got

    def __iter__(self) -> Iterator[str]:
        return iter(self._todo)

    def __len__(self) -> int:
        return len(self._todo)


def _lock_hashes(s: Session, shas: Iterable[str]) -> None:
    """PostgreSQL: one transaction advisory lock per content hash, in order (no deadlock), all
    in one statement (a round trip per content cost more than the lock when cores are busy);
    the sorted subquery is not flattened, so the locks are taken in its order."""
    if s.get_bind().dialect.name != "postgresql":
        return
    s.execute(
        text(
            "SELECT pg_advisory_xact_lock(hashtextextended(k, 0)) FROM "
            "(SELECT k FROM unnest(CAST(:ks AS text[])) AS k ORDER BY k) AS o"
        ),
        {"ks": sorted(set(shas))},
    )


def _still_owned(s: Session, outbox_ids: list[int], owner: str) -> list[tuple[int, str]]:
    """The rows of ``outbox_ids`` still claimed by ``owner``, locked until commit."""
    rows = s.exec(
        select(IndexOutbox.id, IndexOutbox.sha256)
        .where(col(IndexOutbox.id).in_(outbox_ids), col(IndexOutbox.claimed_by) == owner)
        .with_for_update()
    ).all()
    return [(int(i or 0), sha) for i, sha in rows]


def process(
    ctx: AppContext,
    backend: SearchBackend,
    shas: list[str],
    outbox_ids: list[int] | None = None,
    *,
    owner: str | None = None,
) -> int:
    """Extract (once), rebuild entries of ``shas`` and apply them; then drop ``outbox_ids``.

    With an ``owner`` (a claimed batch), only rows still claimed by it are applied and
    dropped; returns how many outbox rows were applied (or ``len(shas)`` without rows)."""
    extracted = {
        sha: _extract_blob(ctx, sha, mime) for sha, mime in _need_extraction(ctx, shas).items()
    }
    with Session(ctx.engine, expire_on_commit=False) as s:
        ids = list(outbox_ids or [])
        if owner is not None and ids:
            owned = _still_owned(s, ids, owner)
            if len(owned) < len(ids):
                log.warning(
                    "index lease lost on %d of %d outbox rows; another worker applies them",
                    len(ids) - len(owned),
                    len(ids),
                )
            ids = [i for i, _ in owned]
            keep = {sha for _, sha in owned}
            shas = [sha for sha in shas if sha in keep]
            if not ids:
                s.rollback()
                return 0
        _lock_hashes(s, shas)
        # (after the locks: what it reads is what this batch applies)
        loaded = _prefetch(s, shas)
        batch = _Entries(s)
        for sha in shas:
            blob = loaded.blobs.get(sha)
            row = loaded.texts.get(sha)
            if sha in extracted and blob is not None:
                row = _save_text(s, sha, extracted[sha], row or BlobText(sha256=sha))
            if blob is not None and blob.state != "stored" and row is not None:
                s.execute(delete(BlobTextChunk).where(col(BlobTextChunk.sha256) == sha))
                s.delete(row)  # content destroyed: its text goes too
                row = None
            text = stored_text(row)
            if row is not None and text and not Directory.current(row.chunk_dir):  # before chunks
                row.chunk_dir = store_chunks(s, sha, text)
                s.add(row)
            batch.add(sha, text, loaded.docs.get(sha, []))
        s.flush()
        try:
            backend.apply(s, batch)
        except BaseException:
            s.rollback()
            raise
        if ids:
            s.execute(delete(IndexOutbox).where(col(IndexOutbox.id).in_(ids)))
        s.commit()
    return len(ids) if outbox_ids else len(shas)


def _rebuild_if_needed(ctx: AppContext, backend: SearchBackend) -> int:
    """Rebuild the index first if it asks for it; returns the outbox rows the rebuild
    settled."""
    with Session(ctx.engine) as s:
        rebuild_first = backend.needs_rebuild(s)
        s.rollback()
    if not rebuild_first:
        return 0
    if ctx.engine.dialect.name != "postgresql":
        return _rebuild_locked(ctx, backend, fresh=False)[1]
    with ctx.engine.connect() as conn:  # one rebuilder at a time across workers
        got = conn.execute(text("SELECT pg_try_advisory_lock(7246011)")).scalar()
        conn.commit()
        if not got:
            return 0  # another worker rebuilds; draining meanwhile is harmless
        try:
            with Session(ctx.engine) as s:
                still = backend.needs_rebuild(s)
                s.rollback()
            return _rebuild_locked(ctx, backend, fresh=False)[1] if still else 0
        finally:
            conn.execute(text("SELECT pg_advisory_unlock(7246011)"))
            conn.commit()


def drain(
    ctx: AppContext,
    limit: int | None = None,
    *,
    owner: str | None = None,
    backend: SearchBackend | None = None,
    stop: threading.Event | None = None,
) -> int:
    """Claim and apply pending outbox rows (at most ``limit``) until none is free or ``stop``
    is set (the current batch is always finished); returns how many rows were applied, or
    settled by the rebuild of the index it began with."""
    backend = backend or make_backend(ctx)
    owner = owner or worker_id()
    with _lock_for(backend):
        done = _rebuild_if_needed(ctx, backend)
        while limit is None or done < limit:
            if stop is not None and stop.is_set():
                break
            size = BATCH if limit is None else min(BATCH, limit - done)
            work = claim(ctx, owner, size)
            if not work:
                break
            ids = [i for i, _ in work]
            shas = list(dict.fromkeys(sha for _, sha in work))
            try:
                with LeaseKeeper(ctx, owner, ids):
                    done += process(ctx, backend, shas, ids, owner=owner)
            except BaseException:
                release(ctx, owner, ids)
                raise
    return done


def pending(ctx: AppContext) -> int:
    with Session(ctx.engine) as s:
        n = s.exec(select(func.count()).select_from(IndexOutbox)).one()
        s.rollback()
    return int(n)


def _get_state(s: Session, key: str) -> str | None:
    row = s.get(SearchState, key)
    return row.value if row else None


def _set_state(s: Session, key: str, value: str | None) -> None:
    row = s.get(SearchState, key)
    if value is None:
        if row is not None:
            s.delete(row)
        return
    row = row or SearchState(key=key)
    row.value, row.updated_at = value, utcnow()
    s.add(row)


def live_hashes_after(ctx: AppContext, cursor: str, size: int) -> list[str]:
    with Session(ctx.engine) as s:
        shas = s.exec(
            select(Document.sha256)
            .where(Document.state == "live", Document.sha256 > cursor)
            .group_by(Document.sha256)
            .order_by(Document.sha256)
            .limit(size)
        ).all()
        s.rollback()
    return list(shas)


def count_live_hashes(ctx: AppContext) -> int:
    with Session(ctx.engine) as s:
        n = s.exec(
            select(func.count(func.distinct(Document.sha256))).where(Document.state == "live")
        ).one()
        s.rollback()
    return int(n)


def rebuild(
    ctx: AppContext, *, fresh: bool = False, progress: Callable[[int], None] | None = None
) -> int:
    """Re-index every live content from the database; resumes an interrupted run unless
    ``fresh``. Returns the number of content hashes indexed in this run."""
    backend = make_backend(ctx)
    with _lock_for(backend):
        return _rebuild_locked(ctx, backend, fresh=fresh, progress=progress)[0]


def _rebuild_locked(
    ctx: AppContext,
    backend: SearchBackend,
    *,
    fresh: bool,
    progress: Callable[[int], None] | None = None,
) -> tuple[int, int]:
    """(content hashes indexed, outbox rows settled by the rebuild)."""
    covered: list[int] = []  # outbox rows the rebuild makes needless (a run started here)
    with Session(ctx.engine) as s:
        cursor = None if fresh else _get_state(s, CURSOR_KEY)
        if cursor is None:
            # committed before the rebuild reads anything, so their changes are in what it reads
            covered = [int(i) for i in s.exec(select(IndexOutbox.id)).all() if i is not None]
            backend.clear(s)
            _set_state(s, CURSOR_KEY, "")
            cursor = ""
        s.commit()
    done = 0
    while True:
        shas = live_hashes_after(ctx, cursor, BATCH)
        if not shas:
            break
        process(ctx, backend, shas)
        cursor = shas[-1]
        with Session(ctx.engine) as s:
            _set_state(s, CURSOR_KEY, cursor)
            s.commit()
        done += len(shas)
        if progress:
            progress(len(shas))
    with Session(ctx.engine) as s:
        backend.mark_built(s)
        _set_state(s, CURSOR_KEY, None)
        for start in range(0, len(covered), 1000):  # not applied a second time
            chunk = covered[start : start + 1000]
            s.execute(delete(IndexOutbox).where(col(IndexOutbox.id).in_(chunk)))
        s.commit()
    return done, len(covered)


class IndexWorker:
    """Background thread draining the outbox every ``interval`` seconds until stopped."""

    def __init__(self, ctx: AppContext, interval: float = 1.0, owner: str | None = None) -> None:
        self.ctx = ctx
        self.interval = interval
        self.owner = owner or worker_id()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="genpon-indexer", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Ask the loop to stop after its current batch and wait for it."""
        self._stop.set()
        self._thread.join(timeout)

    def step(self) -> int:
        """One round: drain what is free now; failures are logged, the rows are released."""
        try:
            return drain(self.ctx, limit=BATCH * 10, owner=self.owner, stop=self._stop)
        except Exception:  # keep serving; the rows stay in the outbox for the next round
            log.exception("indexing failed; will retry")
            self._stop.wait(self.interval * 5)
            return 0

    def _run(self) -> None:
        while not self._stop.is_set():
            if self.step() == 0:
                self._stop.wait(self.interval)
