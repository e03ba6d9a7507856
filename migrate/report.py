"""The report of an import run: an HTML page for people (Japanese) and CSV for spreadsheets.

``render_html`` shows the summary, skipped entries with their reasons, exact-duplicate groups
(original first, bytes saved) and near-duplicate clusters with scores and paths; long lists are
cut in the page (the CSV files always have everything). Near-duplicate clusters are sorted
(most similar first, then larger groups), grouped in bands of similarity and paged
(``NEAR_PAGE_SIZE`` a page; :func:`write_report` writes the further pages beside report.html).
Scores are shown with three decimals, cut (never rounded up to 1.000). Times are the city's
(``timezone``) with their offset. CSV is UTF-8 with a BOM so that Excel opens Japanese paths
correctly.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from genpon.core.clock import DEFAULT_TIMEZONE, local_iso, local_text
from genpon.migrate.models import ImportEntry, ImportRun, NearDupCluster
from genpon.migrate.runs import iter_groups, paths_by_sha
from jinja2 import Environment, PackageLoader, select_autoescape
from sqlmodel import Session, col, select

HTML_LIMIT = 1000
NEAR_PAGE_SIZE = 50
# similarity bands of the near-duplicate section: (lowest score, heading)
NEAR_BANDS = [
    (0.95, "ほぼ同一（類似度 0.950 以上）"),
    (0.9, "よく似ている（0.900〜0.949）"),
    (0.0, "似ている（しきい値〜0.899）"),
]

REASONS = {
    "unreadable": "読み取れない（権限など）",
    "unreadable_directory": "フォルダを読み取れない",
    "read_error": "読み取り中のエラー",
    "symlink": "シンボリックリンク（リンク先は取り込まない）",
    "symlink_loop": "シンボリックリンクの循環",
    "broken_symlink": "リンク切れのシンボリックリンク",
    "special_file": "特殊ファイル（FIFO・ソケット・デバイス）",
    "empty_file": "空のファイル（0バイト）",
    "changed_while_reading": "読み取り中に変更された",
    "vanished": "走査後に削除された",
    "too_deep": "フォルダの階層が深すぎる",
    "type_not_allowed": "登録できない種類のファイル",
    "file_too_large": "大きすぎるファイル",
    "already_imported": "以前の取込で登録済み",
}
STATES = {
    "seen": "未処理",
    "hashed": "ハッシュ済み",
    "done": "取込済み",
    "planned": "取込予定",
    "skipped": "取り込まない",
}
ENCODINGS = {"utf-8": "UTF-8", "cp932": "Shift_JIS（CP932）", "undecodable": "判読不能"}


def reason_label(code: str | None) -> str:
    if not code:
        return ""
    return REASONS.get(code, code)


def human_bytes(n: int | None) -> str:
    v = float(n or 0)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if v < 1024 or unit == "TB":
            return f"{v:,.0f} {unit}" if unit == "B" else f"{v:,.1f} {unit}"
        v /= 1024
    return f"{v} B"  # pragma: no cover


_env = Environment(
    loader=PackageLoader("genpon.migrate", "templates"),
    autoescape=select_autoescape(["html"]),
)
_env.filters["bytes"] = human_bytes
_env.filters["reason"] = reason_label
_env.filters["state"] = lambda s: STATES.get(s, s)
_env.filters["encoding"] = lambda s: ENCODINGS.get(s, s)


def fmt_score(score: float | None) -> str:
    """A similarity with three decimals, cut rather than rounded: 0.9995 is "0.999", so only
    identical texts read 1.000."""
    if score is None:
        return ""
    return f"{math.floor(float(score) * 1000 + 1e-9) / 1000:.3f}"


_env.filters["score"] = fmt_score


def near_band(score: float) -> str:
    return next(label for low, label in NEAR_BANDS if score >= low)


def near_page_name(page: int) -> str:
    """The file of a further page of near-duplicates beside report.html."""
    return "report.html" if page <= 1 else f"near-duplicates-{page:03d}.html"


def _run(s: Session, run_id: int) -> ImportRun:
    run = s.get(ImportRun, run_id)
    if run is None:
        raise LookupError(run_id)
    return run


def report_data(
    s: Session,
    run_id: int,
    *,
    timezone: str = DEFAULT_TIMEZONE,
    near_page: int = 1,
    near_page_size: int = NEAR_PAGE_SIZE,
) -> dict[str, Any]:
    from genpon.migrate.service import summarize

    run = _run(s, run_id)
    summary = run.summary or summarize(s, run_id)
    skipped = s.exec(
        select(ImportEntry)
        .where(ImportEntry.run_id == run_id, ImportEntry.state == "skipped")
        .order_by(col(ImportEntry.seq))
        .limit(HTML_LIMIT)
    ).all()
    groups = []
    for g in iter_groups(s, run_id, min_size=2):
        groups.append(g)
        if len(groups) >= HTML_LIMIT:
            break
    order = near_order(s, run_id)
    pages = max(1, math.ceil(len(order) / near_page_size))
    near_page = min(max(1, near_page), pages)
    ids = order[(near_page - 1) * near_page_size : near_page * near_page_size]
    by_id = {
        c.id: c for c in s.exec(select(NearDupCluster).where(col(NearDupCluster.id).in_(ids))).all()
    }
    clusters = [by_id[i] for i in ids if i in by_id]
    paths = paths_by_sha(s, run_id, {m for c in clusters for m in c.members})
    odd_names = s.exec(
        select(ImportEntry)
        .where(ImportEntry.run_id == run_id, ImportEntry.name_encoding != "utf-8")
        .order_by(col(ImportEntry.seq))
        .limit(HTML_LIMIT)
    ).all()

    def when(value: datetime | None) -> str:
        return local_text(value, timezone) if value else ""

    return {
        "run": run,
        "summary": summary,
        "skipped": skipped,
        "groups": groups,
        "clusters": clusters,
        "near_total": len(order),
        "near_page": near_page,
        "near_pages": pages,
        "near_first": (near_page - 1) * near_page_size,
        "near_band": near_band,
        "paths": paths,
        "odd_names": odd_names,
        "limit": HTML_LIMIT,
        "reasons": REASONS,
        "when": when,
        "timezone": timezone,
    }


def near_order(s: Session, run_id: int) -> list[int]:
    """The run's near-duplicate clusters, most similar first, then larger, then older."""
    rows = s.exec(
        select(NearDupCluster.id, NearDupCluster.max_score, NearDupCluster.size).where(
            NearDupCluster.run_id == run_id
        )
    ).all()
    return [i for i, _m, _n in sorted(rows, key=lambda r: (-r[1], -r[2], r[0])) if i is not None]


def render_html(
    s: Session,
    run_id: int,
    *,
    timezone: str = DEFAULT_TIMEZONE,
    near_page: int = 1,
    near_link: Callable[[int], str] | None = None,
) -> str:
    """The report page; ``near_link(page)`` is the address of a page of near-duplicates (the
    API gives ``?near_page=N``, files on disk :func:`near_page_name`)."""
    data = report_data(s, run_id, timezone=timezone, near_page=near_page)
    link = near_link or (lambda page: f"?near_page={page}")
    return _env.get_template("report.html").render(**data, near_link=link)


ENTRY_COLUMNS = [
    "seq",
    "path",
    "path_raw_hex",
    "name_encoding",
    "entry_type",
    "state",
    "reason",
    "reason_ja",
    "detail",
    "size",
    "mtime",
    "owner",
    "sha256",
    "mime_type",
    "role",
    "document_id",
    "original_document_id",
]


def _csv_line(row: list[Any]) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\r\n").writerow(row)
    return buf.getvalue()


def iter_entries_csv(s: Session, run_id: int, *, timezone: str = DEFAULT_TIMEZONE) -> Iterator[str]:
    """entries.csv, streamed in batches (BOM first)."""
    _run(s, run_id)
    yield "\ufeff" + _csv_line(ENTRY_COLUMNS)
    last = 0
    while True:
        rows = s.exec(
            select(ImportEntry)
            .where(ImportEntry.run_id == run_id, col(ImportEntry.id) > last)
            .order_by(col(ImportEntry.id))
            .limit(1000)
        ).all()
        if not rows:
            return
        last = rows[-1].id or 0
        for e in rows:
            raw_hex = e.rel_path_raw.hex() if e.rel_path_raw != e.rel_path.encode("utf-8") else ""
            yield _csv_line(
                [
                    e.seq,
                    e.rel_path,
                    raw_hex,
                    e.name_encoding,
                    e.entry_type,
                    e.state,
                    e.reason or "",
                    reason_label(e.reason),
                    e.detail or "",
                    e.size if e.size is not None else "",
                    local_iso(e.mtime, timezone) if e.mtime else "",
                    e.owner or "",
                    e.sha256 or "",
                    e.mime_type or "",
                    e.role or "",
                    e.document_id or "",
                    e.original_document_id or "",
                ]
            )


def iter_near_csv(s: Session, run_id: int) -> Iterator[str]:
    _run(s, run_id)
    yield "\ufeff" + _csv_line(
        ["cluster_id", "score", "sha256_a", "paths_a", "sha256_b", "paths_b"]
    )
    clusters = s.exec(
        select(NearDupCluster)
        .where(NearDupCluster.run_id == run_id)
        .order_by(col(NearDupCluster.id))
    ).all()
    for c in clusters:
        paths = paths_by_sha(s, run_id, c.members)
        for a, b, score in c.pairs:
            yield _csv_line(
                [
                    c.id,
                    score,
                    a,
                    " | ".join(e.rel_path for e in paths.get(a, [])),
                    b,
                    " | ".join(e.rel_path for e in paths.get(b, [])),
                ]
            )


def write_report(
    s: Session, run_id: int, directory: Path, *, timezone: str = DEFAULT_TIMEZONE
) -> dict[str, Path]:
    """Write report.html (with further pages of near-duplicates beside it), entries.csv and
    near_duplicates.csv into ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    out = {
        "html": directory / "report.html",
        "entries_csv": directory / "entries.csv",
        "near_csv": directory / "near_duplicates.csv",
    }
    pages = max(1, math.ceil(len(near_order(s, run_id)) / NEAR_PAGE_SIZE))
    for page in range(1, pages + 1):
        html = render_html(s, run_id, timezone=timezone, near_page=page, near_link=near_page_name)
        (directory / near_page_name(page)).write_text(html, encoding="utf-8")
        if page > 1:
            out[f"near_page_{page}"] = directory / near_page_name(page)
    with out["entries_csv"].open("w", encoding="utf-8", newline="") as f:
        for line in iter_entries_csv(s, run_id, timezone=timezone):
            f.write(line)
    with out["near_csv"].open("w", encoding="utf-8", newline="") as f:
        for line in iter_near_csv(s, run_id):
            f.write(line)
    return out
