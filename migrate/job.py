"""What the phases of an import run share (:mod:`.service` runs them in order): the run's state
(:class:`JobState`, one object per process, each phase a mixin of :class:`.service._Job`), the
worker pool, the progress meter and small helpers. The worker tasks live with their phase:
:mod:`.hashing`, :mod:`.staging`, :mod:`.near`.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from multiprocessing import get_context
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

from genpon.core.clock import utcnow
from genpon.core.db import session_scope
from genpon.core.errors import InvalidInput
from genpon.core.settings import Settings
from genpon.migrate import near_dupes
from genpon.migrate.models import EntryState, ImportEntry, ImportRun, NearDupCluster, TextSignature
from genpon.records.access import Actor
from genpon.records.folders import clean_name
from genpon.records.sniff import sniff
from genpon.storage.base import BlobStore
from sqlalchemy import update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Engine
from sqlmodel import Session, SQLModel, col, create_engine

STATE_TABLES: tuple[type[SQLModel], ...] = (ImportRun, ImportEntry, TextSignature, NearDupCluster)

_T = TypeVar("_T")
_P = ParamSpec("_P")


PHASES = ("scan", "hash", "text", "deposit", "near", "done")


Progress = Callable[[str, int], Any]  # (phase label, total) -> tqdm-like object or None


class _Inline(Executor):
    """Executor running tasks in this process (workers=1; also keeps tests fast)."""

    def map(
        self,
        fn: Callable[..., _T],
        *iterables: Iterable[Any],
        timeout: float | None = None,
        chunksize: int = 1,
    ) -> Iterator[_T]:
        return map(fn, *iterables)

    def submit(self, fn: Callable[_P, _T], /, *args: _P.args, **kwargs: _P.kwargs) -> Future[_T]:
        fut: Future[_T] = Future()
        try:
            fut.set_result(fn(*args, **kwargs))
        except BaseException as exc:  # handed to the caller via the future
            fut.set_exception(exc)
        return fut


def _executor(workers: int) -> Executor:
    if workers <= 1:
        return _Inline()
    return ProcessPoolExecutor(max_workers=workers, mp_context=get_context("fork"))


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
    SQLModel.metadata.create_all(engine, tables=[t.__table__ for t in STATE_TABLES])  # type: ignore[attr-defined]  # set by the metaclass
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


def _sniff(path: Path, head: bytes) -> str:
    try:
        return sniff(path, head)
    except Exception:
        return "application/octet-stream"


def _unlink(path: str) -> None:
    if path:
        with contextlib.suppress(OSError):
            os.unlink(path)


def _folder_name(part: str) -> str:
    try:
        return clean_name(part)
    except InvalidInput:
        return "_"


@dataclass
class JobState:
    """The state of one import run in this process; the phases are mixins of this class."""

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
            s.execute(update(ImportRun).where(col(ImportRun.id) == self.run_id).values(phase=phase))

    def _skip(self, s: Session, e: ImportEntry, reason: str, detail: str | None) -> None:
        e.state, e.reason, e.detail = EntryState.SKIPPED, reason[:64], detail
        e.updated_at = utcnow()
        s.add(e)
        s.flush()
