"""CLI of the legacy import: ``genpon import PATH`` and ``genpon duplicates near``."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from genpon.api.cli.common import ctx, fail, out, unit
from genpon.migrate.config import DEFAULT_THRESHOLD

if TYPE_CHECKING:
    from genpon.migrate.service import ImportResult

PLAN_LINES = 50


def _progress(label: str, total: int) -> Any:
    from tqdm import tqdm

    return tqdm(
        total=total or None,
        desc=label,
        unit="files",
        file=sys.stderr,
        disable=None,  # only on a terminal
        dynamic_ncols=True,
        leave=False,
    )


def import_(
    path: Annotated[str, typer.Argument(help="取込元のディレクトリ（共有フォルダ）")],
    org: Annotated[str, typer.Option("--org", help="取込先の所属コード")],
    kind: Annotated[str, typer.Option("--kind", help="team | shared")],
    folder: Annotated[
        str | None,
        typer.Option("--folder", help="取込先の最上位フォルダ名（既定: 取込元の名前）"),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="何も変更せず、何が起きるかを表示する")
    ] = False,
    report: Annotated[
        Path | None,
        typer.Option("--report", help="レポート（HTML・CSV）を書き出すディレクトリ"),
    ] = None,
    workers: Annotated[int | None, typer.Option("--workers", help="並列数（既定: CPU数）")] = None,
    no_text: Annotated[
        bool, typer.Option("--no-text", help="テキスト抽出と類似ファイル検出をしない")
    ] = False,
    threshold: Annotated[
        float, typer.Option("--threshold", help="類似ファイルとみなす類似度")
    ] = DEFAULT_THRESHOLD,
) -> None:
    """共有フォルダのファイルを取り込む（重複は写しに、類似ファイルはレポートに）。
    中断しても同じコマンドで続きから再開する。取込元は読むだけで変更しない。"""
    from genpon.migrate.service import ImportOptions, run_import

    c = ctx()
    with unit() as (_s, actor):
        pass
    opts = ImportOptions(
        root=os.fsencode(path),
        org_code=org,
        kind=kind,
        folder_name=folder,
        dry_run=dry_run,
        workers=workers if workers is not None else (os.cpu_count() or 1),
        with_text=not no_text,
        threshold=threshold,
    )
    result = run_import(c.engine, c.store, c.settings, actor, opts, progress=_progress)
    try:
        _show_import(result, dry_run, report)
    finally:
        result.close()


def _show_import(result: ImportResult, dry_run: bool, report: Path | None) -> None:
    """The summary of an import run (and, for a dry run, its plan); writes the report."""
    from genpon.migrate import report as report_mod
    from sqlmodel import Session

    with Session(result.state_engine) as s:
        files = (
            report_mod.write_report(s, result.run_id, report, timezone=ctx().settings.timezone)
            if report is not None
            else {}
        )
        plan = _plan_lines(s, result.run_id) if dry_run else []
    sm = result.summary
    head = "試行（何も変更していません）" if dry_run else "取込"
    lines = [
        f"{head} #{result.run_id}{'（再開）' if result.resumed else ''}: "
        f"ファイル {sm['files_seen']} 件 / {'取込予定' if dry_run else '取込'} {sm['imported']} 件"
        f"（原本 {sm['originals']}・写し {sm['copies']}）/ 取り込まない {sm['skipped']} 件",
        f"重複グループ {sm['exact_duplicate_groups']} 件（節約 {sm['bytes_saved']:,} バイト）"
        f" / 類似ファイルのグループ {sm['near_duplicate_clusters']} 件",
    ]
    lines += [
        f"  取り込まない: {report_mod.reason_label(k)} {n} 件"
        for k, n in sm["skipped_by_reason"].items()
    ]
    lines += plan
    if files:
        lines.append(f"レポート: {files['html']}")
    data = {
        "run_id": result.run_id,
        "dry_run": dry_run,
        "resumed": result.resumed,
        "root_folder_id": result.root_folder_id,
        "summary": sm,
        "report": {k: str(v) for k, v in files.items()},
    }
    out(data, "\n".join(lines))


def near(
    threshold: Annotated[
        float, typer.Option("--threshold", help="類似度のしきい値（0.3〜1.0）")
    ] = DEFAULT_THRESHOLD,
    workers: Annotated[int, typer.Option("--workers")] = 1,
) -> None:
    """Genpon に保管済みの文書から、本文がほぼ同じものを探す（確認用の提案のみ）。"""
    from genpon.migrate.service import documents_by_sha, scan_genpon
    from genpon.records.folders import folder_path
    from genpon.records.models import Folder
    from sqlmodel import Session

    c = ctx()
    with unit() as (_s, actor):
        pass
    if workers < 1 or workers > 64:
        fail("--workers は 1〜64 で指定してください。")
    scan = scan_genpon(
        c.engine, c.store, actor, threshold=threshold, workers=workers, progress=_progress
    )
    clusters: list[dict[str, Any]] = []
    lines = [
        f"内容 {scan.contents} 件（本文あり {scan.signed} 件）/ 類似グループ {len(scan.clusters)} 件"
    ]
    with Session(c.engine) as s:
        docs = documents_by_sha(s, actor, {m for cl in scan.clusters for m in cl.members})
        for i, cl in enumerate(scan.clusters, 1):
            members = []
            for sha in cl.members:
                d = docs.get(sha, [None])[0]
                f = s.get(Folder, d.folder_id) if d else None
                members.append(
                    {
                        "sha256": sha,
                        "document_id": d.id if d else None,
                        "title": d.title if d else None,
                        "folder_path": folder_path(s, f) if f else None,
                    }
                )
            clusters.append(
                {
                    "id": cl.id,
                    "max_score": cl.max_score,
                    "min_score": cl.min_score,
                    "members": members,
                    "pairs": cl.pairs,
                }
            )
            lines.append(f"グループ {i}（類似度 {cl.min_score:.2f}〜{cl.max_score:.2f}）")
            lines += [
                f"  文書 {m['document_id']}\t{m['title']}\t{m['folder_path']}" for m in members
            ]
    out(
        {
            "contents": scan.contents,
            "signed": scan.signed,
            "threshold": threshold,
            "clusters": clusters,
        },
        "\n".join(lines),
    )


def _plan_lines(s: Any, run_id: int) -> list[str]:
    from genpon.migrate.service import planned_entries

    rows = planned_entries(s, run_id, limit=PLAN_LINES + 1)
    lines = []
    for e in rows[:PLAN_LINES]:
        what = "原本として登録" if e.role == "original" else "写しとして登録"
        if e.original_document_id:
            what += f"（既存の原本 文書 {e.original_document_id}）"
        lines.append(f"  {what}: {e.rel_path}")
    if len(rows) > PLAN_LINES:
        lines.append("  …（全件は --report のレポートを見てください）")
    return lines


def register(app: typer.Typer) -> None:
    dup_app = typer.Typer(help="重複・類似ファイル", no_args_is_help=True)
    app.add_typer(dup_app, name="duplicates")
    app.command("import")(import_)
    dup_app.command("near")(near)
