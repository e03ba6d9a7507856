"""genpon audit … (監査) and genpon keys rotate|public (システム署名鍵).

    genpon audit checkpoint                      sign the head of the log now
    genpon audit fixity [--sample N | --older-than DAYS] [--workers N]
    genpon audit export DIR                      auditor export for genpon-verify
    genpon audit verify [DIR] [--blobs PATH]     check an export offline, or the database
    genpon audit events [--target-type T --target-id I] [--actor L] [--action A] [--case C]
    genpon audit proof SEQ                       inclusion proof of an event (JSON)
    genpon keys rotate                           new signing key, recorded in the log
    genpon keys public                           the public keys (PEM)

Every ``genpon audit`` command first makes the checkpoints that are due (every N events,
daily), so a deployment without a long-running server still gets them.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from genpon.api.cli.common import ctx, fail, out, unit

if TYPE_CHECKING:
    from genpon.core.signing import SystemKeyring
    from genpon.records.access import Actor

audit_app = typer.Typer(
    help="監査: チェックポイント・定期点検・エクスポート・検証", no_args_is_help=True
)


def _keyring() -> SystemKeyring:
    from genpon.core.signing import SystemKeyring
    from genpon.records.audit.checkpoints import keyring_ready

    ring = SystemKeyring.from_settings(ctx().settings, ctx().engine)
    if not keyring_ready(ring):
        fail("システム署名鍵がありません（genpon init を実行してください） [system_key_missing]")
    return ring


def _actor() -> Actor:
    with unit() as (_s, actor):
        return actor


def _ensure_due() -> None:
    """Sign the checkpoints that are due (every N events, and daily)."""
    from genpon.core.signing import SystemKeyring
    from genpon.records.audit.checkpoints import ensure_checkpoints, keyring_ready
    from genpon.records.models import AuditHead

    ring = SystemKeyring.from_settings(ctx().settings, ctx().engine)
    if not keyring_ready(ring):
        return
    with unit() as (s, _actor):
        if s.get(AuditHead, 1) is None:
            return
        ensure_checkpoints(s, ring, every=ctx().settings.checkpoint_every)


@audit_app.command("checkpoint")
def checkpoint() -> None:
    """監査ログの先頭に今すぐ署名する（チェックポイント）。"""
    from genpon.records.audit.checkpoints import request_checkpoint, statement

    ring = _keyring()
    with unit() as (s, actor):
        cp = request_checkpoint(s, ring, actor)
        data = {"id": cp.id, **statement(cp)}
    _ensure_due()
    out(data, f"チェックポイント {data['id']}\t{cp.tree_size} 件\t{cp.root_hash}\t鍵 {cp.key_id}")


@audit_app.command("fixity")
def fixity(
    sample: Annotated[int | None, typer.Option("--sample", help="無作為に N 件だけ点検")] = None,
    older_than: Annotated[
        int | None, typer.Option("--older-than", help="DAYS 日以上点検していないものを点検")
    ] = None,
    workers: Annotated[int | None, typer.Option("--workers", help="並列数")] = None,
    progress: Annotated[bool, typer.Option(help="進捗バーを表示")] = True,
) -> None:
    """保管データを再ハッシュし、記録された SHA-256 と照合する（定期点検）。"""
    from genpon.records.audit.fixity import run_fixity
    from tqdm import tqdm

    if sample is not None and older_than is not None:
        fail("--sample と --older-than は同時に指定できません [bad_mode]")
    if sample is not None and sample < 1:
        fail("--sample は 1 以上で指定してください [bad_sample]")
    if older_than is not None and older_than < 0:
        fail("--older-than は 0 以上で指定してください [bad_days]")
    if workers is not None and not 1 <= workers <= 64:
        fail("--workers は 1〜64 で指定してください [bad_workers]")
    c = ctx()
    _ensure_due()
    mode = "sample" if sample is not None else "older_than" if older_than is not None else "all"
    bar: Any = None

    def on_start(count: int, total: int) -> None:
        nonlocal bar
        if progress:
            bar = tqdm(
                total=total, unit="B", unit_scale=True, desc=f"点検 {count} 件", file=sys.stderr
            )

    def step(n: int) -> None:
        if bar is not None:
            bar.update(n)

    try:
        run = run_fixity(
            c.engine,
            c.store,
            _actor(),
            mode=mode,
            sample=sample,
            older_than_days=older_than,
            workers=workers or c.settings.fixity_workers,
            on_start=on_start,
            progress=step,
        )
    finally:
        if bar is not None:
            bar.close()
    from genpon.records.audit.query import get_fixity_run

    with unit() as (s, actor):
        run, findings = get_fixity_run(s, actor, run.id or 0)
        data = {
            **run.model_dump(mode="json"),
            "findings": [f.model_dump(mode="json") for f in findings],
        }
    lines = [
        f"点検 {run.id}: {run.checked} 件 正常 {run.ok} / 欠落 {run.missing} / 不一致 "
        f"{run.corrupt} / エラー {run.errors}（{run.bytes_read / 1e6:.1f} MB, {run.seconds:.1f} 秒）"
    ]
    for f in findings:
        lines.append(f"  {f.problem}\t{f.sha256}\t{f.message}")
        for d in f.documents:
            lines.append(
                f"    文書 {d['document_id']}\t案件 {d.get('case_id') or '-'}\t"
                f"フォルダ {d.get('folder_path')}\t{d.get('title')}"
            )
    out(data, "\n".join(lines))
    if findings:
        sys.exit(3)


@audit_app.command("export")
def export(directory: Path) -> None:
    """監査用エクスポートを DIR に書き出す（genpon-verify DIR で検証できる）。"""
    from genpon.records.audit.export import export_audit

    ring = _keyring()
    _ensure_due()
    r = export_audit(ctx().engine, ring, _actor(), directory)
    out(
        r.as_dict(),
        f"{r.directory}: イベント {r.events} 件, チェックポイント {r.checkpoints} 件, "
        f"文書 {r.documents} 件, ルート {r.root_hash}",
    )


@audit_app.command("verify")
def verify(
    directory: Annotated[
        Path | None, typer.Argument(help="エクスポート（省略時はDBを確認）")
    ] = None,
    blobs: Annotated[Path | None, typer.Option("--blobs", help="保管データの写し")] = None,
) -> None:
    """監査ログを検証する: DIR があればエクスポートを、なければデータベースを。"""
    if directory is not None:
        from genpon_verify.verify import verify_export

        if not directory.is_dir():
            fail(f"ディレクトリがありません: {directory}")
        report = verify_export(directory, blobs=blobs)
        data = report.as_dict()
        first = report.first_event_failure
        head = "OK" if report.ok else "NG"
        lines = [f"{head}: イベント {report.events} 件, チェックポイント {report.checkpoints} 件"]
        if first:
            lines.append(f"最初に失敗したイベント: {first.ref}: {first.message}")
        lines += [f"  NG {f}" for f in report.failures[:50]]
        out(data, "\n".join(lines))
        if not report.ok:
            sys.exit(1)
        return
    from genpon.records.audit.query import check_log

    ring = _keyring()
    with unit() as (s, actor):
        res = check_log(s, actor, ring)
    msg = f"{'OK' if res.ok else 'NG'}: イベント {res.events} 件, チェックポイント {res.checkpoints} 件"
    if res.first_bad_seq is not None:
        msg += f"\n最初に失敗したイベント: {res.first_bad_seq} ({res.reason})"
    for b in res.bad_checkpoints:
        msg += f"\n  NG チェックポイント {b['id']}: {b['reason']}"
    out(res.as_dict(), msg)
    if not res.ok:
        sys.exit(1)


@audit_app.command("events")
def events(
    target_type: Annotated[str | None, typer.Option("--target-type")] = None,
    target_id: Annotated[str | None, typer.Option("--target-id")] = None,
    actor_login: Annotated[str | None, typer.Option("--actor")] = None,
    action: Annotated[str | None, typer.Option("--action")] = None,
    case_id: Annotated[str | None, typer.Option("--case")] = None,
    limit: Annotated[int, typer.Option("--limit")] = 100,
) -> None:
    """監査ログのイベントを絞り込んで表示する。"""
    from genpon.records.audit.query import list_events

    with unit() as (s, actor):
        page = list_events(
            s,
            actor,
            target_type=target_type,
            target_id=target_id,
            actor_login=actor_login,
            action=action,
            case_id=case_id,
            limit=limit,
        )
        data = page.as_dict()
    out(
        data,
        "\n".join(
            f"{e['seq']}\t{e['at']}\t{e['actor']}\t{e['action']}\t{e['target_type']}:{e['target_id']}"
            for e in data["items"]
        ),
    )


@audit_app.command("proof")
def proof(seq: int) -> None:
    """イベントの包含証明（JSON）。genpon-verify FILE --keys DIR で検証できる。"""
    from genpon.records.audit.query import inclusion_proof

    _ensure_due()
    with unit() as (s, actor):
        data = inclusion_proof(s, actor, seq).as_dict()
    typer.echo(json.dumps(data, ensure_ascii=False, indent=2))


def keys_rotate() -> None:
    """システム署名鍵を更新する（更新は監査ログに記録され、旧鍵が新鍵を保証する）。"""
    from genpon.records.audit.checkpoints import rotate_key

    ring = _keyring()
    r = rotate_key(ctx().engine, ring, _actor())
    out(
        {"old_key_id": r.old_key_id, "new_key_id": r.new_key_id, "event_seq": r.event_seq},
        f"署名鍵を更新しました: {r.old_key_id} → {r.new_key_id}（イベント {r.event_seq}）",
    )


def keys_public() -> None:
    """システム署名鍵の公開鍵（PEM）を表示する（過去の鍵も含む）。"""
    ring = _keyring()
    pems = ring.public_keys_pem()
    out(
        {"current": ring.key_id, "keys": pems},
        "\n".join(
            f"# {kid}{' (current)' if kid == ring.key_id else ''}\n{pem.strip()}"
            for kid, pem in pems.items()
        ),
    )


def register(app: typer.Typer) -> None:
    app.add_typer(audit_app, name="audit")
    keys = next((g.typer_instance for g in app.registered_groups if g.name == "keys"), None)
    if keys is None:
        keys = typer.Typer(help="鍵", no_args_is_help=True)
        app.add_typer(keys, name="keys")
    keys.command("rotate")(keys_rotate)
    keys.command("public")(keys_public)
