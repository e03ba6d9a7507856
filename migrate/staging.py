"""Getting contents ready for their deposit (phase 4): one batch ahead of its deposit, the
workers sniff each content's type once (libmagic, as a deposit does), give the staged copies
their store names (:func:`_prep_task`) and compute text signatures from them; a content with no
staged copy of this process is staged again (:func:`_stage_task`, or inline)."""

from __future__ import annotations

import contextlib
import os
import tempfile
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from genpon.migrate import near_dupes, walker
from genpon.migrate.hashing import staged_name
from genpon.migrate.job import (
    JobState,
    _Meter,
    _sniff,
    _unlink,
)
from genpon.migrate.models import ImportEntry
from genpon.migrate.near import _signed, _text_task
from genpon.records.sniff import type_allowed
from genpon.storage.base import HEAD_SIZE, STAGING_PREFIX, STAGING_SUFFIX, StagedBlob
from genpon.storage.local import LocalBlobStore
from sqlmodel import Session, col, select

PREP_CHUNK = 50  # contents sniffed (and linked into the store) per worker task


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


class StagingMixin(JobState):
    """The deposit phase's side of staging: queue the workers' preparation, read its results,
    stage what no worker staged."""

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
            assert sha is not None  # selected by sha256 IN (…)
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
