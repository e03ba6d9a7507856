"""The import flow (取込): a legacy share into a team or shared folder, resumably.

A run goes through phases, each recorded on ``import_run.phase`` and each entry's progress on
``import_entry.state``, committed in batches, so a run killed at any point (Ctrl-C, kill -9)
continues where it stopped when the same command is run again, with no duplicate documents:

1. ``scan``    walk the tree (:mod:`.walker`); one entry per path, problems recorded as skipped;
2. ``hash``    hash every file in the worker pool, reading it once: a real import copies it on
               the same read into the store's staging directory (named per content and per
               process, no fsync; a background thread syncs the filesystem meanwhile and one
               sync at the end of the phase makes every copy durable);
3. ``text``    (dry run only) extract text and compute a signature once per content;
4. ``deposit`` per content group, choose the original by the configured rule
               (:mod:`.config`), deposit it and place every other path as a copy pointing to
               it (no read, no new blob). Groups go in batches of ``DEPOSIT_BATCH``, one
               transaction each. One batch ahead, the workers sniff each content's type once
               (libmagic, as a deposit does), give the staged copies their store names and
               compute text signatures from them (:func:`_prep_task`); this process creates the
               batch's subfolders at once, writes the documents with
               :func:`documents.deposit_batch`, syncs the filesystem once (the new names) and
               commits the entries' progress with them. A resumed run (another process) finds
               no staged copy of its own and stages the originals again;
5. ``near``    extract what is still missing (a resumed run), then group near-duplicate
               contents (:mod:`.near_dupes`); suggestions only;
6. ``done``    summary, audit event.

A dry run keeps its run state in a throw-away SQLite file and only reads Genpon's database:
nothing in Genpon, the blob store or the source tree changes. The source tree is only ever read.
"""

from __future__ import annotations

import collections
import contextlib
import hashlib
import os
import secrets
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from genpon.core.clock import utcnow
from genpon.core.db import session_scope
from genpon.core.errors import Conflict, GenponError, InvalidInput, NotFound
from genpon.core.settings import Settings
from genpon.migrate import extract_pool, near_dupes, walker
from genpon.migrate.config import DEFAULT_THRESHOLD, check_threshold, parse_rule
from genpon.migrate.models import ImportEntry, ImportRun, NearDupCluster, TextSignature
from genpon.records import audit, documents
from genpon.records.access import Actor, can_read_folder, require_role, require_write
from genpon.records.documents import clean_filename
from genpon.records.folders import clean_name, create_folder, create_folder_paths, folder_path
from genpon.records.models import Blob, BlobText, Case, Document, Folder, Organization
from genpon.records.sniff import sniff, type_allowed
from genpon.storage.base import HEAD_SIZE, STAGING_PREFIX, STAGING_SUFFIX, BlobStore, StagedBlob
from genpon.storage.local import LocalBlobStore
from sqlalchemy import func, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Engine
from sqlmodel import Session, SQLModel, col, create_engine, select

BATCH = 200
HASH_PAGE = 1000  # entries per hash page (two pages in flight)
DEPOSIT_BATCH = 1000  # content groups per deposit transaction (one filesystem sync each)
SMALL_COPY = 1 << 20  # files up to this size are copied from memory after hashing
PREP_CHUNK = 50  # contents sniffed (and linked into the store) per worker task
SYNC_EVERY_S = 0.5  # background filesystem sync while the hash phase stages copies
STATE_TABLES = (ImportRun, ImportEntry, TextSignature, NearDupCluster)
PHASES = ("scan", "hash", "text", "deposit", "near", "done")

Progress = Callable[[str, int], Any]  # (phase label, total) -> tqdm-like object or None


@dataclass
class ImportOptions:
    root: Path | bytes
    org_code: str
    kind: str
    folder_name: str | None = None
    dry_run: bool = False
    workers: int = 1
    with_text: bool = True
    threshold: float = DEFAULT_THRESHOLD
    original_rule: str | None = None


@dataclass
class ImportResult:
    run_id: int
    dry_run: bool
    resumed: bool
    summary: dict[str, Any]
    state_engine: Engine  # where the run's rows live (a temp SQLite file for a dry run)
    root_folder_id: int | None = None
    _tmpdir: Any = field(default=None, repr=False)

    def close(self) -> None:
        if self._tmpdir is not None:
            self.state_engine.dispose()
            self._tmpdir.cleanup()
            self._tmpdir = None


# --- worker tasks (module level: picklable for the process pool) -----------------------------


def staged_name(nonce: str, sha256: str) -> str:
    """Name of a content staged by the hash phase of the import process ``nonce``."""
    return f"{STAGING_PREFIX}imp{nonce}-{sha256}{STAGING_SUFFIX}"


class _Copy:
    """The copy of one file into the staging directory made while it is hashed: kept in memory
    up to ``SMALL_COPY`` bytes (so a content this process staged already, a skipped type or an
    empty file costs no new file), spilled to a temp file beyond."""

    def __init__(self, staging_dir: str, max_bytes: int | None) -> None:
        self.dir = staging_dir
        self.max_bytes = max_bytes
        self.buf = bytearray()
        self.fd = -1
        self.tmp = ""
        self.written = 0

    def restart(self) -> None:
        self.buf.clear()
        self.written = 0
        if self.fd >= 0:
            os.ftruncate(self.fd, 0)
            os.lseek(self.fd, 0, os.SEEK_SET)

    def write(self, chunk: memoryview) -> None:
        self.written += len(chunk)
        if self.max_bytes is not None and self.written > self.max_bytes:
            return  # too large to deposit: hash only (the deposit reports it)
        if self.fd < 0 and self.written <= SMALL_COPY:
            self.buf += chunk
            return
        if self.fd < 0:
            self.fd, self.tmp = tempfile.mkstemp(
                prefix=STAGING_PREFIX, suffix=STAGING_SUFFIX, dir=self.dir
            )
            self._write(self.buf)
            self.buf = bytearray()
        self._write(chunk)

    def _write(self, data: bytes | bytearray | memoryview) -> None:
        view = memoryview(data)
        while view:
            view = view[os.write(self.fd, view) :]

    def close(self) -> None:
        if self.fd >= 0:
            with contextlib.suppress(OSError):  # start writing back now, do not wait
                os.posix_fadvise(self.fd, 0, 0, os.POSIX_FADV_DONTNEED)
            os.close(self.fd)
            self.fd = -1

    def keep(self, final: str) -> None:
        """Give the complete copy its staged name (unless this process staged it already)."""
        if os.path.exists(final):
            self.discard()
            return
        if not self.tmp:
            self.fd, self.tmp = tempfile.mkstemp(
                prefix=STAGING_PREFIX, suffix=STAGING_SUFFIX, dir=self.dir
            )
            try:
                self._write(self.buf)
            finally:
                os.close(self.fd)
                self.fd = -1
        os.rename(self.tmp, final)
        self.tmp = ""

    def discard(self) -> None:
        self.close()
        _unlink(self.tmp)
        self.tmp = ""


def _hash_task(args: tuple[Any, ...]) -> dict[str, Any]:
    """Hash one file (re-checked for changes while reading, retried) and, given a staging
    directory, copy it there on the same read: ``(root, rel, allowed[, staging_dir, nonce,
    max_bytes])``. The copy gets the name :func:`staged_name` once complete; it is not fsynced
    (the import syncs the filesystem once before any of it gets a store name). Without a
    staging directory (dry run, tests) the type is sniffed and checked here; a real import does
    that once per content in the deposit phase (:func:`_prep_task`)."""
    root, rel, allowed = args[:3]
    staging_dir, nonce, max_bytes = args[3:6] if len(args) > 3 else (None, None, None)
    copy = _Copy(staging_dir, max_bytes) if staging_dir is not None else None
    try:
        try:
            h = None
            for attempt in range(3):
                try:
                    if copy is not None and attempt:
                        copy.restart()
                    h = walker.read_stable(root, rel, copy.write if copy is not None else None)
                    break
                except walker.SkipEntry as exc:
                    if exc.reason != "changed_while_reading" or attempt == 2 or copy is None:
                        raise
            assert h is not None
        finally:
            if copy is not None:
                copy.close()
    except walker.SkipEntry as exc:
        if copy is not None:
            copy.discard()
        return {"reason": exc.reason, "detail": exc.detail}
    except OSError as exc:
        if copy is not None:
            copy.discard()
        return {"reason": "unreadable", "detail": str(exc)}
    if h.size == 0:
        if copy is not None:
            copy.discard()
        return {"reason": "empty_file", "size": 0, "mtime_ns": h.mtime_ns}
    out: dict[str, Any] = {"sha256": h.sha256, "size": h.size, "mtime_ns": h.mtime_ns}
    if copy is None:  # a real import sniffs once per content, in the deposit phase
        mime = _sniff(Path(os.fsdecode(root + b"/" + rel)), h.head)
        out["mime"] = mime
        if not type_allowed(mime, allowed):
            out["reason"] = "type_not_allowed"
            out["detail"] = mime
    if copy is not None:
        try:
            if "reason" in out or (max_bytes is not None and h.size > max_bytes):
                copy.discard()
            else:
                copy.keep(os.path.join(staging_dir, staged_name(nonce, h.sha256)))
        except OSError:
            copy.discard()  # not staged: the deposit phase reads the file again
    return out


def _sniff(path: Path, head: bytes) -> str:
    try:
        return sniff(path, head)
    except Exception:
        return "application/octet-stream"


def _head_of(fd: int) -> bytes | None:
    """The first ``HEAD_SIZE`` bytes read from ``fd`` (closed after), None on a read error."""
    try:
        return os.read(fd, HEAD_SIZE)
    except OSError:
        return None
    finally:
        os.close(fd)


def content_type(staged: str | None, root: bytes, rel: bytes) -> str | None:
    """The sniffed type of a content (libmagic over its first ``HEAD_SIZE`` bytes, as a deposit
    sniffs it) read from this process's staged copy, else from a source path; None when
    neither can be read."""
    if staged is not None:
        with contextlib.suppress(OSError):
            head = _head_of(os.open(staged, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK))
            if head is not None:
                return _sniff(Path(staged), head)
    try:
        head = _head_of(walker.open_entry(root, rel))
    except (walker.SkipEntry, OSError):
        return None
    return None if head is None else _sniff(Path(os.fsdecode(root + b"/" + rel)), head)


_STORES: dict[str, LocalBlobStore] = {}


def _prep_task(args: tuple[Any, ...]) -> dict[str, Any]:
    """Get a batch of contents ready for their deposit, in a worker:
    ``(store_root or None, root, allowed, [(sha, staged path, source rel, known type, wants
    text)][, with_text])``.

    Each content is sniffed once (unless its type is known) and, when its type is allowed and
    this process staged a copy, the copy gets its store name in the local store without fsync
    (:meth:`LocalBlobStore.put_staged_deferred`: the copy's bytes were synced at the end of the
    hash phase, and the deposit syncs the names before any row refers to them); with text
    (``args[4]``) the text signature of each content that wants one is computed from the same
    copy. Returns ``{"mime": {sha: type or None}, "linked": [sha, ...], "sigs": [TextSig]}``."""
    store_root, root, allowed, items = args[:4]
    with_text = bool(args[4]) if len(args) > 4 else False
    store = None
    if store_root is not None:
        store = _STORES.get(store_root)
        if store is None:
            store = _STORES[store_root] = LocalBlobStore(store_root)
    mimes: dict[str, str | None] = {}
    linked: list[str] = []
    sigs: list[near_dupes.TextSig] = []
    for sha, staged, rel, known, want_text in items:
        size = None
        with contextlib.suppress(OSError):
            size = os.stat(staged).st_size if staged else None
        here = staged if size is not None else None
        mime = known or content_type(here, root, rel)
        mimes[sha] = mime
        if mime is None or not type_allowed(mime, allowed):
            continue
        if store is not None and here is not None:
            try:
                store.put_staged_deferred(StagedBlob(sha, size or 0, Path(here), b""))
                linked.append(sha)
            except (OSError, ValueError):
                pass
        if with_text and want_text:  # from the staged copy when there is one (no source read)
            if here is not None:
                sigs.append(near_dupes.text_signature(Path(here), mime, sha))
            else:
                sigs.append(_text_task((root, rel, mime, sha)))
    return {"mime": mimes, "linked": linked, "sigs": sigs}


def _sync_loop(store: LocalBlobStore, stop: threading.Event) -> None:
    """Flush the store's filesystem every few moments until ``stop`` (overlaps disk writes of
    staged copies with hashing instead of one long sync at the end)."""
    while not stop.wait(SYNC_EVERY_S):
        with contextlib.suppress(OSError):
            store.sync()


def _folder_name(part: str) -> str:
    try:
        return clean_name(part)
    except InvalidInput:
        return "_"


def _unlink(path: str) -> None:
    if path:
        with contextlib.suppress(OSError):
            os.unlink(path)


def _text_task(args: tuple[bytes, bytes, str | None, str]) -> near_dupes.TextSig:
    root, rel, mime, sha = args
    path = Path(os.fsdecode(root + b"/" + rel))
    if len(root) + len(rel) + 1 >= 4000:  # past PATH_MAX: give the extractor a private copy
        with tempfile.TemporaryDirectory(prefix="genpon-import-") as tmp:
            copy = Path(tmp) / "content"
            try:
                with copy.open("wb") as out:
                    walker.read_stable(root, rel, out.write)
            except (walker.SkipEntry, OSError) as exc:
                return near_dupes.TextSig(sha, "failed", None, str(exc)[:500], 0, None)
            return near_dupes.text_signature(copy, mime, sha)
    return near_dupes.text_signature(path, mime, sha)


def _stage_task(args: tuple[bytes, bytes, str, int | None]) -> dict[str, Any]:
    """Copy one source file into the store's staging directory, hashing it on the way.

    No fsync here: the deposit batch makes every staged file and its store name durable with one
    filesystem sync before its transaction commits (:meth:`LocalBlobStore.sync`)."""
    root, rel, staging_dir, max_bytes = args
    fd, name = tempfile.mkstemp(prefix=STAGING_PREFIX, suffix=STAGING_SUFFIX, dir=staging_dir)
    written = 0

    def sink(chunk: memoryview) -> None:
        nonlocal written
        written += len(chunk)
        if max_bytes is not None and written > max_bytes:
            raise walker.SkipEntry("too_large", f"larger than {max_bytes} bytes")
        view = chunk
        while view:
            view = view[os.write(fd, view) :]

    try:
        try:
            h = walker.read_stable(root, rel, sink)
        finally:
            os.close(fd)
    except walker.SkipEntry as exc:
        with contextlib.suppress(OSError):
            os.unlink(name)
        return {"reason": exc.reason, "detail": exc.detail}
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(name)
        return {"reason": "unreadable", "detail": str(exc)}
    return {"path": name, "sha256": h.sha256, "size": h.size, "head": h.head[:HEAD_SIZE]}


class _Inline(Executor):
    """Executor running tasks in this process (workers=1; also keeps tests fast)."""

    def map(self, fn, *iterables, timeout=None, chunksize=1):  # type: ignore[no-untyped-def,override]
        return map(fn, *iterables)

    def submit(self, fn, /, *args, **kwargs):  # type: ignore[no-untyped-def,override]
        fut: Future[Any] = Future()
        try:
            fut.set_result(fn(*args, **kwargs))
        except BaseException as exc:  # handed to the caller via the future
            fut.set_exception(exc)
        return fut


def _executor(workers: int) -> Executor:
    if workers <= 1:
        return _Inline()
    return ProcessPoolExecutor(max_workers=workers, mp_context=get_context("fork"))


# --- helpers -----------------------------------------------------------------------------------


def _insert(session: Session) -> Any:
    return pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert


def _path_key(rel: bytes) -> str:
    return hashlib.sha256(rel).hexdigest()


def _mtime(ns: int | None) -> datetime | None:
    return datetime.fromtimestamp(ns / 1e9, tz=UTC) if ns is not None else None


def _as_bytes(root: Path | bytes) -> bytes:
    raw = root if isinstance(root, bytes) else os.fsencode(str(root))
    raw = raw.rstrip(b"/") or b"/"
    return os.path.abspath(raw)


def state_engine_for_dry_run() -> tuple[Engine, Any]:
    tmp = tempfile.TemporaryDirectory(prefix="genpon-dryrun-")
    engine = create_engine(f"sqlite:///{tmp.name}/state.db")
    SQLModel.metadata.create_all(engine, tables=[t.__table__ for t in STATE_TABLES])  # type: ignore[attr-defined]
    return engine, tmp


def _nullbar(_label: str, _total: int) -> Any:
    return None


class _Meter:
    """Counts files and bytes for a progress bar (files/s, MB/s)."""

    def __init__(self, progress: Progress, label: str, total: int) -> None:
        self.bar = progress(label, total)
        self.started = time.monotonic()
        self.files = 0
        self.bytes = 0

    def tick(self, nbytes: int = 0) -> None:
        self.files += 1
        self.bytes += nbytes
        if self.bar is not None:
            self.bar.update(1)
            if self.files % 25 == 0:
                dt = max(time.monotonic() - self.started, 1e-6)
                self.bar.set_postfix_str(f"{self.bytes / dt / 1e6:.1f} MB/s", refresh=False)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _save_signatures(s: Session, sigs: Iterable[near_dupes.TextSig]) -> None:
    """Insert (or replace signatures of an earlier scheme) contents' text signatures, with one
    executemany."""
    now = utcnow()
    rows = [
        {
            "sha256": sig.sha256,
            "status": sig.status,
            "extractor": sig.extractor,
            "reason": (sig.reason or "")[:500] or None,
            "chars": sig.chars,
            "shingle_k": near_dupes.SHINGLE_K,
            "num_perm": near_dupes.NUM_PERM,
            "hashvalues": sig.hashvalues,
            "created_at": now,
        }
        for sig in sigs
    ]
    if not rows:
        return
    stmt = _insert(s)(TextSignature.__table__)  # type: ignore[attr-defined]
    stmt = stmt.on_conflict_do_update(
        index_elements=["sha256"],
        set_={k: stmt.excluded[k] for k in rows[0] if k != "sha256"},
    )
    s.execute(stmt, rows)


def _save_texts(s: Session, sigs: Iterable[near_dupes.TextSig]) -> None:
    """Keep the texts extracted for signatures as their contents' stored text (``BlobText``,
    what the search indexer would store), so the indexer does not extract them again. Only for
    contents stored in Genpon that have no stored text yet; never in a dry run's state."""
    fresh = {sig.sha256: sig for sig in sigs if sig.text_status}
    wanted = list(fresh)
    now = utcnow()
    for i in range(0, len(wanted), 500):
        chunk = wanted[i : i + 500]
        stored = set(
            s.exec(
                select(Blob.sha256).where(col(Blob.sha256).in_(chunk), Blob.state == "stored")
            ).all()
        )
        rows = [
            {
                "sha256": sha,
                "status": fresh[sha].text_status,
                "extractor": fresh[sha].extractor,
                "reason": (fresh[sha].text_reason or "")[:500] or None,
                "text_z": fresh[sha].text_z,
                "chars": fresh[sha].chars,
                "extracted_at": now,
            }
            for sha in chunk
            if sha in stored
        ]
        if rows:
            stmt = _insert(s)(BlobText.__table__)  # type: ignore[attr-defined]
            s.execute(stmt.on_conflict_do_nothing(index_elements=["sha256"]), rows)


def _signed(s: Session, shas: list[str] | None = None) -> set[str]:
    """Contents (of ``shas``, else all) with a signature of the current scheme (or a final
    non-ok status: empty, failed, unsupported)."""
    stmt = select(TextSignature.sha256, TextSignature.status, TextSignature.hashvalues)
    out: set[str] = set()
    chunks = [shas[i : i + 500] for i in range(0, len(shas), 500)] if shas is not None else [None]
    for chunk in chunks:
        q = stmt if chunk is None else stmt.where(col(TextSignature.sha256).in_(chunk))
        for sha, status, hv in s.exec(q).all():
            if status != "ok" or near_dupes.current(hv):
                out.add(sha)
    return out


class ExactJaccard:
    """``exact`` for :func:`near_dupes.near_pairs`: the exact shingle Jaccard of two contents.

    A content's text comes from the text the search indexer stored (``BlobText`` in ``engine``),
    else it is extracted again by the import's extractor (the search extractor's rules) from the
    stored blob, else from ``source(sha)`` (a dry run's source file); None when no text can be
    had (the estimate then decides). Only candidates near the threshold ask, so few contents are
    read; the last ``CACHE`` shingle sets are kept."""

    CACHE = 256

    def __init__(
        self,
        engine: Engine,
        store: BlobStore | None,
        source: Callable[[str], tuple[Path, str | None] | None] | None = None,
    ) -> None:
        self.engine = engine
        self.store = store
        self.source = source
        self.extracted = 0  # texts extracted again (tests, diagnostics)
        self._sets: collections.OrderedDict[str, Any] = collections.OrderedDict()

    def __call__(self, a: str, b: str) -> float | None:
        sa, sb = self._set(a), self._set(b)
        if sa is None or sb is None:
            return None
        return near_dupes.exact_jaccard(sa, sb)

    def close(self) -> None:
        if self.extracted:
            extract_pool.shared().close()  # this process's extractor child, if one was started

    def _set(self, sha: str) -> Any:
        if sha in self._sets:
            self._sets.move_to_end(sha)
            return self._sets[sha]
        try:
            text = self._text(sha)
        except Exception:  # an unreadable content leaves the decision to the estimate
            text = None
        value = near_dupes.shingle_set(text) if text else None
        self._sets[sha] = value
        if len(self._sets) > self.CACHE:
            self._sets.popitem(last=False)
        return value

    def _text(self, sha: str) -> str | None:
        from genpon.search.indexer import stored_text

        with Session(self.engine) as s:
            row = s.get(BlobText, sha)
            if row is not None and row.status != "pending":
                return stored_text(row)
            blob = s.get(Blob, sha)
            mime = blob.mime_type if blob is not None and blob.state == "stored" else None
        if mime is not None and self.store is not None:
            self.extracted += 1
            with self.store.as_file(sha) as path:
                ex = extract_pool.shared().extract(path, mime)
            return ex.text if ex.status == "ok" else None
        where = self.source(sha) if self.source is not None else None
        if where is None:
            return None
        self.extracted += 1
        ex = extract_pool.shared().extract(*where)
        return ex.text if ex.status == "ok" else None


# --- the flow ------------------------------------------------------------------------------------


def run_import(
    engine: Engine,
    store: BlobStore,
    settings: Settings,
    actor: Actor,
    opts: ImportOptions,
    *,
    progress: Progress | None = None,
    stop_after: str | None = None,
) -> ImportResult:
    """Import (or with ``dry_run`` plan) ``opts.root``; resumes an unfinished identical run.

    ``stop_after`` (a phase name) ends the run early, leaving it resumable (used by tests)."""
    progress = progress or _nullbar
    root = _as_bytes(opts.root)
    if not os.path.isdir(root):
        raise InvalidInput(
            "source_not_found", f"取込元のディレクトリがありません: {os.fsdecode(root)}"
        )
    if opts.kind not in ("team", "shared"):
        raise InvalidInput(
            "invalid_folder_kind",
            "取込先の種類は team か shared です。",
            {"allowed": ["team", "shared"]},
        )
    if opts.workers < 1 or opts.workers > 64:
        raise InvalidInput("invalid_workers", "--workers は 1〜64 で指定してください。")
    rule = parse_rule(opts.original_rule or settings.import_original_rule)
    threshold = check_threshold(opts.threshold)
    root_display, _enc = walker.decode_path(root)
    folder_name = clean_name(opts.folder_name or os.path.basename(root_display) or "取込")
    with Session(engine) as s:
        org = s.exec(select(Organization).where(Organization.code == opts.org_code)).first()
        if org is None:
            raise NotFound("organization_not_found", f"所属 {opts.org_code} が見つかりません。")
        require_write(
            actor, Folder(kind=opts.kind, name=folder_name, organization_id=org.id or 0), None
        )
        org_id = org.id or 0

    args = (engine, store, settings, actor, opts, root, rule, threshold, folder_name, org_id)
    if opts.dry_run:
        return _run_import(*args, progress, stop_after)
    with _source_lock(settings, root, org_id, opts.kind, folder_name):
        return _run_import(*args, progress, stop_after)


@contextlib.contextmanager
def _source_lock(
    settings: Settings, root: bytes, org_id: int, kind: str, folder_name: str
) -> Iterator[None]:
    """One import of a source into a target at a time (a second one would only redo the
    first's work). An exclusive ``flock`` on a file named by a hash of the source and target
    under the data directory: the kernel releases it when the process ends, even by kill -9,
    so an interrupted import can always be resumed. Scope: the processes sharing this data
    directory (one host)."""
    import fcntl

    parts = [root, str(org_id).encode(), kind.encode(), folder_name.encode()]
    key = hashlib.sha256(b"\0".join(parts)).hexdigest()[:32]
    lock_dir = Path(settings.data_dir) / "locks"
    lock_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock_dir / f"import-{key}.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise Conflict(
                "import_in_progress",
                "同じ取込元から同じ取込先への取込が実行中です。終了を待ってから再実行してください。",
            ) from None
        yield
    finally:
        os.close(fd)  # releases the lock


def _run_import(
    engine: Engine,
    store: BlobStore,
    settings: Settings,
    actor: Actor,
    opts: ImportOptions,
    root: bytes,
    rule: tuple[str, ...],
    threshold: float,
    folder_name: str,
    org_id: int,
    progress: Progress,
    stop_after: str | None,
) -> ImportResult:
    root_display, _enc = walker.decode_path(root)
    tmpdir = None
    if opts.dry_run:
        state, tmpdir = state_engine_for_dry_run()
    else:
        state = engine
    resumed = False
    with session_scope(state) as s:
        run = None
        if not opts.dry_run:
            run = s.exec(
                select(ImportRun).where(
                    ImportRun.status == "running",
                    ImportRun.dry_run == False,  # noqa: E712
                    ImportRun.source_root_raw == root,
                    ImportRun.organization_id == org_id,
                    ImportRun.folder_kind == opts.kind,
                    ImportRun.folder_name == folder_name,
                )
            ).first()
        if run is not None:
            resumed = True
        else:
            run = ImportRun(
                source_root=root_display,
                source_root_raw=root,
                organization_id=org_id,
                folder_kind=opts.kind,
                folder_name=folder_name,
                dry_run=opts.dry_run,
                with_text=opts.with_text,
                original_rule=",".join(rule),
                near_threshold=threshold,
                started_by=actor.login,
            )
            s.add(run)
            s.flush()
        run_id = run.id or 0
        rule = parse_rule(run.original_rule)  # a resumed run keeps its rule
        with_text, threshold = run.with_text, run.near_threshold
        phase = run.phase

    root_folder_id: int | None = None
    if not opts.dry_run:
        root_folder_id = _ensure_root_folder(engine, actor, org_id, opts.kind, folder_name)
        with session_scope(state) as s:
            r = s.get(ImportRun, run_id)
            assert r is not None
            if r.root_folder_id is None:
                r.root_folder_id = root_folder_id
                s.add(r)
                if not resumed:
                    audit.record(
                        s,
                        actor=actor.login,
                        action="import.started",
                        target_type="import_run",
                        target_id=run_id,
                        details={
                            "source": root_display,
                            "folder_id": root_folder_id,
                            "rule": r.original_rule,
                        },
                    )

    job = _Job(
        engine=engine,
        state=state,
        store=store,
        settings=settings,
        actor=actor,
        run_id=run_id,
        root=root,
        rule=rule,
        threshold=threshold,
        with_text=with_text,
        dry_run=opts.dry_run,
        root_folder_id=root_folder_id,
        folder_name=folder_name,
        progress=progress,
    )
    started = time.monotonic()
    with contextlib.ExitStack() as stack:
        ex = _executor(opts.workers)
        stack.callback(ex.shutdown, wait=True, cancel_futures=True)
        job.executor = ex
        steps: list[tuple[str, Callable[[], None]]] = [
            ("scan", job.scan),
            ("hash", job.hash),
            ("text", job.text),
            ("deposit", job.place),
            ("near", job.near),
        ]
        start_at = PHASES.index(phase)
        for name, step in steps:
            if PHASES.index(name) < start_at:
                continue
            if name == "text" and (not with_text or not opts.dry_run):
                # A real import extracts text during the deposit phase, in the worker pool
                # from the staged copies; ``near`` catches up on anything missing.
                job.set_phase("deposit")
                continue
            t0 = time.monotonic()
            step()
            job.phase_s[name] = round(time.monotonic() - t0, 3)
            job.set_phase(PHASES[PHASES.index(name) + 1])
            if stop_after == name:
                return ImportResult(
                    run_id, opts.dry_run, resumed, {}, state, root_folder_id, tmpdir
                )
    summary = job.finish(time.monotonic() - started)
    return ImportResult(run_id, opts.dry_run, resumed, summary, state, root_folder_id, tmpdir)


def _ensure_root_folder(engine: Engine, actor: Actor, org_id: int, kind: str, name: str) -> int:
    with session_scope(engine) as s:
        found = s.exec(
            select(Folder).where(
                col(Folder.parent_id).is_(None),
                Folder.kind == kind,
                Folder.organization_id == org_id,
                Folder.name == name,
            )
        ).first()
        if found is not None:
            require_write(actor, found, None)
            return found.id or 0
        org = s.get(Organization, org_id)
        assert org is not None
        f = create_folder(s, actor, name=name, kind=kind, organization_code=org.code)
        return f.id or 0


@dataclass
class _Candidate:
    key: tuple[Any, ...]
    entry: ImportEntry | None = None
    document: Document | None = None


@dataclass
class _Job:
    engine: Engine
    state: Engine
    store: BlobStore
    settings: Settings
    actor: Actor
    run_id: int
    root: bytes
    rule: tuple[str, ...]
    threshold: float
    with_text: bool
    dry_run: bool
    root_folder_id: int | None
    folder_name: str
    progress: Progress
    executor: Executor | None = None
    _folders: dict[str, int] = field(default_factory=dict)
    #: names this process's staged copies (:func:`staged_name`); a resumed run re-stages
    nonce: str = field(default_factory=lambda: f"{os.getpid()}{secrets.token_hex(4)}")
    phase_s: dict[str, float] = field(default_factory=dict)
    _preps: dict[str, list[Future[Any]]] = field(default_factory=dict)  # by batch's last sha
    _now_linked: set[str] = field(default_factory=set)  # contents of this batch linked already
    _mime: dict[str, str] = field(default_factory=dict)  # this batch's sniffed types by content
    _sigs: list[near_dupes.TextSig] = field(default_factory=list)  # this batch's new signatures

    def set_phase(self, phase: str) -> None:
        with session_scope(self.state) as s:
            s.execute(update(ImportRun).where(ImportRun.id == self.run_id).values(phase=phase))

    # -- 1. scan ----------------------------------------------------------------------------------

    def scan(self) -> None:
        meter = _Meter(self.progress, "走査", 0)
        batch: list[dict[str, Any]] = []
        seq = 0
        try:
            for item in walker.walk(self.root):
                seq += 1
                batch.append(self._entry_row(item, seq))
                meter.tick(item.size or 0)
                if len(batch) >= 500:
                    self._insert_entries(batch)
                    batch = []
            if batch:
                self._insert_entries(batch)
        finally:
            meter.close()

    def _entry_row(self, item: walker.WalkItem, seq: int) -> dict[str, Any]:
        display, enc = walker.decode_path(item.rel)
        now = utcnow()
        return {
            "run_id": self.run_id,
            "seq": seq,
            "path_key": _path_key(item.rel),
            "rel_path_raw": item.rel,
            "rel_path": display,
            "name_encoding": enc,
            "entry_type": item.entry_type,
            "state": "skipped" if item.reason else "seen",
            "reason": item.reason,
            "detail": item.detail,
            "size": item.size,
            "mtime": _mtime(item.mtime_ns),
            "mtime_ns": item.mtime_ns,
            "owner": walker.owner_name(item.uid) if item.uid is not None else None,
            "uid": item.uid,
            "updated_at": now,
        }

    def _insert_entries(self, rows: list[dict[str, Any]]) -> None:
        with session_scope(self.state) as s:
            ins = _insert(s)
            s.execute(  # one executemany (a cached statement, not a 500-row VALUES to compile)
                ins(ImportEntry.__table__).on_conflict_do_nothing(  # type: ignore[attr-defined]
                    index_elements=["run_id", "path_key"]
                ),
                rows,
            )

    # -- 2. hash ----------------------------------------------------------------------------------

    def hash(self) -> None:
        """Hash every file in the worker pool; a real import copies each file into the store's
        staging directory on the same read (no second read in the deposit phase). Pages of
        entries are kept in flight so the workers never wait for this process's updates; a
        background thread syncs the filesystem meanwhile so the staged bytes are written out
        while hashing goes on, and one sync at the end makes them all durable."""
        with Session(self.state) as s:
            total = s.exec(
                select(func.count()).where(
                    ImportEntry.run_id == self.run_id, ImportEntry.state == "seen"
                )
            ).one()
        meter = _Meter(self.progress, "ハッシュ", total)
        allowed = tuple(self.settings.allowed_types)
        assert self.executor is not None
        local = self.store if isinstance(self.store, LocalBlobStore) else None
        extra: tuple[Any, ...] = ()
        if not self.dry_run:
            extra = (str(self.store.staging_dir), self.nonce, self.settings.max_upload_bytes)
        stop = threading.Event()
        syncer = None
        if local is not None and not self.dry_run:
            syncer = threading.Thread(target=_sync_loop, args=(local, stop), daemon=True)
            syncer.start()
        pending: collections.deque[tuple[list[Any], Iterator[dict[str, Any]]]] = collections.deque()
        last_id = 0
        try:
            while True:
                rows: list[Any] = []
                if last_id >= 0:
                    with Session(self.state) as s:
                        rows = list(
                            s.exec(
                                select(
                                    ImportEntry.id,
                                    ImportEntry.rel_path_raw,
                                    ImportEntry.size,
                                    ImportEntry.mtime_ns,
                                    ImportEntry.mtime,
                                )
                                .where(
                                    ImportEntry.run_id == self.run_id,
                                    ImportEntry.state == "seen",
                                    col(ImportEntry.id) > last_id,
                                )
                                .order_by(col(ImportEntry.id))
                                .limit(HASH_PAGE)
                            ).all()
                        )
                    if rows:
                        last_id = rows[-1][0] or 0
                        tasks = [(self.root, r[1], allowed, *extra) for r in rows]
                        pending.append((rows, self.executor.map(_hash_task, tasks, chunksize=16)))
                    else:
                        last_id = -1
                if not pending:
                    break
                if rows and len(pending) < 2:
                    continue  # keep the next page in flight while this one is recorded
                page, results = pending.popleft()
                self._record_hashes(page, results, meter)
        finally:
            stop.set()
            if syncer is not None:
                syncer.join()
            meter.close()
        if local is not None and not self.dry_run:
            local.sync()  # every staged copy durable before any of it is linked into the store

    def _record_hashes(
        self, rows: list[Any], results: Iterator[dict[str, Any]], meter: _Meter
    ) -> None:
        now = utcnow()
        updates = []
        for (entry_id, _rel, size, mtime_ns, mtime), res in zip(rows, results, strict=True):
            if "size" in res:
                size, mtime_ns = res["size"], res["mtime_ns"]
                mtime = _mtime(mtime_ns)
            reason = res.get("reason")
            updates.append(
                {
                    "id": entry_id,
                    "size": size,
                    "mtime_ns": mtime_ns,
                    "mtime": mtime,
                    "sha256": res.get("sha256"),
                    "mime_type": res.get("mime"),
                    "state": "skipped" if reason else "hashed",
                    "reason": reason,
                    "detail": res.get("detail") if reason else None,
                    "updated_at": now,
                }
            )
            meter.tick(res.get("size") or 0)
        with session_scope(self.state) as s:
            s.execute(update(ImportEntry), updates)  # bulk UPDATE by primary key

    # -- 3. text ----------------------------------------------------------------------------------

    def text(self) -> None:
        assert self.executor is not None
        with Session(self.state) as s:
            total = s.exec(
                select(func.count(func.distinct(ImportEntry.sha256))).where(
                    ImportEntry.run_id == self.run_id, ImportEntry.state == "hashed"
                )
            ).one()
        meter = _Meter(self.progress, "テキスト抽出", total)
        last_sha = ""
        try:
            while True:
                with Session(self.state) as s:
                    shas = s.exec(
                        select(ImportEntry.sha256, func.min(ImportEntry.id))
                        .where(
                            ImportEntry.run_id == self.run_id,
                            col(ImportEntry.state).in_(("hashed", "done", "planned")),
                            col(ImportEntry.sha256) > last_sha,
                        )
                        .group_by(ImportEntry.sha256)
                        .order_by(ImportEntry.sha256)
                        .limit(BATCH)
                    ).all()
                    if not shas:
                        return
                    last_sha = shas[-1][0] or ""
                    have = _signed(s, [x[0] or "" for x in shas])
                    todo = []
                    for sha, entry_id in shas:
                        if sha in have:
                            meter.tick()
                            continue
                        e = s.get(ImportEntry, entry_id)
                        assert e is not None
                        todo.append((self.root, e.rel_path_raw, e.mime_type, sha))
                sigs = list(self.executor.map(_text_task, todo, chunksize=2))
                with session_scope(self.state) as s:
                    _save_signatures(s, sigs)
                    if not self.dry_run:
                        _save_texts(s, sigs)
                for _sig in sigs:
                    meter.tick()
        finally:
            meter.close()

    # -- 4. deposit (or plan) -------------------------------------------------------------------

    def place(self) -> None:
        with Session(self.state) as s:
            total = s.exec(
                select(func.count()).where(
                    ImportEntry.run_id == self.run_id, ImportEntry.state == "hashed"
                )
            ).one()
        meter = _Meter(self.progress, "計画" if self.dry_run else "登録", total)
        try:
            upcoming = self._next_shas("")
            self._submit_prep(upcoming)
            while upcoming:
                shas = upcoming
                upcoming = self._next_shas(shas[-1])
                # the next batch's contents are sniffed and linked in the workers meanwhile
                self._submit_prep(upcoming)
                if self.dry_run:
                    self._plan_groups(shas, meter)
                else:
                    self._deposit_groups(shas, meter)
        finally:
            for futs in self._preps.values():
                for f in futs:
                    f.cancel()
            for futs in self._preps.values():
                for f in futs:
                    with contextlib.suppress(BaseException):
                        f.result()
            self._preps.clear()
            meter.close()
            if not self.dry_run:
                self._drop_staged()

    def _next_shas(self, after: str) -> list[str]:
        """The next batch of contents to place, in SHA order."""
        with Session(self.state) as s:
            return [
                x
                for x in s.exec(
                    select(ImportEntry.sha256)
                    .where(
                        ImportEntry.run_id == self.run_id,
                        ImportEntry.state == "hashed",
                        col(ImportEntry.sha256) > after,
                    )
                    .group_by(ImportEntry.sha256)
                    .order_by(ImportEntry.sha256)
                    .limit(DEPOSIT_BATCH)
                ).all()
                if x
            ]

    def _submit_prep(self, shas: list[str]) -> None:
        """Queue the sniffing (and linking into a local store) of a batch's contents in the
        workers (:func:`_prep_task`), one batch ahead of its deposit."""
        if self.dry_run or not shas:
            return
        assert self.executor is not None
        with Session(self.state) as s:
            rows = s.exec(
                select(ImportEntry.sha256, ImportEntry.rel_path_raw, ImportEntry.mime_type)
                .where(
                    ImportEntry.run_id == self.run_id,
                    col(ImportEntry.sha256).in_(shas),
                    ImportEntry.state == "hashed",
                )
                .order_by(col(ImportEntry.id))
            ).all()
            signed = _signed(s, shas) if self.with_text else set()
        first: dict[str, tuple[bytes, str | None]] = {}
        for sha, rel, mime in rows:
            if sha not in first or (mime and not first[sha][1]):
                first[sha] = (rel, mime)
        staging = str(self.store.staging_dir)
        items = [
            (
                sha,
                os.path.join(staging, staged_name(self.nonce, sha)),
                *first[sha],
                sha not in signed,
            )
            for sha in shas
            if sha in first
        ]
        store_root = str(self.store.root) if isinstance(self.store, LocalBlobStore) else None
        allowed = tuple(self.settings.allowed_types)
        self._preps[shas[-1]] = [
            self.executor.submit(
                _prep_task,
                (store_root, self.root, allowed, items[i : i + PREP_CHUNK], self.with_text),
            )
            for i in range(0, len(items), PREP_CHUNK)
        ]

    def _apply_types(
        self, s: Session, shas: list[str], by_sha: dict[str, list[ImportEntry]], meter: _Meter
    ) -> None:
        """Each content's sniffed type on its entries; a type not allowed skips them all."""
        mimes: dict[str, str | None] = {}
        self._now_linked = set()
        self._mime = {}
        self._sigs = []
        for f in self._preps.pop(shas[-1], []):
            try:
                res = f.result()
            except Exception:
                continue  # sniffed here instead
            mimes.update(res["mime"])
            self._now_linked.update(res["linked"])
            self._sigs.extend(res.get("sigs", []))
        allowed = self.settings.allowed_types
        for sha, es in by_sha.items():
            pending = [e for e in es if e.state == "hashed"]
            if not pending:
                continue
            mime = next((e.mime_type for e in es if e.mime_type), None) or mimes.get(sha)
            if mime is None:
                for e in pending:
                    mime = content_type(None, self.root, e.rel_path_raw)
                    if mime is not None:
                        break
            if mime is None:
                for e in pending:
                    self._skip(s, e, "unreadable", "could not read the content's type")
                    meter.tick()
                continue
            if not type_allowed(mime, allowed):
                for e in pending:
                    self._skip(s, e, "type_not_allowed", mime)
                    meter.tick()
                continue
            self._mime[sha] = mime

    def _drop_staged(self) -> None:
        """Remove this process's staged copies nobody took (skipped contents)."""
        prefix = staged_name(self.nonce, "")[: -len(STAGING_SUFFIX)]
        with contextlib.suppress(OSError), os.scandir(self.store.staging_dir) as it:
            for entry in it:
                if entry.name.startswith(prefix):
                    _unlink(entry.path)

    def _entries(self, s: Session, sha: str) -> list[ImportEntry]:
        return list(
            s.exec(
                select(ImportEntry)
                .where(
                    ImportEntry.run_id == self.run_id,
                    ImportEntry.sha256 == sha,
                    col(ImportEntry.state).in_(("hashed", "done", "planned")),
                )
                .order_by(col(ImportEntry.id))
            ).all()
        )

    def _entry_key(self, e: ImportEntry) -> tuple[Any, ...]:
        path = f"/{self.folder_name}/{e.rel_path}"
        return self._key(False, False, e.mtime_ns or 0, path, e.rel_path_raw)

    def _doc_key(self, s: Session, d: Document) -> tuple[Any, ...]:
        prov = d.provenance or {}
        mtime_ns = prov.get("mtime_ns")
        if not isinstance(mtime_ns, int):
            created = d.created_at if d.created_at.tzinfo else d.created_at.replace(tzinfo=UTC)
            mtime_ns = int(created.timestamp() * 1e9)
        f = s.get(Folder, d.folder_id)
        path = (folder_path(s, f) if f else "") + "/" + d.filename
        return self._key(d.status == "official", d.case_pk is not None, mtime_ns, path, b"")

    def _key(
        self, official: bool, in_case: bool, mtime_ns: int, path: str, raw: bytes
    ) -> tuple[Any, ...]:
        parts: list[Any] = []
        for c in self.rule:
            if c == "official":
                parts.append(0 if official else 1)
            elif c == "case":
                parts.append(0 if in_case else 1)
            elif c == "oldest":
                parts.append(mtime_ns)
            elif c == "newest":
                parts.append(-mtime_ns)
            elif c == "shortest":
                parts.append(len(path))
        return (*parts, path, raw)

    def _rank(
        self, s: Session, main: Session, entries: list[ImportEntry]
    ) -> tuple[list[_Candidate], Document | None]:
        existing = documents.current_original(main, entries[0].sha256 or "")
        return self._rank_with(main, entries, existing), existing

    def _rank_with(
        self, main: Session, entries: list[ImportEntry], existing: Document | None
    ) -> list[_Candidate]:
        cands = []
        own = {e.document_id: e for e in entries if e.document_id}
        for e in entries:
            if e.state in ("done", "planned"):
                continue
            cands.append(_Candidate(self._entry_key(e), entry=e))
        if existing is not None:
            own_entry = own.get(existing.id)
            key = self._entry_key(own_entry) if own_entry else self._doc_key(main, existing)
            cands.append(_Candidate(key, document=existing))
        cands.sort(key=lambda c: c.key)
        if existing is not None and existing.status == "official":  # never displaced
            cands.sort(key=lambda c: c.document is None)
        return cands

    def _plan_groups(self, shas: list[str], meter: _Meter) -> None:
        with session_scope(self.state) as s, Session(self.engine) as main:
            for sha in shas:
                entries = self._entries(s, sha)
                cands, existing = self._rank(s, main, entries)
                winner = cands[0]
                for c in cands:
                    e = c.entry
                    if e is None:
                        continue
                    e.state = "planned"
                    e.role = "original" if c is winner else "copy"
                    e.original_document_id = existing.id if existing is not None else None
                    e.updated_at = utcnow()
                    s.add(e)
                    meter.tick(e.size or 0)

    def _deposit_groups(self, shas: list[str], meter: _Meter) -> None:
        """One transaction for a batch of content groups. The original of each new content is
        staged by the worker pool while this process ranks the groups; before the commit one
        filesystem sync makes every new blob durable, so a committed document never points to a
        missing blob. All placements of the batch go through :func:`documents.deposit_batch`
        (a few statements for the whole batch) and the entries' progress commits with them."""
        assert self.executor is not None
        local = self.store if isinstance(self.store, LocalBlobStore) else None
        with session_scope(self.engine) as s:
            by_sha = self._entries_many(s, shas)
            self._skip_already_imported(s, by_sha, meter)
            self._apply_types(s, shas, by_sha, meter)
            held = documents.current_originals(s, set(shas))
            plans: list[tuple[list[_Candidate], Document | None, Future[Any] | None]] = []
            for sha in shas:
                entries = [e for e in by_sha.get(sha, []) if e.state != "skipped"]
                if not entries:
                    continue
                existing = held.get(sha)
                cands = self._rank_with(s, entries, existing)
                fut = None
                first = cands[0].entry
                if first is not None and existing is None:
                    fut = self._staged_here(sha, first)
                if fut is None and first is not None and existing is None:
                    fut = self.executor.submit(
                        _stage_task,
                        (
                            self.root,
                            first.rel_path_raw,
                            str(self.store.staging_dir),
                            self.settings.max_upload_bytes,
                        ),
                    )
                plans.append((cands, existing, fut))
            items: list[documents.BatchItem] = []
            owners: list[ImportEntry] = []
            winners: dict[int, ImportEntry] = {}  # entries displacing a working original
            try:
                self._ensure_folders(s, [c.entry for cands, _e, _f in plans for c in cands])
                restaged = [f for _c, _e, f in plans if f is not None and not f.done()]
                if local is not None and restaged:
                    # Staged contents durable before they get their store names (a name must
                    # never survive a crash without its bytes); text extraction goes on meanwhile.
                    # (Copies staged by this process's hash phase are durable already.)
                    for f in restaged:
                        f.exception()
                    local.sync()
                for cands, existing, fut in plans:
                    self._batch_group(s, cands, existing, fut, local, meter, items, owners, winners)
                if local is not None:
                    local.sync()  # the new names, before the rows refer to them
                outs = documents.deposit_batch(
                    s,
                    self.store,
                    self.actor,
                    items,
                    allowed_types=self.settings.allowed_types,
                    timezone=self.settings.timezone,
                )
                self._record_outcomes(s, owners, outs, winners, meter)
                _save_signatures(s, self._sigs)
                s.flush()
                _save_texts(s, self._sigs)
            finally:
                for it in items:  # not handed over by an error: remove the staged file
                    if it.staged is not None:
                        self.store.discard(it.staged)
                for _c, _e, fut in plans:  # staged files left over by an error: remove them
                    if fut is None or fut.cancel():
                        continue
                    with contextlib.suppress(Exception):
                        res = fut.result()
                        if "path" in res and not res.get("taken"):
                            os.unlink(res["path"])

    def _staged_here(self, sha: str, e: ImportEntry) -> Future[Any] | None:
        """The copy of ``sha`` staged by this process's hash phase, as a finished stage task."""
        if self.dry_run:
            return None
        path = os.path.join(str(self.store.staging_dir), staged_name(self.nonce, sha))
        try:
            size = os.stat(path).st_size
        except OSError:
            return None
        if size != e.size:
            _unlink(path)
            return None
        fut: Future[Any] = Future()
        fut.set_result({"path": path, "sha256": sha, "size": size, "head": b""})
        return fut

    def _ensure_folders(self, s: Session, entries: Iterable[ImportEntry | None]) -> None:
        """Create the batch's missing subfolders at once (:func:`create_folder_paths`)."""
        assert self.root_folder_id is not None
        missing: dict[str, tuple[str, ...]] = {}
        for e in entries:
            if e is None or e.state != "hashed":
                continue
            names = tuple(_folder_name(p) for p in e.rel_path.split("/")[:-1])
            for i in range(1, len(names) + 1):
                key = "/" + "/".join(names[:i])
                if key not in self._folders:
                    missing.setdefault(key, names[:i])
        if not missing:
            return
        try:
            with s.begin_nested():
                ids = create_folder_paths(
                    s, self.actor, parent_id=self.root_folder_id, paths=list(missing.values())
                )
        except GenponError:
            return  # one by one in _folder_for, which reports the entries concerned
        for path, fid in ids.items():
            if path:
                self._folders["/" + "/".join(path)] = fid

    def _entries_many(self, s: Session, shas: list[str]) -> dict[str, list[ImportEntry]]:
        out: dict[str, list[ImportEntry]] = {}
        for e in s.exec(
            select(ImportEntry)
            .where(
                ImportEntry.run_id == self.run_id,
                col(ImportEntry.sha256).in_(shas),
                col(ImportEntry.state).in_(("hashed", "done", "planned")),
            )
            .order_by(col(ImportEntry.id))
        ).all():
            out.setdefault(e.sha256 or "", []).append(e)
        return out

    def _batch_group(
        self,
        s: Session,
        cands: list[_Candidate],
        existing: Document | None,
        fut: Future[Any] | None,
        local: LocalBlobStore | None,
        meter: _Meter,
        items: list[documents.BatchItem],
        owners: list[ImportEntry],
        winners: dict[int, ImportEntry],
    ) -> None:
        """Add one content group's placements to the batch: the best-ranked entry that can be
        staged brings the content (when nobody holds it yet), every other entry is a copy."""
        winner: ImportEntry | None = None
        staged: StagedBlob | None = None
        for c in cands:
            if c.document is not None:
                break  # an existing document wins: everything else becomes its copy
            e = c.entry
            assert e is not None
            if existing is not None:
                winner = e  # ranks before a working original: takes over after placement
                break
            if fut is not None:
                staged = self._staged_result(s, e, fut.result(), local, meter)
                fut = None
            else:
                staged = self._stage_inline(s, e, meter)
            if staged is not None:
                winner = e
                break  # else unreadable or changed: the next candidate in rank order
        if winner is None and existing is None:
            return
        for c in cands:
            e = c.entry
            if e is None or e.state != "hashed":
                continue
            try:
                folder_id = self._folder_for(s, e)
            except GenponError as exc:
                if e is winner and staged is not None:
                    self.store.discard(staged)
                    staged = None
                self._skip(s, e, exc.code, exc.message)
                meter.tick()
                continue
            filename = clean_filename(e.rel_path.rsplit("/", 1)[-1])
            stem = filename.rsplit(".", 1)[0] if "." in filename else filename
            mine = e is winner and staged is not None
            items.append(
                documents.BatchItem(
                    sha256=e.sha256 or "",
                    size=e.size or 0,
                    mime_type=self._mime.get(e.sha256 or "", e.mime_type)
                    or "application/octet-stream",
                    folder_id=folder_id,
                    filename=filename,
                    title=stem[:500],
                    doc_date=e.mtime.date() if mine and e.mtime else None,
                    provenance=self._provenance(e),
                    staged=staged if mine else None,
                )
            )
            owners.append(e)
            if e is winner and existing is not None:
                winners[len(owners) - 1] = e

    def _record_outcomes(
        self,
        s: Session,
        owners: list[ImportEntry],
        outs: list[documents.BatchOutcome],
        winners: dict[int, ImportEntry],
        meter: _Meter,
    ) -> None:
        now = utcnow()
        moved: dict[int, int] = {}  # former original id -> the entry's document now original
        rows: list[dict[str, Any]] = []
        for i, (e, out) in enumerate(zip(owners, outs, strict=True)):
            doc = out.document
            if doc is None:
                err = out.error
                self._skip(s, e, err.code if err else "refused", err.message if err else None)
                meter.tick()
                continue
            if i in winners and doc.original_id is not None:
                former = doc.original_id
                row = s.get(Document, doc.id)
                assert row is not None
                documents.promote_to_original(s, row)
                doc.original_id = None
                moved[former] = doc.id
            rows.append(
                {
                    "id": e.id,
                    "state": "done",
                    "document_id": doc.id,
                    "reason": None,
                    "detail": None,
                    "role": "copy" if doc.original_id is not None else "original",
                    "original_document_id": doc.original_id,
                    "mime_type": self._mime.get(e.sha256 or "", e.mime_type),
                    "updated_at": now,
                }
            )
            meter.tick(e.size or 0)
        for r in rows:
            if r["original_document_id"] in moved:
                r["original_document_id"] = moved[r["original_document_id"]]
        if rows:  # one executemany (bulk UPDATE by primary key), committed with the documents
            s.execute(update(ImportEntry), rows)

    def _staged_result(
        self,
        s: Session,
        e: ImportEntry,
        res: dict[str, Any],
        local: LocalBlobStore | None,
        meter: _Meter,
    ) -> StagedBlob | None:
        """The worker's staged copy of ``e``, linked into a local store; None (entry skipped)
        when it could not be read or no longer has the hashed content."""
        if "path" not in res:
            self._skip(s, e, res["reason"], res.get("detail"))
            meter.tick()
            return None
        res["taken"] = True  # from here on the staged file is this flow's to store or discard
        staged = StagedBlob(res["sha256"], res["size"], Path(res["path"]), res["head"])
        if staged.sha256 != e.sha256:
            self.store.discard(staged)
            self._skip(s, e, "changed_while_reading", "content changed after hashing")
            meter.tick()
            return None
        if local is not None and staged.sha256 not in self._now_linked:
            local.put_staged_deferred(staged)
        return staged

    def _skip_already_imported(
        self, s: Session, by_sha: dict[str, list[ImportEntry]], meter: _Meter
    ) -> None:
        """A path an earlier completed run already brought into the same folder, with the same
        content, is not placed twice (importing a share again only adds what is new)."""
        pending = {
            (e.sha256, e.path_key): e for es in by_sha.values() for e in es if e.state == "hashed"
        }
        if not pending:
            return
        earlier = s.exec(
            select(ImportEntry.sha256, ImportEntry.path_key, ImportEntry.document_id)
            .join(ImportRun, col(ImportRun.id) == ImportEntry.run_id)
            .join(Document, col(Document.id) == ImportEntry.document_id)
            .where(
                col(ImportEntry.sha256).in_(list(by_sha)),
                ImportEntry.run_id != self.run_id,
                ImportEntry.state == "done",
                ImportRun.root_folder_id == self.root_folder_id,
                Document.state == "live",
                col(ImportEntry.path_key).in_([k for _sha, k in pending]),
            )
        ).all()
        for sha, key, doc_id in earlier:
            e = pending.get((sha, key))
            if e is not None and e.state == "hashed":
                e.original_document_id = doc_id
                self._skip(s, e, "already_imported", f"document {doc_id}")
                meter.tick()

    def _skip(self, s: Session, e: ImportEntry, reason: str, detail: str | None) -> None:
        e.state, e.reason, e.detail = "skipped", reason[:64], detail
        e.updated_at = utcnow()
        s.add(e)
        s.flush()

    def _readable(self, s: Session, doc: Document) -> bool:
        if self.actor.reads_everything:
            return True
        f = s.get(Folder, doc.folder_id)
        case = s.get(Case, f.case_pk) if f and f.case_pk else None
        return f is not None and can_read_folder(self.actor, f, case)

    def _stage_inline(self, s: Session, e: ImportEntry, meter: _Meter) -> StagedBlob | None:
        """Stage ``e`` in this process (fsynced by the stager); None (entry skipped) when it
        cannot be read or no longer has the hashed content."""
        stager = self.store.stager(max_bytes=self.settings.max_upload_bytes)
        try:
            walker.read_stable(self.root, e.rel_path_raw, stager.write)
            staged = stager.finish()
        except walker.SkipEntry as exc:
            stager.abort()
            self._skip(s, e, exc.reason, exc.detail)
            meter.tick()
            return None
        except OSError as exc:
            stager.abort()
            self._skip(s, e, "unreadable", str(exc))
            meter.tick()
            return None
        except BaseException:
            stager.abort()
            raise
        if staged.sha256 != e.sha256:
            self.store.discard(staged)
            self._skip(s, e, "changed_while_reading", "content changed after hashing")
            meter.tick()
            return None
        return staged

    def _provenance(self, e: ImportEntry) -> dict[str, Any]:
        prov: dict[str, Any] = {
            "source": "legacy_import",
            "import_run_id": self.run_id,
            "source_root": walker.decode_path(self.root)[0],
            "source_path": e.rel_path,
            "name_encoding": e.name_encoding,
            "mtime": e.mtime.isoformat() if e.mtime else None,
            "mtime_ns": e.mtime_ns,
            "owner": e.owner,
            "uid": e.uid,
        }
        if e.name_encoding != "utf-8" or e.rel_path_raw != e.rel_path.encode("utf-8"):
            prov["source_path_raw_hex"] = e.rel_path_raw.hex()
        return prov

    def _folder_for(self, s: Session, e: ImportEntry) -> int:
        assert self.root_folder_id is not None
        parts = e.rel_path.split("/")[:-1]
        parent = self.root_folder_id
        key = ""
        for part in parts:
            name = _folder_name(part)
            key = f"{key}/{name}"
            cached = self._folders.get(key)
            if cached is not None:
                parent = cached
                continue
            found = s.exec(
                select(Folder).where(Folder.parent_id == parent, Folder.name == name)
            ).first()
            if found is None:
                try:
                    with s.begin_nested():
                        found = create_folder(s, self.actor, name=name, parent_id=parent)
                except Conflict:
                    found = s.exec(
                        select(Folder).where(Folder.parent_id == parent, Folder.name == name)
                    ).one()
            parent = found.id or 0
            self._folders[key] = parent
        return parent

    # -- 5. near-duplicates -----------------------------------------------------------------------

    def near(self) -> None:
        if self.with_text:
            self.text()  # contents whose text the deposit phase did not extract (resumed runs)
        with Session(self.state) as s:
            shas = select(ImportEntry.sha256).where(
                ImportEntry.run_id == self.run_id,
                col(ImportEntry.state).in_(("done", "planned")),
            )
            sigs = s.exec(
                select(TextSignature.sha256, TextSignature.hashvalues).where(
                    col(TextSignature.sha256).in_(shas),
                    TextSignature.status == "ok",
                )
            ).all()
        # outside any session: the exact check reads texts with sessions of its own
        exact = ExactJaccard(self.engine, None if self.dry_run else self.store, self._source_of)
        try:
            clusters = near_dupes.cluster(
                near_dupes.near_pairs(((a, b) for a, b in sigs if b), self.threshold, exact)
            )
        finally:
            exact.close()
        with session_scope(self.state) as s:
            for old in s.exec(
                select(NearDupCluster).where(NearDupCluster.run_id == self.run_id)
            ).all():
                s.delete(old)
            for c in clusters:
                s.add(
                    NearDupCluster(
                        scope="import",
                        run_id=self.run_id,
                        threshold=self.threshold,
                        size=len(c.members),
                        max_score=c.max_score,
                        min_score=c.min_score,
                        members=c.members,
                        pairs=[list(p) for p in c.pairs],
                    )
                )

    def _source_of(self, sha: str) -> tuple[Path, str | None] | None:
        """A source file of ``sha`` (for a dry run's exact similarity), with its sniffed type."""
        with Session(self.state) as s:
            e = s.exec(
                select(ImportEntry)
                .where(
                    ImportEntry.run_id == self.run_id,
                    ImportEntry.sha256 == sha,
                    col(ImportEntry.state).in_(("done", "planned")),
                )
                .order_by(col(ImportEntry.id))
                .limit(1)
            ).first()
        if e is None or len(self.root) + len(e.rel_path_raw) + 1 >= 4000:
            return None
        return Path(os.fsdecode(self.root + b"/" + e.rel_path_raw)), e.mime_type

    # -- 6. finish --------------------------------------------------------------------------------

    def finish(self, elapsed: float) -> dict[str, Any]:
        with session_scope(self.state) as s:
            summary = summarize(s, self.run_id)
            summary["elapsed_s"] = round(elapsed, 3)
            summary["phase_s"] = dict(self.phase_s)  # seconds per phase of this process
            run = s.get(ImportRun, self.run_id)
            assert run is not None
            run.summary = summary
            run.status = "completed"
            run.phase = "done"
            run.finished_at = utcnow()
            s.add(run)
            if not self.dry_run:
                audit.record(
                    s,
                    actor=self.actor.login,
                    action="import.completed",
                    target_type="import_run",
                    target_id=self.run_id,
                    details={
                        k: summary[k]
                        for k in ("files_seen", "imported", "originals", "copies", "skipped")
                    },
                )
        return summary


def summarize(s: Session, run_id: int) -> dict[str, Any]:
    """Counts of a run: seen, imported, skipped by reason, duplicate groups, bytes saved."""
    rows = s.exec(
        select(ImportEntry.state, ImportEntry.reason, ImportEntry.entry_type, func.count())
        .where(ImportEntry.run_id == run_id)
        .group_by(ImportEntry.state, ImportEntry.reason, ImportEntry.entry_type)
    ).all()
    seen = sum(n for _st, _r, t, n in rows if t == "file")
    entries = sum(n for *_x, n in rows)
    skipped: dict[str, int] = {}
    for st, reason, _t, n in rows:
        if st == "skipped":
            skipped[reason or "unknown"] = skipped.get(reason or "unknown", 0) + n
    placed = ("done", "planned")
    imported = sum(n for st, _r, _t, n in rows if st in placed)
    groups = list(iter_groups(s, run_id, min_size=1))
    dup_groups = [g for g in groups if g.count > 1]
    total_bytes = sum(g.size * g.count for g in groups)
    saved = sum(g.size * (g.count - 1) for g in dup_groups)
    originals = s.exec(
        select(func.count()).where(
            ImportEntry.run_id == run_id,
            col(ImportEntry.state).in_(placed),
            ImportEntry.role == "original",
        )
    ).one()
    near = s.exec(
        select(func.count(), func.coalesce(func.sum(NearDupCluster.size), 0)).where(
            NearDupCluster.run_id == run_id
        )
    ).one()
    return {
        "entries": entries,
        "files_seen": seen,
        "imported": imported,
        "originals": originals,
        "copies": imported - originals,
        "skipped": sum(skipped.values()),
        "skipped_by_reason": dict(sorted(skipped.items())),
        "distinct_contents": len(groups),
        "exact_duplicate_groups": len(dup_groups),
        "bytes_total": total_bytes,
        "bytes_saved": saved,
        "near_duplicate_clusters": near[0],
        "near_duplicate_contents": int(near[1] or 0),
    }


@dataclass
class ExactGroup:
    sha256: str
    size: int
    count: int
    entries: list[ImportEntry]


def iter_groups(s: Session, run_id: int, *, min_size: int = 2) -> Iterator[ExactGroup]:
    """Placed entries grouped by content, originals first, in SHA order (bounded batches)."""
    last = ""
    while True:
        shas = s.exec(
            select(ImportEntry.sha256, func.count(), func.max(ImportEntry.size))
            .where(
                ImportEntry.run_id == run_id,
                col(ImportEntry.state).in_(("done", "planned")),
                col(ImportEntry.sha256) > last,
            )
            .group_by(ImportEntry.sha256)
            .order_by(ImportEntry.sha256)
            .limit(500)
        ).all()
        if not shas:
            return
        last = shas[-1][0] or ""
        wanted = [x for x in shas if x[1] >= min_size]
        if not wanted:
            continue
        entries = s.exec(
            select(ImportEntry).where(
                ImportEntry.run_id == run_id,
                col(ImportEntry.state).in_(("done", "planned")),
                col(ImportEntry.sha256).in_([w[0] for w in wanted]),
            )
        ).all()
        by: dict[str, list[ImportEntry]] = {}
        for e in entries:
            by.setdefault(e.sha256 or "", []).append(e)
        for sha, n, size in wanted:
            es = sorted(by.get(sha or "", []), key=lambda e: (e.role != "original", e.rel_path))
            yield ExactGroup(sha or "", int(size or 0), int(n), es)


# --- read side (API, CLI, report) ------------------------------------------------------------


def require_officer(actor: Actor) -> None:
    require_role(actor, "records_officer", "admin")


def list_runs(
    s: Session, actor: Actor, *, offset: int = 0, limit: int = 50
) -> tuple[list[ImportRun], int]:
    require_officer(actor)
    if offset < 0 or not 1 <= limit <= 500:
        raise InvalidInput("invalid_paging", "offset は0以上、limit は1〜500です。")
    count = s.exec(select(func.count()).select_from(ImportRun)).one()
    runs = s.exec(
        select(ImportRun).order_by(col(ImportRun.id).desc()).offset(offset).limit(limit)
    ).all()
    return list(runs), count


def get_run(s: Session, actor: Actor, run_id: int) -> ImportRun:
    require_officer(actor)
    run = s.get(ImportRun, run_id)
    if run is None:
        raise NotFound("import_run_not_found", "取込が見つかりません。", {"run_id": run_id})
    return run


def list_entries(
    s: Session,
    actor: Actor,
    run_id: int,
    *,
    state: str | None = None,
    reason: str | None = None,
    offset: int = 0,
    limit: int = 100,
) -> tuple[list[ImportEntry], int]:
    get_run(s, actor, run_id)
    if offset < 0 or not 1 <= limit <= 1000:
        raise InvalidInput("invalid_paging", "offset は0以上、limit は1〜1000です。")
    stmt = select(ImportEntry).where(ImportEntry.run_id == run_id)
    if state:
        stmt = stmt.where(ImportEntry.state == state)
    if reason:
        stmt = stmt.where(ImportEntry.reason == reason)
    count = s.exec(select(func.count()).select_from(stmt.subquery())).one()
    items = s.exec(
        stmt.order_by(col(ImportEntry.seq), col(ImportEntry.id)).offset(offset).limit(limit)
    ).all()
    return list(items), count


def planned_entries(s: Session, run_id: int, *, limit: int) -> list[ImportEntry]:
    """What a dry run would do, in walk order (at most ``limit`` entries)."""
    return list(
        s.exec(
            select(ImportEntry)
            .where(ImportEntry.run_id == run_id, ImportEntry.state == "planned")
            .order_by(col(ImportEntry.seq))
            .limit(limit)
        ).all()
    )


def where_is(s: Session, actor: Actor, path: str, *, limit: int = 50) -> list[ImportEntry]:
    """ "Where did my file go": entries whose legacy path ends with ``path`` (NFC)."""
    import unicodedata

    require_officer(actor)
    needle = unicodedata.normalize("NFC", (path or "").strip().strip("/"))
    if not needle:
        raise InvalidInput("path_required", "探すパスを指定してください。")
    if len(needle) > 4096:
        raise InvalidInput("path_too_long", "パスが長すぎます。")
    like = needle.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    stmt = (
        select(ImportEntry)
        .where(
            (ImportEntry.rel_path == needle)
            | col(ImportEntry.rel_path).like(f"%/{like}", escape="\\")
        )
        .order_by(col(ImportEntry.id).desc())
        .limit(limit)
    )
    return list(s.exec(stmt).all())


def near_clusters(
    s: Session, actor: Actor, *, run_id: int | None = None, offset: int = 0, limit: int = 100
) -> tuple[list[NearDupCluster], int]:
    require_officer(actor)
    if offset < 0 or not 1 <= limit <= 1000:
        raise InvalidInput("invalid_paging", "offset は0以上、limit は1〜1000です。")
    if run_id is not None:
        get_run(s, actor, run_id)
        stmt = select(NearDupCluster).where(NearDupCluster.run_id == run_id)
    else:
        stmt = select(NearDupCluster).where(NearDupCluster.scope == "genpon")
    count = s.exec(select(func.count()).select_from(stmt.subquery())).one()
    items = s.exec(stmt.order_by(col(NearDupCluster.id)).offset(offset).limit(limit)).all()
    return list(items), count


def paths_by_sha(s: Session, run_id: int, shas: Iterable[str]) -> dict[str, list[ImportEntry]]:
    out: dict[str, list[ImportEntry]] = {}
    wanted = list(shas)
    for i in range(0, len(wanted), 500):
        for e in s.exec(
            select(ImportEntry)
            .where(
                ImportEntry.run_id == run_id,
                col(ImportEntry.sha256).in_(wanted[i : i + 500]),
                col(ImportEntry.state).in_(("done", "planned")),
            )
            .order_by(col(ImportEntry.rel_path))
        ).all():
            out.setdefault(e.sha256 or "", []).append(e)
    return out


# --- near-duplicates among documents already in Genpon ----------------------------------------


@dataclass
class NearScan:
    contents: int
    signed: int
    clusters: list[NearDupCluster]


def scan_genpon(
    engine: Engine,
    store: BlobStore,
    actor: Actor,
    *,
    threshold: float = DEFAULT_THRESHOLD,
    workers: int = 1,
    progress: Progress | None = None,
) -> NearScan:
    """``genpon duplicates near``: signatures for live contents that have none, then clusters
    (replacing the previous ``genpon`` scope clusters). Suggestions only."""
    require_officer(actor)
    threshold = check_threshold(threshold)
    progress = progress or _nullbar
    with Session(engine) as s:
        live = s.exec(
            select(Document.sha256, func.min(Document.mime_type))
            .where(Document.state == "live")
            .group_by(Document.sha256)
        ).all()
        have = _signed(s)
    todo = [(sha, mime) for sha, mime in live if sha not in have]
    todo = _sign_stored_texts(engine, todo)
    meter = _Meter(progress, "テキスト抽出", len(todo))
    ex = _executor(workers)
    try:
        for i in range(0, len(todo), BATCH):
            chunk = todo[i : i + BATCH]
            with contextlib.ExitStack() as files:
                tasks = []
                for sha, mime in chunk:
                    try:
                        lp = os.fsencode(str(files.enter_context(store.as_file(sha))))
                    except FileNotFoundError:
                        continue
                    tasks.append((os.path.dirname(lp), os.path.basename(lp), mime, sha))
                sigs = list(ex.map(_text_task, tasks, chunksize=2))
            with session_scope(engine) as s:
                _save_signatures(s, sigs)
                _save_texts(s, sigs)
            for _sig in sigs:
                meter.tick()
    finally:
        meter.close()
        ex.shutdown(wait=True)
    live_shas = {sha for sha, _m in live}
    with Session(engine) as s:
        sigs_all = [
            (sha, hv)
            for sha, hv in s.exec(
                select(TextSignature.sha256, TextSignature.hashvalues).where(
                    TextSignature.status == "ok"
                )
            ).all()
            if sha in live_shas and hv
        ]
    exact = ExactJaccard(engine, store)  # reads texts with sessions of its own
    try:
        clusters = near_dupes.cluster(near_dupes.near_pairs(sigs_all, threshold, exact))
    finally:
        exact.close()
    with session_scope(engine) as s:
        for old in s.exec(select(NearDupCluster).where(NearDupCluster.scope == "genpon")).all():
            s.delete(old)
        rows = [
            NearDupCluster(
                scope="genpon",
                threshold=threshold,
                size=len(c.members),
                max_score=c.max_score,
                min_score=c.min_score,
                members=c.members,
                pairs=[list(p) for p in c.pairs],
            )
            for c in clusters
        ]
        for r in rows:
            s.add(r)
        s.flush()
    return NearScan(contents=len(live_shas), signed=len(sigs_all), clusters=rows)


def _sign_stored_texts(engine: Engine, todo: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Sign the contents of ``todo`` whose text the search indexer already extracted and stored
    (no second extraction); returns the rest, which need extracting."""
    from genpon.search.indexer import stored_text

    rest: list[tuple[str, str]] = []
    for i in range(0, len(todo), BATCH):
        chunk = todo[i : i + BATCH]
        with Session(engine) as s:
            rows = {
                r.sha256: r
                for r in s.exec(
                    select(BlobText).where(col(BlobText.sha256).in_([sha for sha, _m in chunk]))
                ).all()
            }
            sigs = []
            for sha, mime in chunk:
                row = rows.get(sha)
                if row is None or row.status == "pending":
                    rest.append((sha, mime))
                    continue
                text = stored_text(row)
                sigs.append(near_dupes.sign_text(sha, text, row.status, row.extractor, row.reason))
        with session_scope(engine) as s:
            _save_signatures(s, sigs)
    return rest


def documents_by_sha(s: Session, actor: Actor, shas: Iterable[str]) -> dict[str, list[Document]]:
    """Live documents per content that ``actor`` may read (originals first)."""
    out: dict[str, list[Document]] = {}
    wanted = list(shas)
    for i in range(0, len(wanted), 500):
        for d in s.exec(
            select(Document)
            .where(col(Document.sha256).in_(wanted[i : i + 500]), Document.state == "live")
            .order_by(col(Document.id))
        ).all():
            out.setdefault(d.sha256, []).append(d)
    for sha in out:
        out[sha].sort(key=lambda d: (d.original_id is not None, d.id))
    return out
