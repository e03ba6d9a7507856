"""Fixity audits (保管データの定期点検): re-hash stored blobs against their recorded SHA-256.

``run_fixity`` picks blobs (all, a random sample, or those not checked for N days), re-hashes
them with parallel workers through the :class:`~storage.base.BlobStore` interface (local
filesystem or S3 alike), and records:

* ``Blob.last_fixity_at`` / ``Blob.fixity_ok`` for every checked blob (committed in batches, so
  an interrupted run keeps its progress);
* a :class:`~records.audit_models.FixityRun` with the counts, and one
  :class:`~records.audit_models.FixityFinding` per missing or corrupt blob naming the documents,
  cases and folders it backs;
* audit events ``fixity.failed`` (one per finding) and ``fixity.completed`` (the summary), in
  the same transaction as the findings.
"""

from __future__ import annotations

import hashlib
import random
import time
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from genpon.core.clock import utcnow
from genpon.core.db import session_scope
from genpon.core.errors import InvalidInput
from genpon.records.access import Actor, require_role
from genpon.records.audit import chain as audit
from genpon.records.audit.actions import AuditAction
from genpon.records.audit.models import (
    FIXITY_MODES,
    FixityFinding,
    FixityMode,
    FixityProblem,
    FixityRun,
    FixityStatus,
)
from genpon.records.folders import folder_path
from genpon.records.models import Blob, Case, Document, DocumentVersion, Folder
from genpon.storage.base import CHUNK_SIZE, BlobStore
from sqlalchemy import or_, update
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

__all__ = ["BlobCheck", "documents_for", "rehash", "run_fixity", "select_blobs"]

_OK_BATCH = 500


@dataclass(frozen=True)
class BlobCheck:
    """Outcome of re-hashing one blob. ``problem`` is None when the content is intact."""

    sha256: str
    size: int
    problem: FixityProblem | None = None
    actual: str | None = None
    message: str = ""


def rehash(store: BlobStore, sha256: str) -> str:
    """SHA-256 of the stored content; FileNotFoundError when the blob is missing.

    Local blobs are read straight from their file with unbuffered ``readinto`` (no copy per
    chunk); other stores go through :meth:`BlobStore.hash_blob`.
    """
    path = store.local_path(sha256)
    if path is None:
        return store.hash_blob(sha256)
    h = hashlib.sha256()
    buf = bytearray(CHUNK_SIZE)
    view = memoryview(buf)
    with open(path, "rb", buffering=0) as fh:
        while n := fh.readinto(view):
            h.update(view[:n])
    return h.hexdigest()


def _check(store: BlobStore, sha256: str, size: int) -> BlobCheck:
    try:
        actual = rehash(store, sha256)
    except FileNotFoundError:
        return BlobCheck(sha256, size, FixityProblem.MISSING, None, "保管データがありません")
    except Exception as exc:  # a store error is a finding too, never a crash of the run
        return BlobCheck(
            sha256, size, FixityProblem.ERROR, None, f"{type(exc).__name__}: {exc}"[:500]
        )
    if actual != sha256:
        return BlobCheck(
            sha256, size, FixityProblem.CORRUPT, actual, "内容がハッシュと一致しません"
        )
    return BlobCheck(sha256, size)


def select_blobs(
    session: Session,
    *,
    mode: str = "all",
    sample: int | None = None,
    older_than_days: int | None = None,
    rng: random.Random | None = None,
) -> list[tuple[str, int]]:
    """(sha256, size) of the stored blobs a run should check."""
    if mode not in FIXITY_MODES:
        raise InvalidInput("bad_mode", f"点検の方法が不正です: {mode}", {"allowed": FIXITY_MODES})
    stmt = select(Blob.sha256, Blob.size).where(Blob.state == "stored")
    if mode == "older_than":
        if older_than_days is None or older_than_days < 0:
            raise InvalidInput("bad_days", "日数を 0 以上で指定してください。")
        cutoff = utcnow() - timedelta(days=older_than_days)
        stmt = stmt.where(
            or_(col(Blob.last_fixity_at).is_(None), col(Blob.last_fixity_at) < cutoff)
        )
    rows = [(str(s), int(n)) for s, n in session.exec(stmt.order_by(col(Blob.sha256))).all()]
    if mode == "sample":
        if sample is None or sample < 1:
            raise InvalidInput("bad_sample", "抽出件数を 1 以上で指定してください。")
        rows = (rng or random.SystemRandom()).sample(rows, min(sample, len(rows)))
    return rows


def documents_for(session: Session, sha256: str) -> list[dict[str, Any]]:
    """Every document (and version) whose content is ``sha256``: id, case, folder and path."""
    docs = list(session.exec(select(Document).where(Document.sha256 == sha256)).all())
    seen = {d.id for d in docs}
    version_doc_ids = session.exec(
        select(DocumentVersion.document_id).where(DocumentVersion.sha256 == sha256)
    ).all()
    for did in version_doc_ids:
        if did not in seen:
            d = session.get(Document, did)
            if d is not None:
                docs.append(d)
                seen.add(did)
    out: list[dict[str, Any]] = []
    for d in sorted(docs, key=lambda x: x.id or 0):
        folder = session.get(Folder, d.folder_id)
        case = session.get(Case, d.case_pk) if d.case_pk else None
        out.append(
            {
                "document_id": d.id,
                "title": d.title,
                "filename": d.filename,
                "state": d.state,
                "status": d.status,
                "is_original": d.original_id is None,
                "current_content": d.sha256 == sha256,
                "case_id": case.case_id if case else None,
                "folder_id": d.folder_id,
                "folder_path": folder_path(session, folder) if folder else None,
            }
        )
    return out


def _checks(store: BlobStore, blobs: list[tuple[str, int]], workers: int) -> Iterator[BlobCheck]:
    """Re-hash ``blobs`` with ``workers`` threads (hashlib releases the GIL), results as done."""
    if workers <= 1:
        for sha, size in blobs:
            yield _check(store, sha, size)
        return
    todo = iter(blobs)
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="fixity") as pool:
        pending: set[Future[BlobCheck]] = set()
        for sha, size in todo:
            pending.add(pool.submit(_check, store, sha, size))
            if len(pending) >= workers * 2:
                break
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for fut in done:
                yield fut.result()
                nxt = next(todo, None)
                if nxt is not None:
                    pending.add(pool.submit(_check, store, *nxt))


def _mark_ok(engine: Engine, shas: list[str]) -> None:
    if not shas:
        return
    with session_scope(engine) as s:
        s.exec(
            update(Blob)
            .where(col(Blob.sha256).in_(shas))
            .values(last_fixity_at=utcnow(), fixity_ok=True)
        )


def run_fixity(
    engine: Engine,
    store: BlobStore,
    actor: Actor,
    *,
    mode: str = "all",
    sample: int | None = None,
    older_than_days: int | None = None,
    workers: int = 1,
    on_start: Callable[[int, int], None] | None = None,
    progress: Callable[[int], None] | None = None,
    rng: random.Random | None = None,
) -> FixityRun:
    """Run one fixity audit and return its finished :class:`FixityRun`.

    ``on_start(blob_count, total_bytes)`` is called once the blobs are chosen, ``progress``
    with the byte count of each blob as it is done (for a progress bar). Auditors and admins
    only.
    """
    require_role(actor, "auditor", "admin")
    workers = max(1, min(int(workers), 64))
    params: dict[str, Any] = {"sample": sample, "older_than_days": older_than_days}
    with session_scope(engine) as s:
        blobs = select_blobs(s, mode=mode, sample=sample, older_than_days=older_than_days, rng=rng)
        run = FixityRun(
            mode=FixityMode(mode),
            params=params,
            store=store.name,
            actor=actor.login,
            workers=workers,
            selected=len(blobs),
        )
        s.add(run)
        s.flush()
        run_id = run.id or 0
    if on_start is not None:
        on_start(len(blobs), planned_bytes(blobs))
    t0 = time.perf_counter()
    ok_batch: list[str] = []
    bad: list[BlobCheck] = []
    counts = {"checked": 0, "ok": 0, "bytes": 0}
    for res in _checks(store, blobs, workers):
        counts["checked"] += 1
        if res.problem is None:
            counts["ok"] += 1
            counts["bytes"] += res.size
            ok_batch.append(res.sha256)
            if len(ok_batch) >= _OK_BATCH:
                _mark_ok(engine, ok_batch)
                ok_batch = []
        else:
            bad.append(res)
        if progress is not None:
            progress(res.size)
    _mark_ok(engine, ok_batch)
    seconds = time.perf_counter() - t0
    with session_scope(engine) as s:
        return _finish(s, run_id, actor, bad, counts, seconds)


def _finish(
    s: Session,
    run_id: int,
    actor: Actor,
    bad: list[BlobCheck],
    counts: dict[str, int],
    seconds: float,
) -> FixityRun:
    run = s.get(FixityRun, run_id)
    assert run is not None
    now = utcnow()
    problems = {"missing": 0, "corrupt": 0, "error": 0}
    for res in bad:
        blob = s.get(Blob, res.sha256)
        if blob is None or blob.state != "stored":
            counts["checked"] -= 1  # disposed of while we were reading: not a finding
            continue
        problems[res.problem or "error"] += 1
        docs = documents_for(s, res.sha256)
        blob.last_fixity_at = now
        blob.fixity_ok = False
        s.add(blob)
        s.add(
            FixityFinding(
                run_id=run_id,
                sha256=res.sha256,
                problem=res.problem or FixityProblem.ERROR,
                actual_sha256=res.actual,
                message=res.message,
                documents=docs,
            )
        )
        audit.record(
            s,
            actor=actor.login,
            action=AuditAction.FIXITY_FAILED,
            target_type="blob",
            target_id=res.sha256,
            case_id=next((d["case_id"] for d in docs if d["case_id"]), None),
            details={
                "run_id": run_id,
                "problem": res.problem,
                "actual_sha256": res.actual,
                "documents": [
                    {k: d[k] for k in ("document_id", "case_id", "folder_id", "folder_path")}
                    for d in docs
                ],
            },
        )
    run.checked = counts["checked"]
    run.ok = counts["ok"]
    run.missing = problems["missing"]
    run.corrupt = problems["corrupt"]
    run.errors = problems["error"]
    run.bytes_read = counts["bytes"]
    run.seconds = round(seconds, 3)
    run.finished_at = now
    run.status = FixityStatus.DONE
    s.add(run)
    audit.record(
        s,
        actor=actor.login,
        action=AuditAction.FIXITY_COMPLETED,
        target_type="fixity_run",
        target_id=run_id,
        details={
            "mode": run.mode,
            "store": run.store,
            "selected": run.selected,
            "checked": run.checked,
            "ok": run.ok,
            "missing": run.missing,
            "corrupt": run.corrupt,
            "errors": run.errors,
            "bytes": run.bytes_read,
        },
    )
    s.flush()
    return run


def planned_bytes(blobs: list[tuple[str, int]]) -> int:
    return sum(size for _, size in blobs)
