"""The import flow (取込): a legacy share into a team or shared folder, resumably.

A run goes through phases, each recorded on ``import_run.phase`` and each entry's progress on
``import_entry.state``, committed in batches, so a run killed at any point (Ctrl-C, kill -9)
continues where it stopped when the same command is run again, with no duplicate documents:

1. ``scan``    walk the tree (:mod:`.walker`); one entry per path, problems recorded as skipped;
2. ``hash``    hash every file in parallel (read once, re-checked for changes while reading);
3. ``text``    (dry run only) extract text and compute a MinHash signature once per content;
4. ``deposit`` per content group, choose the original by the configured rule
               (:mod:`.config`), deposit it (the only second read: staging into the store)
               and place every other path as a copy pointing to it (no read, no new blob).
               Groups go in batches of ``DEPOSIT_BATCH``, one transaction each: the worker pool
               stages the originals (no fsync per file) and extracts text while this process
               writes the documents; one ``syncfs`` before the commit makes the batch's blobs
               durable, and each placement commits with its entry's new state;
5. ``near``    extract what is still missing (a resumed run), then group near-duplicate
               contents (:mod:`.near_dupes`); suggestions only;
6. ``done``    summary, audit event.

A dry run keeps its run state in a throw-away SQLite file and only reads Genpon's database:
nothing in Genpon, the blob store or the source tree changes. The source tree is only ever read.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from sqlalchemy import func, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Engine
from sqlmodel import Session, SQLModel, col, create_engine, select

from core.clock import utcnow
from core.db import session_scope
from core.errors import Conflict, GenponError, InvalidInput, NotFound
from core.settings import Settings
from records import audit, documents
from records.access import Actor, can_read_folder, require_role, require_write
from records.documents import clean_filename
from records.folders import clean_name, create_folder, folder_path
from records.legacy_import import near_dupes, walker
from records.legacy_import.config import DEFAULT_THRESHOLD, check_threshold, parse_rule
from records.legacy_import.models import ImportEntry, ImportRun, NearDupCluster, TextSignature
from records.models import Case, Document, Folder, Organization
from records.sniff import sniff, type_allowed
from storage.base import HEAD_SIZE, STAGING_PREFIX, STAGING_SUFFIX, BlobStore, StagedBlob
from storage.local import LocalBlobStore

BATCH = 200
DEPOSIT_BATCH = 200  # content groups per deposit transaction (one filesystem sync each)
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


def _hash_task(args: tuple[bytes, bytes, tuple[str, ...]]) -> dict[str, Any]:
    root, rel, allowed = args
    try:
        h = walker.read_stable(root, rel)
    except walker.SkipEntry as exc:
        return {"reason": exc.reason, "detail": exc.detail}
    except OSError as exc:
        return {"reason": "unreadable", "detail": str(exc)}
    if h.size == 0:
        return {"reason": "empty_file", "size": 0, "mtime_ns": h.mtime_ns}
    try:
        mime = sniff(Path(os.fsdecode(root + b"/" + rel)), h.head)
    except Exception:
        mime = "application/octet-stream"
    out = {"sha256": h.sha256, "size": h.size, "mtime_ns": h.mtime_ns, "mime": mime}
    if not type_allowed(mime, allowed):
        out["reason"] = "type_not_allowed"
        out["detail"] = mime
    return out


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


def _save_signature(s: Session, sig: near_dupes.TextSig) -> None:
    s.execute(
        _insert(s)(TextSignature)
        .values(
            sha256=sig.sha256,
            status=sig.status,
            extractor=sig.extractor,
            reason=(sig.reason or "")[:500] or None,
            chars=sig.chars,
            shingle_k=near_dupes.SHINGLE_K,
            num_perm=near_dupes.NUM_PERM,
            hashvalues=sig.hashvalues,
            created_at=utcnow(),
        )
        .on_conflict_do_nothing(index_elements=["sha256"])
    )


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
                # alongside the staging of originals; ``near`` catches up on anything missing.
                job.set_phase("deposit")
                continue
            step()
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
            s.execute(
                ins(ImportEntry)
                .values(rows)
                .on_conflict_do_nothing(index_elements=["run_id", "path_key"])
            )

    # -- 2. hash ----------------------------------------------------------------------------------

    def hash(self) -> None:
        with Session(self.state) as s:
            total = s.exec(
                select(func.count()).where(
                    ImportEntry.run_id == self.run_id, ImportEntry.state == "seen"
                )
            ).one()
        meter = _Meter(self.progress, "ハッシュ", total)
        allowed = tuple(self.settings.allowed_types)
        assert self.executor is not None
        last_id = 0
        try:
            while True:
                with Session(self.state) as s:
                    rows = s.exec(
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
                        .limit(BATCH)
                    ).all()
                if not rows:
                    return
                last_id = rows[-1][0] or 0
                results = list(
                    self.executor.map(
                        _hash_task, [(self.root, r[1], allowed) for r in rows], chunksize=8
                    )
                )
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
        finally:
            meter.close()

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
                    have = set(
                        s.exec(
                            select(TextSignature.sha256).where(
                                col(TextSignature.sha256).in_([x[0] for x in shas])
                            )
                        ).all()
                    )
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
                    for sig in sigs:
                        _save_signature(s, sig)
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
        last_sha = ""
        try:
            while True:
                with Session(self.state) as s:
                    shas = list(
                        s.exec(
                            select(ImportEntry.sha256)
                            .where(
                                ImportEntry.run_id == self.run_id,
                                ImportEntry.state == "hashed",
                                col(ImportEntry.sha256) > last_sha,
                            )
                            .group_by(ImportEntry.sha256)
                            .order_by(ImportEntry.sha256)
                            .limit(DEPOSIT_BATCH)
                        ).all()
                    )
                if not shas:
                    return
                last_sha = shas[-1] or ""
                if self.dry_run:
                    self._plan_groups([x for x in shas if x], meter)
                else:
                    self._deposit_groups([x for x in shas if x], meter)
        finally:
            meter.close()

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
            text_futs = self._submit_text(s, shas, by_sha)
            items: list[documents.BatchItem] = []
            owners: list[ImportEntry] = []
            winners: dict[int, ImportEntry] = {}  # entries displacing a working original
            try:
                if local is not None and any(f is not None for _c, _e, f in plans):
                    # Staged contents durable before they get their store names (a name must
                    # never survive a crash without its bytes); text extraction goes on meanwhile.
                    for _c, _e, f in plans:
                        if f is not None:
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
                for tf in text_futs:
                    _save_signature(s, tf.result())
            finally:
                for it in items:  # not handed over by an error: remove the staged file
                    if it.staged is not None:
                        self.store.discard(it.staged)
                for tf in text_futs:
                    tf.cancel()
                for _c, _e, fut in plans:  # staged files left over by an error: remove them
                    if fut is None or fut.cancel():
                        continue
                    with contextlib.suppress(Exception):
                        res = fut.result()
                        if "path" in res and not res.get("taken"):
                            os.unlink(res["path"])

    def _submit_text(
        self, s: Session, shas: list[str], by_sha: dict[str, list[ImportEntry]]
    ) -> list[Future[Any]]:
        """Text extraction of the batch's new contents, queued behind the staging tasks so the
        workers extract while this process writes documents."""
        if not self.with_text:
            return []
        assert self.executor is not None
        have = set(
            s.exec(select(TextSignature.sha256).where(col(TextSignature.sha256).in_(shas))).all()
        )
        futs = []
        for sha in shas:
            es = by_sha.get(sha)
            if es and sha not in have:
                e = es[0]
                futs.append(
                    self.executor.submit(_text_task, (self.root, e.rel_path_raw, e.mime_type, sha))
                )
        return futs

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
                    mime_type=e.mime_type or "application/octet-stream",
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
        for i, (e, out) in enumerate(zip(owners, outs, strict=True)):
            doc = out.document
            if doc is None:
                err = out.error
                self._skip(s, e, err.code if err else "refused", err.message if err else None)
                meter.tick()
                continue
            if i in winners and doc.original_id is not None:
                former = doc.original_id
                documents.promote_to_original(s, doc)
                moved[former] = doc.id or 0
            e.state, e.document_id, e.reason, e.detail = "done", doc.id, None, None
            e.role = "copy" if doc.original_id is not None else "original"
            e.original_document_id = doc.original_id
            e.updated_at = now
            meter.tick(e.size or 0)
        if moved:
            for e in owners:
                if e.original_document_id in moved:
                    e.original_document_id = moved[e.original_document_id or 0]

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
        if local is not None:
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
            try:
                name = clean_name(part)
            except InvalidInput:
                name = "_"
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
        with session_scope(self.state) as s:
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
            clusters = near_dupes.cluster(
                near_dupes.near_pairs(((a, b) for a, b in sigs if b), self.threshold)
            )
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

    # -- 6. finish --------------------------------------------------------------------------------

    def finish(self, elapsed: float) -> dict[str, Any]:
        with session_scope(self.state) as s:
            summary = summarize(s, self.run_id)
            summary["elapsed_s"] = round(elapsed, 3)
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
        have = set(s.exec(select(TextSignature.sha256)).all())
    todo = [(sha, mime) for sha, mime in live if sha not in have]
    meter = _Meter(progress, "テキスト抽出", len(todo))
    ex = _executor(workers)
    try:
        for i in range(0, len(todo), BATCH):
            chunk = todo[i : i + BATCH]
            with tempfile.TemporaryDirectory(prefix="genpon-near-") as tmp:
                tasks = []
                for sha, mime in chunk:
                    local = store.local_path(sha)
                    if local is None or not local.exists():
                        local = Path(tmp) / sha
                        try:
                            with store.open(sha) as src, local.open("wb") as dst:
                                while block := src.read(1 << 20):
                                    dst.write(block)
                        except FileNotFoundError:
                            continue
                    lp = os.fsencode(str(local))
                    tasks.append((os.path.dirname(lp), os.path.basename(lp), mime, sha))
                sigs = list(ex.map(_text_task, tasks, chunksize=2))
            with session_scope(engine) as s:
                ins = _insert(s)
                for sig in sigs:
                    s.execute(
                        ins(TextSignature)
                        .values(
                            sha256=sig.sha256,
                            status=sig.status,
                            extractor=sig.extractor,
                            reason=(sig.reason or "")[:500] or None,
                            chars=sig.chars,
                            shingle_k=near_dupes.SHINGLE_K,
                            num_perm=near_dupes.NUM_PERM,
                            hashvalues=sig.hashvalues,
                            created_at=utcnow(),
                        )
                        .on_conflict_do_nothing(index_elements=["sha256"])
                    )
                    meter.tick()
    finally:
        meter.close()
        ex.shutdown(wait=True)
    live_shas = {sha for sha, _m in live}
    with session_scope(engine) as s:
        sigs_all = [
            (sha, hv)
            for sha, hv in s.exec(
                select(TextSignature.sha256, TextSignature.hashvalues).where(
                    TextSignature.status == "ok"
                )
            ).all()
            if sha in live_shas and hv
        ]
        clusters = near_dupes.cluster(near_dupes.near_pairs(sigs_all, threshold))
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
