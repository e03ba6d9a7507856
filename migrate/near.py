"""Texts and near-duplicates: phase 3 ``text`` (a dry run extracts text and signs each content
once), phase 5 ``near`` (catch up on missing signatures, then cluster near-duplicate contents,
suggestions only), and :func:`scan_genpon`, the same over the documents already in Genpon.
The algorithms (shingles, MinHash, LSH) are in :mod:`.near_dupes`."""

from __future__ import annotations

import collections
import contextlib
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from genpon.core.clock import utcnow
from genpon.core.db import session_scope
from genpon.migrate import extract_pool, near_dupes, walker
from genpon.migrate.config import DEFAULT_THRESHOLD, check_threshold
from genpon.migrate.job import (
    JobState,
    Progress,
    _executor,
    _insert,
    _Meter,
    _nullbar,
)
from genpon.migrate.models import ImportEntry, NearDupCluster, NearScope, TextSignature
from genpon.migrate.runs import require_officer
from genpon.records.access import Actor
from genpon.records.models import Blob, BlobText, Document
from genpon.storage.base import BlobStore
from sqlalchemy import func
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

BATCH = 200
# Texts up to this many characters are cheap to shingle: a reported pair of two such texts gets
# its exact Jaccard as its score (the MinHash estimate can be off by ±0.1 for short texts).
EXACT_MAX_CHARS = 50_000


def exact_when_cheap(
    pairs: Iterable[tuple[str, str, float]],
    exact: Callable[[str, str], float | None],
    chars: dict[str, int],
    threshold: float,
    max_chars: int = EXACT_MAX_CHARS,
) -> Iterator[tuple[str, str, float]]:
    """The reported pairs with the exact shingle Jaccard as score when both texts are short
    (``chars``), dropping a pair whose exact score is below ``threshold``; the estimate stays
    for long texts or when a text cannot be read."""
    for a, b, score in pairs:
        if chars.get(a, max_chars + 1) <= max_chars and chars.get(b, max_chars + 1) <= max_chars:
            checked = exact(a, b)
            if checked is not None:
                if checked < threshold:
                    continue
                score = round(checked, 4)
        yield a, b, score


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


class NearPhase(JobState):
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

    def near(self) -> None:
        if self.with_text:
            self.text()  # contents whose text the deposit phase did not extract (resumed runs)
        with Session(self.state) as s:
            shas = select(ImportEntry.sha256).where(
                ImportEntry.run_id == self.run_id,
                col(ImportEntry.state).in_(("done", "planned")),
            )
            rows = s.exec(
                select(TextSignature.sha256, TextSignature.hashvalues, TextSignature.chars).where(
                    col(TextSignature.sha256).in_(shas),
                    TextSignature.status == "ok",
                )
            ).all()
        sigs = [(a, b) for a, b, _n in rows if b]
        chars = {a: n for a, _b, n in rows}
        # outside any session: the exact check reads texts with sessions of its own
        exact = ExactJaccard(self.engine, None if self.dry_run else self.store, self._source_of)
        try:
            pairs = near_dupes.near_pairs(sigs, self.threshold, exact)
            clusters = near_dupes.cluster(exact_when_cheap(pairs, exact, chars, self.threshold))
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
                        scope=NearScope.IMPORT,
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
    _sign_blobs(engine, store, todo, workers, progress)
    live_shas = {sha for sha, _m in live}
    with Session(engine) as s:
        rows = [
            (sha, hv, n)
            for sha, hv, n in s.exec(
                select(TextSignature.sha256, TextSignature.hashvalues, TextSignature.chars).where(
                    TextSignature.status == "ok"
                )
            ).all()
            if sha in live_shas and hv
        ]
    sigs_all = [(sha, hv) for sha, hv, _n in rows]
    chars = {sha: n for sha, _hv, n in rows}
    exact = ExactJaccard(engine, store)  # reads texts with sessions of its own
    try:
        pairs = near_dupes.near_pairs(sigs_all, threshold, exact)
        clusters = near_dupes.cluster(exact_when_cheap(pairs, exact, chars, threshold))
    finally:
        exact.close()
    saved = _replace_genpon_clusters(engine, clusters, threshold)
    return NearScan(contents=len(live_shas), signed=len(sigs_all), clusters=saved)


def _sign_blobs(
    engine: Engine,
    store: BlobStore,
    todo: list[tuple[str, str]],
    workers: int,
    progress: Progress,
) -> None:
    """Extract the text of the stored blobs of ``todo`` in the worker pool and sign them."""
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


def _replace_genpon_clusters(
    engine: Engine, clusters: list[near_dupes.Cluster], threshold: float
) -> list[NearDupCluster]:
    with session_scope(engine) as s:
        for old in s.exec(select(NearDupCluster).where(NearDupCluster.scope == "genpon")).all():
            s.delete(old)
        rows = [
            NearDupCluster(
                scope=NearScope.GENPON,
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
    return rows


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
