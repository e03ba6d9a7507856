"""Phase 4 of an import, ``deposit`` (a dry run: plan): per content group, the original chosen
by rank (:mod:`.ranking`) is deposited and every other path placed as a copy pointing to it
(no read, no new blob). Groups go in batches of ``DEPOSIT_BATCH``, one transaction each, through
:func:`documents.deposit_batch`; the batch's subfolders are created at once, the filesystem is
synced once (the new names) and the entries' progress commits with the documents."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable
from concurrent.futures import Future
from datetime import date
from typing import Any

from genpon.core.clock import local_date, local_iso, mtime_date, utcnow
from genpon.core.db import session_scope
from genpon.core.errors import Conflict, GenponError
from genpon.migrate import walker
from genpon.migrate.job import (
    _folder_name,
    _Meter,
)
from genpon.migrate.models import EntryRole, EntryState, ImportEntry, ImportRun
from genpon.migrate.near import _save_signatures, _save_texts
from genpon.migrate.ranking import RankingMixin, _Candidate
from genpon.migrate.staging import StagingMixin, _stage_task
from genpon.records import documents
from genpon.records.documents import clean_filename
from genpon.records.folders import create_folder, create_folder_paths
from genpon.records.models import Document, Folder
from genpon.storage.base import StagedBlob
from genpon.storage.local import LocalBlobStore
from sqlalchemy import func, update
from sqlmodel import Session, col, select

DEPOSIT_BATCH = 1000  # content groups per deposit transaction (one filesystem sync each)


class DepositPhase(StagingMixin, RankingMixin):
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
                    e.state = EntryState.PLANNED
                    e.role = EntryRole.ORIGINAL if c is winner else EntryRole.COPY
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
                    doc_date=self._doc_date(e) if mine else None,
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

    def _doc_date(self, e: ImportEntry) -> date | None:
        """文書日付 of an imported file: its mtime's date in the city (not the UTC date, and not
        the process's local time)."""
        if e.mtime_ns is not None:
            return mtime_date(e.mtime_ns / 1e9, self.settings.timezone)
        return local_date(e.mtime, self.settings.timezone) if e.mtime else None

    def _provenance(self, e: ImportEntry) -> dict[str, Any]:
        prov: dict[str, Any] = {
            "source": "legacy_import",
            "import_run_id": self.run_id,
            "source_root": walker.decode_path(self.root)[0],
            "source_path": e.rel_path,
            "name_encoding": e.name_encoding,
            "mtime": local_iso(e.mtime, self.settings.timezone) if e.mtime else None,
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
