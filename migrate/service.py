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
               compute text signatures from them (:func:`.staging._prep_task`); this
               process creates the batch's subfolders at once, writes the documents with
               :func:`documents.deposit_batch`, syncs the filesystem once (the new names) and
               commits the entries' progress with them. A resumed run (another process) finds
               no staged copy of its own and stages the originals again;
5. ``near``    extract what is still missing (a resumed run), then group near-duplicate
               contents (:mod:`.near_dupes`); suggestions only;
6. ``done``    summary, audit event.

A dry run keeps its run state in a throw-away SQLite file and only reads Genpon's database:
nothing in Genpon, the blob store or the source tree changes. The source tree is only ever read.

Modules: this one runs the phases (:func:`run_import`); :mod:`.scan`, :mod:`.hashing`,
:mod:`.staging` and :mod:`.ranking` (both for the deposit), :mod:`.deposit`, :mod:`.near` hold
one phase each with its worker tasks; :mod:`.job` the state they share; :mod:`.runs` the read
side (API, CLI, report), re-exported here.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from genpon.core.clock import utcnow
from genpon.core.db import session_scope
from genpon.core.errors import Conflict, InvalidInput, NotFound
from genpon.core.settings import Settings
from genpon.migrate import extract_pool, walker
from genpon.migrate.config import DEFAULT_THRESHOLD, check_threshold, parse_rule
from genpon.migrate.deposit import DepositPhase
from genpon.migrate.hashing import HashPhase
from genpon.migrate.job import (
    PHASES,
    Progress,
    _as_bytes,
    _executor,
    _nullbar,
    state_engine_for_dry_run,
)
from genpon.migrate.models import ImportRun, Phase, RunStatus
from genpon.migrate.near import NearPhase, NearScan, scan_genpon
from genpon.migrate.runs import (
    ExactGroup,
    documents_by_sha,
    get_run,
    iter_groups,
    list_entries,
    list_runs,
    near_clusters,
    paths_by_sha,
    planned_entries,
    require_officer,
    summarize,
    where_is,
)
from genpon.migrate.scan import ScanPhase
from genpon.records import audit
from genpon.records.access import Actor, require_write
from genpon.records.audit import AuditAction
from genpon.records.folders import clean_name, create_folder
from genpon.records.models import Folder, FolderKind, Organization
from genpon.storage.base import BlobStore
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

__all__ = [
    "ExactGroup",
    "ImportOptions",
    "ImportResult",
    "NearScan",
    "documents_by_sha",
    "get_run",
    "iter_groups",
    "list_entries",
    "list_runs",
    "near_clusters",
    "paths_by_sha",
    "planned_entries",
    "require_officer",
    "run_import",
    "scan_genpon",
    "summarize",
    "where_is",
]


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
            actor,
            Folder(kind=FolderKind(opts.kind), name=folder_name, organization_id=org.id or 0),
            None,
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


@dataclass
class _RunState:
    """The run row as found (resumed) or created: a resumed run keeps its rule, text and
    threshold settings and continues at its phase."""

    run_id: int
    resumed: bool
    rule: tuple[str, ...]
    with_text: bool
    threshold: float
    phase: str


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
    tmpdir = None
    if opts.dry_run:
        state, tmpdir = state_engine_for_dry_run()
    else:
        state = engine
    run = _open_run(state, actor, opts, root, rule, threshold, folder_name, org_id)
    root_folder_id: int | None = None
    if not opts.dry_run:
        root_folder_id = _ensure_root_folder(engine, actor, org_id, opts.kind, folder_name)
        _attach_root_folder(state, actor, run, root, root_folder_id)
    job = _Job(
        engine=engine,
        state=state,
        store=store,
        settings=settings,
        actor=actor,
        run_id=run.run_id,
        root=root,
        rule=run.rule,
        threshold=run.threshold,
        with_text=run.with_text,
        dry_run=opts.dry_run,
        root_folder_id=root_folder_id,
        folder_name=folder_name,
        progress=progress,
    )
    started = time.monotonic()
    finished = _run_phases(job, run, opts, stop_after)
    summary = job.finish(time.monotonic() - started) if finished else {}
    return ImportResult(
        run.run_id, opts.dry_run, run.resumed, summary, state, root_folder_id, tmpdir
    )


def _open_run(
    state: Engine,
    actor: Actor,
    opts: ImportOptions,
    root: bytes,
    rule: tuple[str, ...],
    threshold: float,
    folder_name: str,
    org_id: int,
) -> _RunState:
    """The unfinished identical run (a real import resumes it), else a new run row."""
    root_display, _enc = walker.decode_path(root)
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
                folder_kind=FolderKind(opts.kind),
                folder_name=folder_name,
                dry_run=opts.dry_run,
                with_text=opts.with_text,
                original_rule=",".join(rule),
                near_threshold=threshold,
                started_by=actor.login,
            )
            s.add(run)
            s.flush()
        return _RunState(
            run_id=run.id or 0,
            resumed=resumed,
            rule=parse_rule(run.original_rule),  # a resumed run keeps its rule
            with_text=run.with_text,
            threshold=run.near_threshold,
            phase=run.phase,
        )


def _attach_root_folder(
    state: Engine, actor: Actor, run: _RunState, root: bytes, root_folder_id: int
) -> None:
    """Record the target folder on the run; a new run's start is an audit event."""
    root_display, _enc = walker.decode_path(root)
    with session_scope(state) as s:
        r = s.get(ImportRun, run.run_id)
        assert r is not None
        if r.root_folder_id is None:
            r.root_folder_id = root_folder_id
            s.add(r)
            if not run.resumed:
                audit.record(
                    s,
                    actor=actor.login,
                    action=AuditAction.IMPORT_STARTED,
                    target_type="import_run",
                    target_id=run.run_id,
                    details={
                        "source": root_display,
                        "folder_id": root_folder_id,
                        "rule": r.original_rule,
                    },
                )


def _run_phases(job: _Job, run: _RunState, opts: ImportOptions, stop_after: str | None) -> bool:
    """Run the phases from the run's current one on; False when ``stop_after`` ended it early."""
    with contextlib.ExitStack() as stack:
        extract_pool.configure(job.settings)  # OCR as the settings say, in every worker
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
        start_at = PHASES.index(run.phase)
        for name, step in steps:
            if PHASES.index(name) < start_at:
                continue
            if name == "text" and (not run.with_text or not opts.dry_run):
                # A real import extracts text during the deposit phase, in the worker pool
                # from the staged copies; ``near`` catches up on anything missing.
                job.set_phase("deposit")
                continue
            t0 = time.monotonic()
            step()
            job.phase_s[name] = round(time.monotonic() - t0, 3)
            job.set_phase(PHASES[PHASES.index(name) + 1])
            if stop_after == name:
                return False
    return True


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


class _Job(ScanPhase, HashPhase, DepositPhase, NearPhase):
    """One import run in this process: the phases in the order :func:`_run_phases` calls them."""

    def finish(self, elapsed: float) -> dict[str, Any]:
        with session_scope(self.state) as s:
            summary = summarize(s, self.run_id)
            summary["elapsed_s"] = round(elapsed, 3)
            summary["phase_s"] = dict(self.phase_s)  # seconds per phase of this process
            run = s.get(ImportRun, self.run_id)
            assert run is not None
            run.summary = summary
            run.status = RunStatus.COMPLETED
            run.phase = Phase.DONE
            run.finished_at = utcnow()
            s.add(run)
            if not self.dry_run:
                audit.record(
                    s,
                    actor=self.actor.login,
                    action=AuditAction.IMPORT_COMPLETED,
                    target_type="import_run",
                    target_id=self.run_id,
                    details={
                        k: summary[k]
                        for k in ("files_seen", "imported", "originals", "copies", "skipped")
                    },
                )
        return summary
