"""Phase 2 of an import, ``hash``: every file hashed in the worker pool, read once.

A real import copies each file on the same read into the store's staging directory (named per
content and per process by :func:`staged_name`, no fsync); a background thread syncs the
filesystem meanwhile and one sync at the end of the phase makes every copy durable. The worker
side (:func:`_hash_task`, :class:`_Copy`) is module level, picklable for the process pool."""

from __future__ import annotations

import collections
import contextlib
import os
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from genpon.core.clock import utcnow
from genpon.core.db import session_scope
from genpon.migrate import walker
from genpon.migrate.job import (
    JobState,
    _Meter,
    _mtime,
    _sniff,
    _unlink,
)
from genpon.migrate.models import EntryState, ImportEntry
from genpon.records.sniff import type_allowed
from genpon.storage.base import STAGING_PREFIX, STAGING_SUFFIX
from genpon.storage.local import LocalBlobStore
from sqlalchemy import func, update
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

HASH_PAGE = 1000  # entries per hash page (two pages in flight)


SMALL_COPY = 1 << 20  # files up to this size are copied from memory after hashing


SYNC_EVERY_S = 0.5  # background filesystem sync while the hash phase stages copies


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


def _sync_loop(store: LocalBlobStore, stop: threading.Event) -> None:
    """Flush the store's filesystem every few moments until ``stop`` (overlaps disk writes of
    staged copies with hashing instead of one long sync at the end)."""
    while not stop.wait(SYNC_EVERY_S):
        with contextlib.suppress(OSError):
            store.sync()


class HashPhase(JobState):
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
                            s.execute(
                                # sqlalchemy's select: sqlmodel's is typed for four columns
                                sa_select(
                                    col(ImportEntry.id),
                                    col(ImportEntry.rel_path_raw),
                                    col(ImportEntry.size),
                                    col(ImportEntry.mtime_ns),
                                    col(ImportEntry.mtime),
                                )
                                .where(
                                    col(ImportEntry.run_id) == self.run_id,
                                    col(ImportEntry.state) == EntryState.SEEN,
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
