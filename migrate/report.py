"""The report of an import run: an HTML page for people (Japanese) and CSV for spreadsheets.

``render_html`` shows the summary, skipped entries with their reasons, exact-duplicate groups
(original first, bytes saved) and near-duplicate clusters with scores and paths; long lists are
cut in the page (the CSV files always have everything). CSV is UTF-8 with a BOM so that Excel
opens Japanese paths correctly.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from genpon.migrate.models import ImportEntry, ImportRun, NearDupCluster
from genpon.migrate.runs import iter_groups, paths_by_sha
from jinja2 import Environment, PackageLoader, select_autoescape
from sqlmodel import Session, col, select

HTML_LIMIT = 1000

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


def _run(s: Session, run_id: int) -> ImportRun:
    run = s.get(ImportRun, run_id)
    if run is None:
        raise LookupError(run_id)
    return run


def report_data(s: Session, run_id: int) -> dict[str, Any]:
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
    clusters = list(
        s.exec(
            select(NearDupCluster)
            .where(NearDupCluster.run_id == run_id)
            .order_by(col(NearDupCluster.id))
            .limit(HTML_LIMIT)
        ).all()
    )
    paths = paths_by_sha(s, run_id, {m for c in clusters for m in c.members})
    odd_names = s.exec(
        select(ImportEntry)
        .where(ImportEntry.run_id == run_id, ImportEntry.name_encoding != "utf-8")
        .order_by(col(ImportEntry.seq))
        .limit(HTML_LIMIT)
    ).all()
    return {
        "run": run,
        "summary": summary,
        "skipped": skipped,
        "groups": groups,
        "clusters": clusters,
        "paths": paths,
        "odd_names": odd_names,
        "limit": HTML_LIMIT,
        "reasons": REASONS,
    }


def render_html(s: Session, run_id: int) -> str:
    return _env.get_template("report.html").render(**report_data(s, run_id))


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


def iter_entries_csv(s: Session, run_id: int) -> Iterator[str]:
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
                    e.mtime.isoformat() if e.mtime else "",
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


def write_report(s: Session, run_id: int, directory: Path) -> dict[str, Path]:
    """Write report.html, entries.csv and near_duplicates.csv into ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    out = {
        "html": directory / "report.html",
        "entries_csv": directory / "entries.csv",
        "near_csv": directory / "near_duplicates.csv",
    }
    out["html"].write_text(render_html(s, run_id), encoding="utf-8")
    with out["entries_csv"].open("w", encoding="utf-8", newline="") as f:
        for line in iter_entries_csv(s, run_id):
            f.write(line)
    with out["near_csv"].open("w", encoding="utf-8", newline="") as f:
        for line in iter_near_csv(s, run_id):
            f.write(line)
    return out
