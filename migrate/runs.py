"""The read side of imports (API, CLI, report): runs, entries, exact groups, near clusters, and
the summary a finished run records."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from genpon.core.errors import InvalidInput, NotFound
from genpon.migrate.models import ImportEntry, ImportRun, NearDupCluster
from genpon.records.access import Actor, require_role
from genpon.records.models import Document
from sqlalchemy import func
from sqlmodel import Session, col, select


def summarize(s: Session, run_id: int) -> dict[str, Any]:
    """Counts of a run: seen, imported, skipped by reason, duplicate groups, bytes saved."""
    rows = s.exec(
        select(ImportEntry.state, ImportEntry.reason, ImportEntry.entry_type, func.count())
        .where(ImportEntry.run_id == run_id)
        .group_by(col(ImportEntry.state), col(ImportEntry.reason), col(ImportEntry.entry_type))
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
            (col(ImportEntry.rel_path) == needle)
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
