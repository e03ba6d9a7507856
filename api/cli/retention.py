"""genpon retention … / genpon certificate verify: the retention cycle from the command line.

    genpon retention due [--as-of D] [--csv FILE|-] [--org] [--class] [--disposition] [--case]
    genpon retention hold SCOPE REF --type T --reason R      (SCOPE: document | case | class)
    genpon retention holds [--all] / release HOLD_ID --reason R
    genpon retention extend SCOPE REF --years N --reason R
    genpon retention batch create --action destroy|transfer [--doc ID …] [--as-of D]
    genpon retention batch list | show ID | approve ID | reject ID --reason | execute ID
    genpon retention approve|reject|execute ID      (shortcuts of the batch commands)
    genpon retention transfer ID [--dest DIR] / acknowledge ID [--receipt REF]
    genpon retention certificate ID [--html] [-o FILE]
    genpon retention register [--org] [--fiscal-year] [--format csv|xlsx] -o FILE
    genpon certificate verify FILE [--public-key PEM]

Act as a records officer with ``genpon --as LOGIN``.
"""

from __future__ import annotations

import io
import sys
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Annotated, Any

import typer
from genpon.api.cli.common import _state, ctx, fail, out, unit

retention_app = typer.Typer(
    help="保存期間・保留・延長・廃棄・移管・ファイル管理簿", no_args_is_help=True
)
batch_app = typer.Typer(help="廃棄伺い・移管伺い（作成・審査・実行）", no_args_is_help=True)
certificate_app = typer.Typer(help="廃棄証明書", no_args_is_help=True)
retention_app.add_typer(batch_app, name="batch")

DocOpt = Annotated[list[int] | None, typer.Option("--doc", help="文書ID（複数可）")]


def _date(raw: str | None) -> date | None:
    if raw is None:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        fail(f"日付は YYYY-MM-DD で指定してください: {raw}")
        raise


def _actor() -> Any:
    """The acting user (``--as``), resolved in a short transaction."""
    with unit() as (_s, actor):
        return actor


def _progress(label: str) -> tuple[Callable[[int, int], None], Callable[[], None]]:
    """A tqdm bar on stderr (hidden with --json or when stderr is not a terminal)."""
    from tqdm import tqdm

    bar: dict[str, Any] = {}

    def update(done: int, total: int) -> None:
        if "bar" not in bar:
            bar["bar"] = tqdm(
                total=total,
                desc=label,
                unit="件",
                file=sys.stderr,
                disable=_state["json"] or not sys.stderr.isatty(),
            )
        bar["bar"].n = done
        bar["bar"].refresh()

    def close() -> None:
        if "bar" in bar:
            bar["bar"].close()

    return update, close


# --- due list -------------------------------------------------------------------------------


@retention_app.command("due")
def due(
    as_of: Annotated[str | None, typer.Option("--as-of", help="基準日（既定: 今日）")] = None,
    csv_out: Annotated[
        str | None, typer.Option("--csv", help="CSVに出力（ファイル名、- で標準出力）")
    ] = None,
    org: Annotated[str | None, typer.Option("--org")] = None,
    cls: Annotated[str | None, typer.Option("--class")] = None,
    disposition: Annotated[str | None, typer.Option("--disposition")] = None,
    case: Annotated[str | None, typer.Option("--case")] = None,
    limit: int = 1000,
) -> None:
    """保存期間が満了した文書（廃棄・移管の対象）を案件・分類ごとに表示する。"""
    from genpon.api.retention_shapes import due_out
    from genpon.retention import disposition_list

    filters: dict[str, Any] = {
        "as_of": _date(as_of),
        "organization_code": org,
        "class_code": cls,
        "disposition": disposition,
        "case_id": case,
    }
    tz = ctx().settings.timezone
    with unit() as (s, actor):
        if csv_out is not None:
            if csv_out == "-":
                buf = io.StringIO(newline="")
                n = disposition_list.write_due_csv(
                    disposition_list.iter_due(s, actor, timezone=tz, **filters), buf
                )
                sys.stdout.write(buf.getvalue())
                return
            with open(csv_out, "w", encoding="utf-8", newline="") as fh:
                n = disposition_list.write_due_csv(
                    disposition_list.iter_due(s, actor, timezone=tz, **filters), fh
                )
            out({"file": csv_out, "rows": n}, f"{n} 件を {csv_out} に出力しました")
            return
        page = disposition_list.due_list(s, actor, timezone=tz, limit=limit, **filters)
    data = due_out(page)
    lines = [f"基準日 {data['as_of']}: {data['count']} 件"]
    for g in data["groups"]:
        lines.append(
            f"■ {g['case_id'] or '（案件なし）'} {g['case_title'] or ''} / {g['class_code']} "
            f"{g['class_name'] or ''} / {'廃棄' if g['disposition'] == 'destroy' else '移管'}"
        )
        for i in g["items"]:
            flag = " [保留: " + "・".join(h["label"] for h in i["holds"]) + "]" if i["held"] else ""
            flag += f" [伺い {i['batch_id']}]" if i["batch_id"] else ""
            lines.append(f"  {i['document_id']}\t{i['title']}\t満了 {i['retention_end']}{flag}")
    out(data, "\n".join(lines))


# --- holds and extensions -------------------------------------------------------------------


@retention_app.command("hold")
def hold(
    scope: Annotated[str, typer.Argument(help="document | case | class")],
    ref: Annotated[str, typer.Argument(help="文書ID / 案件ID / 分類コード")],
    hold_type: Annotated[
        str, typer.Option("--type", help="litigation | disclosure | appeal | audit | other")
    ],
    reason: Annotated[str, typer.Option("--reason")],
    reference: Annotated[str | None, typer.Option("--reference")] = None,
) -> None:
    """保留を設定する（廃棄・移管を止める）。"""
    from genpon.api.retention_shapes import hold_out
    from genpon.retention import holding

    with unit() as (s, actor):
        h = holding.place_hold(
            s, actor, scope=scope, ref=ref, hold_type=hold_type, reason=reason, reference=reference
        )
        data = hold_out(h)
    out(data, f"保留 {data['id']} を設定しました（{data['hold_type_label']} {scope}:{ref}）")


@retention_app.command("holds")
def holds(all_: Annotated[bool, typer.Option("--all", help="解除済みも表示")] = False) -> None:
    """保留の一覧。"""
    from genpon.api.retention_shapes import hold_out
    from genpon.retention import holding

    with unit() as (s, actor):
        rows = [hold_out(h) for h in holding.list_holds(s, actor, active=None if all_ else True)]
    out(
        rows,
        "\n".join(
            f"{h['id']}\t{h['hold_type_label']}\t{h['scope']}\t{'有効' if h['active'] else '解除'}"
            f"\t{h['reason']}"
            for h in rows
        )
        or "保留はありません",
    )


@retention_app.command("release")
def release(hold_id: int, reason: Annotated[str, typer.Option("--reason")]) -> None:
    """保留を解除する（理由が必要）。"""
    from genpon.api.retention_shapes import hold_out
    from genpon.retention import holding

    with unit() as (s, actor):
        data = hold_out(holding.release_hold(s, actor, hold_id, reason=reason))
    out(data, f"保留 {hold_id} を解除しました")


@retention_app.command("extend")
def extend(
    scope: Annotated[str, typer.Argument(help="document | case | class")],
    ref: str,
    years: Annotated[int, typer.Option("--years")],
    reason: Annotated[str, typer.Option("--reason")],
) -> None:
    """保存期間を延長する（文書・案件・分類）。"""
    from genpon.api.retention_shapes import extension_out
    from genpon.retention import extension

    with unit() as (s, actor):
        ext, changed = extension.extend(
            s,
            actor,
            scope=scope,
            ref=ref,
            years=years,
            reason=reason,
            timezone=ctx().settings.timezone,
        )
        data = {**extension_out(ext), "documents_rescheduled": changed}
    out(data, f"{scope}:{ref} を {years} 年延長しました（満了日を再計算した文書 {changed} 件）")


# --- batches --------------------------------------------------------------------------------


@batch_app.command("create")
def batch_create(
    action: Annotated[str, typer.Option("--action", help="destroy | transfer")] = "destroy",
    doc: DocOpt = None,
    as_of: Annotated[str | None, typer.Option("--as-of")] = None,
    title: Annotated[str, typer.Option("--title")] = "",
    org: Annotated[str | None, typer.Option("--org")] = None,
    cls: Annotated[str | None, typer.Option("--class")] = None,
    case: Annotated[str | None, typer.Option("--case")] = None,
) -> None:
    """廃棄伺い・移管伺いを作成する（--doc 省略時は対象一覧の保留なしの全件）。"""
    from genpon.api.retention_shapes import batch_out
    from genpon.retention import batches

    with unit() as (s, actor):
        b = batches.create_batch(
            s,
            actor,
            action=action,
            timezone=ctx().settings.timezone,
            document_ids=doc or None,
            as_of=_date(as_of),
            title=title,
            organization_code=org,
            class_code=cls,
            case_id=case,
        )
        data = batch_out(batches.get_batch(s, actor, b.id or 0))
    out(data, f"伺い {data['id']} を作成しました（{data['item_count']} 件、審査待ち）")


@batch_app.command("list")
def batch_list(status: str | None = None) -> None:
    from genpon.api.retention_shapes import batch_out
    from genpon.retention import batches

    with unit() as (s, actor):
        rows = [batch_out(b) for b in batches.list_batches(s, actor, status=status)]
    out(
        rows,
        "\n".join(
            f"{b['id']}\t{b['action']}\t{b['status']}\t{b['item_count']}件\t{b['created_by']}"
            f"\t{b['title']}"
            for b in rows
        )
        or "伺いはありません",
    )


@batch_app.command("show")
def batch_show(batch_id: int) -> None:
    from genpon.api.retention_shapes import batch_out
    from genpon.retention import batches

    with unit() as (s, actor):
        data = batch_out(batches.get_batch(s, actor, batch_id))
        items = batches.batch_items(s, actor, batch_id)
        data["items"] = [
            {
                "document_id": i.document_id,
                "title": d.title,
                "decision": i.decision,
                "status": i.status,
                "result": i.result,
            }
            for i, d in items
        ]
    lines = [f"伺い {data['id']} {data['action']} [{data['status']}] {data['title']}"]
    lines += [
        f"  {i['document_id']}\t{i['decision']}\t{i['status']}\t{i['result'] or ''}\t{i['title']}"
        for i in data["items"]
    ]
    out(data, "\n".join(lines))


def _decide(batch_id: int, approve: bool, doc: list[int] | None, reason: str | None) -> None:
    from genpon.api.retention_shapes import batch_out
    from genpon.retention import batches

    with unit() as (s, actor):
        data = batch_out(
            batches.decide(
                s,
                actor,
                batch_id,
                approve=approve,
                document_ids=doc or None,
                reason=reason,
                timezone=ctx().settings.timezone,
            )
        )
    verb = "承認" if approve else "却下"
    out(data, f"伺い {batch_id} を{verb}しました（状態: {data['status']}）")


@batch_app.command("approve")
def batch_approve(
    batch_id: int,
    doc: DocOpt = None,
    reason: Annotated[str | None, typer.Option("--reason")] = None,
) -> None:
    """伺いを承認する（作成者以外の文書管理担当; --doc で文書ごと）。"""
    _decide(batch_id, True, doc, reason)


@batch_app.command("reject")
def batch_reject(
    batch_id: int,
    reason: Annotated[str, typer.Option("--reason")],
    doc: DocOpt = None,
) -> None:
    """伺いを却下する（理由が必要; --doc で文書ごと）。"""
    _decide(batch_id, False, doc, reason)


@batch_app.command("execute")
def batch_execute(
    batch_id: int,
    skip_blocked: Annotated[
        bool, typer.Option("--skip-blocked", help="保留中・未満了の文書を除外して実行")
    ] = False,
) -> None:
    """承認済みの廃棄伺いを実行する（廃棄証明書を発行）。移管伺いはパッケージを作成する。"""
    from genpon.api.retention_shapes import report_out
    from genpon.retention import batches, disposal

    c = ctx()
    with unit() as (s, actor):
        action = batches.get_batch(s, actor, batch_id).batch.action
    if action == "transfer":
        _transfer(batch_id, None, skip_blocked)
        return
    actor = _actor()
    update, close = _progress("廃棄")
    try:
        r = disposal.execute_batch(
            c.engine,
            c.store,
            actor,
            c.settings,
            batch_id,
            skip_blocked=skip_blocked,
            progress=update,
        )
    finally:
        close()
    data = report_out(r)
    out(
        data,
        f"伺い {batch_id}: 廃棄 {r.done} 件、除外 {len(r.skipped)} 件、状態 {r.status}"
        + (f"、廃棄証明書 {r.certificate_id}" if r.certificate_id else ""),
    )


def _transfer(batch_id: int, dest: Path | None, skip_blocked: bool) -> None:
    from genpon.api.retention_shapes import report_out
    from genpon.retention import transfers

    c = ctx()
    actor = _actor()
    r = transfers.export_transfer(
        c.engine, c.store, actor, c.settings, batch_id, dest_dir=dest, skip_blocked=skip_blocked
    )
    out(
        {**report_out(r), "path": r.package_path},
        f"移管パッケージを作成しました: {r.package_path}（{r.done} 件）",
    )


@retention_app.command("transfer")
def transfer(
    batch_id: int,
    dest: Annotated[Path | None, typer.Option("--dest", help="出力先フォルダ")] = None,
    skip_blocked: bool = False,
) -> None:
    """承認済みの移管伺いから BagIt パッケージを作成する。"""
    if dest is not None and not dest.is_dir():
        fail(f"フォルダがありません: {dest}")
    _transfer(batch_id, dest, skip_blocked)


@retention_app.command("acknowledge")
def acknowledge(
    batch_id: int, receipt: Annotated[str | None, typer.Option("--receipt")] = None
) -> None:
    """公文書館の受領を記録し、文書を移管済みにする。"""
    from genpon.api.retention_shapes import report_out
    from genpon.retention import transfers

    c = ctx()
    actor = _actor()
    update, close = _progress("移管")
    try:
        r = transfers.acknowledge_transfer(
            c.engine,
            c.store,
            actor,
            c.settings,
            batch_id,
            receipt_reference=receipt,
            progress=update,
        )
    finally:
        close()
    out(report_out(r), f"伺い {batch_id}: 移管済み {r.done} 件、除外 {len(r.skipped)} 件")


@retention_app.command("certificate")
def certificate(
    batch_id: int,
    output: Annotated[Path | None, typer.Option("-o", "--output")] = None,
    html: Annotated[
        bool, typer.Option("--html", help="印刷用のHTML（日本語、署名鍵IDと検証方法つき）")
    ] = False,
) -> None:
    """廃棄証明書（署名付きJSON、--html で印刷用HTML）を書き出す。"""
    from genpon.retention import certificates

    with unit() as (s, actor):
        if html:
            name, text = certificates.certificate_html(
                s, actor, batch_id, timezone=ctx().settings.timezone
            )
            data = text.encode("utf-8")
        else:
            name, data = certificates.certificate_file(s, actor, batch_id)
    if output is None:
        sys.stdout.write(data.decode("utf-8"))
        return
    target = output / name if output.is_dir() else output
    target.write_bytes(data)
    out({"file": str(target)}, f"{target} に書き出しました")


@retention_app.command("register")
def file_register(
    output: Annotated[Path, typer.Option("-o", "--output", help="出力ファイル")],
    org: Annotated[str | None, typer.Option("--org")] = None,
    fiscal_year: Annotated[int | None, typer.Option("--fiscal-year")] = None,
    fmt: Annotated[str | None, typer.Option("--format", help="csv | xlsx（既定: 拡張子）")] = None,
) -> None:
    """行政文書ファイル管理簿を CSV（Excel用BOM付き）または XLSX で出力する。"""
    from genpon.retention import register

    kind = fmt or output.suffix.lstrip(".").lower() or "csv"
    if kind not in ("csv", "xlsx"):
        fail(f"形式は csv か xlsx です: {kind}")
    with unit() as (s, actor):
        rows = register.register_rows(
            s,
            actor,
            organization_code=org,
            fiscal_year=fiscal_year,
            timezone=ctx().settings.timezone,
        )
    buf = io.BytesIO()
    n = register.export_register(rows, kind, buf)
    output.write_bytes(buf.getvalue())
    out({"file": str(output), "rows": n}, f"{n} 件を {output} に出力しました")


# shortcuts named in the issue: genpon retention approve|reject|execute ID
retention_app.command("approve")(batch_approve)
retention_app.command("reject")(batch_reject)
retention_app.command("execute")(batch_execute)


@certificate_app.command("verify")
def certificate_verify(
    file: Path,
    public_key: Annotated[
        list[Path] | None, typer.Option("--public-key", help="公開鍵PEM（オフライン検証）")
    ] = None,
) -> None:
    """廃棄証明書の署名と内容を検証する（改ざんがあれば終了コード 1）。"""
    from genpon.core.signing import key_id_for, load_public_pem
    from genpon.retention.certificates import verify_certificate_file

    if not file.is_file():
        fail(f"ファイルがありません: {file}")
    extra: dict[str, Any] = {}
    for pem in public_key or []:
        if not pem.is_file():
            fail(f"ファイルがありません: {pem}")
        try:
            key = load_public_pem(pem.read_bytes())
        except ValueError:
            fail(f"Ed25519 公開鍵ではありません: {pem}")
            raise
        extra[key_id_for(key)] = key
    key_dir = ctx().settings.key_dir if not public_key else Path("/nonexistent")
    result = verify_certificate_file(file, key_dir, extra)
    data = {
        "ok": result.ok,
        "reason": result.reason,
        "key_id": result.key_id,
        "item_count": result.item_count,
    }
    if not result.ok:
        if _state["json"]:
            out(data)
        fail(f"廃棄証明書の検証に失敗しました: {result.reason} [certificate_invalid]")
    out(data, f"検証成功: 署名鍵 {result.key_id}、{result.item_count} 件")


def register(app: typer.Typer) -> None:
    app.add_typer(retention_app, name="retention")
    app.add_typer(certificate_app, name="certificate")
