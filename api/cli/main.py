"""genpon — the command line of Genpon (原本).

Every command prints one line and exits non-zero on a bad input; never a traceback.
"""

from __future__ import annotations

import hashlib
import os
import sys
import traceback
from datetime import date
from pathlib import Path
from typing import Annotated, Any

import typer
from genpon.api.cli import audit as cli_audit
from genpon.api.cli import imports as cli_imports
from genpon.api.cli import ocr as cli_ocr
from genpon.api.cli import retention as cli_retention
from genpon.api.cli import search as cli_search
from genpon.api.cli import worker as cli_worker
from genpon.api.cli.common import _state, ctx, fail, out, unit
from genpon.core.errors import GenponError
from genpon.core.permissions import loose_permissions, restrict_umask

app = typer.Typer(
    name="genpon",
    help="原本 Genpon: 公文書の原本管理",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
masters_app = typer.Typer(
    help="共通マスタ (organizations, users, document_classes)", no_args_is_help=True
)
case_app = typer.Typer(help="案件", no_args_is_help=True)
users_app = typer.Typer(help="利用者とAPIキー", no_args_is_help=True)
keys_app = typer.Typer(help="APIキー", no_args_is_help=True)
app.add_typer(masters_app, name="masters")
app.add_typer(case_app, name="case")
app.add_typer(users_app, name="users")
app.add_typer(keys_app, name="keys")


@app.callback()
def _global(
    as_user: Annotated[
        str | None,
        typer.Option(
            "--as",
            help="この利用者として実行（既定: GENPON_CLI_USER、なければOSの利用者名と同じ利用者ID）",
        ),
    ] = None,
    json_out: Annotated[bool, typer.Option("--json", help="JSONで出力")] = False,
    debug: Annotated[
        bool, typer.Option("--debug", help="内部エラーの詳細を標準エラー出力に表示")
    ] = False,
) -> None:
    _state["as"] = as_user
    _state["json"] = json_out
    _state["debug"] = debug
    restrict_umask()  # everything a command creates under the data dir is 0600/0700


@app.command()
def serve(host: str | None = None, port: int | None = None, workers: int = 1) -> None:
    """Webサーバを起動する (API + 画面)."""
    import uvicorn

    s = ctx().settings
    uvicorn.run(
        "genpon.api.main:app",
        host=host or s.host,
        port=port or s.port,
        workers=workers,
        proxy_headers=True,
        log_level="info",
    )


@app.command()
def init(
    demo: Annotated[bool, typer.Option(help="デモ用マスタ・利用者・APIキーを作成")] = False,
    join: Annotated[
        bool, typer.Option("--join", help="既存の配置に参加する（署名鍵を作らず共有鍵を使う）")
    ] = False,
    history: Annotated[
        bool, typer.Option(help="--demo で過去の案件（期限到来・保留・移管対象）も作成")
    ] = True,
) -> None:
    """データベース・署名鍵を初期化する（何度実行しても安全）。"""
    from genpon.core.signing import KeyProvisioningError
    from genpon.records.bootstrap import DEMO_PASSWORD, initialize
    from genpon.retention.holding import place_hold

    _state["initializing"] = True
    c = ctx()
    try:
        # the demo's past cases are closed and held through the retention layer, which records
        # (where bootstrap lives) cannot import: it is handed the hold service
        result = initialize(
            c.settings,
            c.engine,
            demo=demo,
            join=join,
            store=c.store,
            place_hold=place_hold if demo and history else None,
        )
    except KeyProvisioningError as exc:
        fail(f"{exc} [system_key_conflict]", 2)
        return
    loose = loose_permissions(c.settings.data_dir)
    for path, mode in loose:
        typer.echo(f"警告: 他の利用者がアクセスできます: {path} ({mode:04o})", err=True)
    if loose:
        typer.echo(
            f"警告: データディレクトリは所有者だけが読めるようにしてください: "
            f"chmod -R go-rwx {c.settings.data_dir}",
            err=True,
        )
    typer.echo(f"データベース: {c.settings.db_url.split('@')[-1]}")
    typer.echo(f"署名鍵: {result.public_key_id}")
    if result.demo_keys:
        typer.echo("デモ用APIキー（この表示は一度だけです）:")
        for login, key in result.demo_keys.items():
            typer.echo(f"  {login:15s} {key}")
        typer.echo(f"デモ利用者の画面パスワード: {DEMO_PASSWORD}")
    if result.history:
        typer.echo(f"デモ用の過去の案件: {len(result.history)} 件")
        for line in result.history:
            typer.echo(f"  {line}")


@masters_app.command("import")
def masters_import(kind: str, file: Path) -> None:
    """CSVを取り込む: KIND は organizations | users | document_classes。"""
    from genpon.records import master

    if not file.is_file():
        fail(f"ファイルがありません: {file}")
    with unit() as (s, actor):
        r = master.import_csv(s, actor, kind, file.read_bytes())
    out(r.as_dict(), f"{kind}: 追加 {r.created} / 更新 {r.updated} / 変更なし {r.unchanged}")


@case_app.command("create")
def case_create(
    title: str,
    org: Annotated[str, typer.Option("--org")],
    cls: Annotated[str, typer.Option("--class")],
    opened_on: Annotated[str | None, typer.Option("--opened-on")] = None,
) -> None:
    """案件を作成し案件IDを発番する。"""
    from genpon.api import schemas
    from genpon.records import cases

    with unit() as (s, actor):
        c, f = cases.create_case(
            s,
            actor,
            title=title,
            organization_code=org,
            class_code=cls,
            case_id_format=ctx().settings.case_id_format,
            timezone=ctx().settings.timezone,
            opened_on=_date(opened_on) if opened_on else None,
        )
        data = schemas.case(c, s, f)
    out(data, f"{c.case_id}\t{c.title}\tフォルダ {f.id}")


@case_app.command("register")
def case_register(
    case_id: str,
    title: str,
    org: Annotated[str, typer.Option("--org")],
    cls: Annotated[str, typer.Option("--class")],
    issuer: Annotated[str, typer.Option("--issuer")] = "external",
) -> None:
    """他システムが発番した案件IDを登録する（冪等）。"""
    from genpon.api import schemas
    from genpon.records import cases

    with unit() as (s, actor):
        c, f, created = cases.register_case(
            s,
            actor,
            case_id=case_id,
            title=title,
            organization_code=org,
            class_code=cls,
            timezone=ctx().settings.timezone,
            issuer=issuer,
            case_id_format=ctx().settings.case_id_format,
        )
        data = schemas.case(c, s, f)
    out(data, f"{c.case_id}\t{'登録' if created else '登録済み'}\tフォルダ {f.id}")


@case_app.command("show")
def case_show(case_id: str) -> None:
    """案件と経緯を表示する。"""
    from genpon.api import schemas
    from genpon.records import cases
    from genpon.records.folders import case_root_folder

    with unit() as (s, actor):
        c = cases.get_case(s, actor, case_id)
        data = schemas.case(c, s, case_root_folder(s, c))
        data["timeline"] = [schemas.event(e) for e in cases.timeline(s, actor, case_id)]
    lines = [f"{c.case_id}  {c.title}  [{c.status}]  {c.fiscal_year}年度"]
    lines += [
        f"  {e['at']}  {e['actor']}  {e['action']}  {e['target_type']}:{e['target_id']}"
        for e in data["timeline"]
    ]
    out(data, "\n".join(lines))


@case_app.command("close")
def case_close(case_id: str) -> None:
    """案件を完結する（保存期間の起算日・満了日が確定する）。"""
    from genpon.api import schemas
    from genpon.records import cases

    with unit() as (s, actor):
        c = cases.close_case(s, actor, case_id, timezone=ctx().settings.timezone)
    out(schemas.case(c), f"{c.case_id} を完結しました")


@case_app.command("reopen")
def case_reopen(case_id: str) -> None:
    from genpon.api import schemas
    from genpon.records import cases

    with unit() as (s, actor):
        c = cases.reopen_case(s, actor, case_id, timezone=ctx().settings.timezone)
    out(schemas.case(c), f"{c.case_id} を再開しました")


def _date(raw: str) -> date:
    try:
        return date.fromisoformat(raw)
    except ValueError:
        fail(f"日付は YYYY-MM-DD で指定してください: {raw}")
        raise


@app.command()
def deposit(
    file: Path,
    case: Annotated[str | None, typer.Option("--case", help="案件ID")] = None,
    folder: Annotated[int | None, typer.Option("--folder", help="フォルダID")] = None,
    title: Annotated[str | None, typer.Option()] = None,
    approved_on: Annotated[
        str | None, typer.Option("--approved-on", help="決裁日 (決裁済みとして登録)")
    ] = None,
    approver: Annotated[list[str] | None, typer.Option("--approver")] = None,
    external_system: Annotated[str | None, typer.Option("--external-system")] = None,
    external_id: Annotated[str | None, typer.Option("--external-id")] = None,
) -> None:
    """ファイルを登録する。同じ内容の原本があれば写しになる。"""
    from genpon.api import schemas
    from genpon.records import documents
    from genpon.records.documents import ApprovalIn, DepositIn

    if not file.is_file():
        fail(f"ファイルがありません: {file}")
    c = ctx()
    approval = None
    if approved_on:
        approval = ApprovalIn(
            approved_on=_date(approved_on),
            approvers=approver or [],
            external_system=external_system,
            external_id=external_id,
        )
    with file.open("rb") as fh:
        staged = c.store.stage(fh, max_bytes=c.settings.max_upload_bytes)
    with unit() as (s, actor):
        o = documents.deposit(
            s,
            c.store,
            actor,
            staged,
            DepositIn(
                filename=file.name, case_id=case, folder_id=folder, title=title, approval=approval
            ),
            allowed_types=c.settings.allowed_types,
            timezone=c.settings.timezone,
        )
        data = schemas.document_view(documents.view(s, actor, o.document.id or 0))
    kind = "写し" if o.is_copy else "原本"
    out(data, f"文書 {data['id']}\t{kind}\t{data['sha256']}\t{data['folder_path']}")


@app.command()
def copy(document_id: int, folder: Annotated[int, typer.Option("--folder")]) -> None:
    """文書の写しをフォルダに作る（同じ内容は保存し直さない）。"""
    from genpon.api import schemas
    from genpon.records import documents

    with unit() as (s, actor):
        d = documents.copy_to_folder(s, actor, document_id, folder)
        data = schemas.document_view(documents.view(s, actor, d.id or 0))
    out(data, f"写し {data['id']} → {data['folder_path']}（原本 {data['original']['id']}）")


@app.command()
def show(document_id: int) -> None:
    """文書を表示する（原本か写しか、原本の場所）。"""
    from genpon.api import schemas
    from genpon.records import documents

    with unit() as (s, actor):
        data = schemas.document_view(documents.view(s, actor, document_id))
    where = (
        "原本"
        if data["is_original"]
        else f"写し（原本 {data['original']['id']}: {data['original']['folder_path']}）"
    )
    t = data["text"]
    text = f"本文 {t['status']}" + (f"（{t['reason']}）" if t["reason"] else "")
    text += f" {t['extractor'] or '-'} {t['chars']}字 索引 {t['indexed_at'] or '未'}"
    out(
        data,
        f"{data['id']}\t{data['title']}\t{where}\t{data['status']}\t{data['folder_path']}\t{data['sha256']}\t{text}",
    )


@app.command()
def original(file: Path) -> None:
    """手元のファイルが保管されているか、原本はどれでどこにあるかを答える。"""
    from genpon.api import schemas
    from genpon.records import documents

    if not file.is_file():
        fail(f"ファイルがありません: {file}")
    h = hashlib.sha256()
    with file.open("rb") as fh:
        while block := fh.read(1 << 20):
            h.update(block)
    digest = h.hexdigest()
    with unit() as (s, actor):
        try:
            holding = documents.by_hash(s, actor, digest)
        except GenponError as exc:
            if exc.code == "content_not_held":
                out({"sha256": digest, "held": False}, f"保管されていません\t{digest}")
                sys.exit(3)
            raise
        data = schemas.holding(holding)
    orig = next((d for d in data["documents"] if d["is_original"]), None)
    lines = [f"保管されています\t{digest}"]
    if orig:
        lines.append(f"原本: 文書 {orig['id']}\t{orig['title']}\t{orig['folder_path']}")
    lines += [
        f"写し: 文書 {d['id']}\t{d['folder_path']}"
        for d in data["documents"]
        if not d["is_original"]
    ]
    out({**data, "held": True}, "\n".join(lines))


@users_app.command("list")
def users_list() -> None:
    from genpon.api import schemas
    from genpon.records import master

    with unit() as (s, actor):
        data = [schemas.user(u) for u in master.list_users(s, actor)]
    out(
        data,
        "\n".join(f"{u['login']}\t{u['name']}\t{','.join(u['roles'])}\t{u['kind']}" for u in data),
    )


@users_app.command("passwd")
def users_passwd(
    login: str, password: Annotated[str, typer.Option(prompt=True, hide_input=True)]
) -> None:
    """画面サインイン用のパスワードを設定する。"""
    from genpon.records import users

    with unit() as (s, actor):
        users.set_password(s, actor, login, password)
    out({"login": login}, f"{login} のパスワードを設定しました")


@keys_app.command("issue")
def keys_issue(login: str, label: str = "") -> None:
    """APIキーを発行する（表示は一度だけ）。"""
    from genpon.records import users

    with unit() as (s, actor):
        key, clear = users.issue_key(s, actor, login, label)
    out({"prefix": key.prefix, "api_key": clear}, clear)


@keys_app.command("revoke")
def keys_revoke(prefix: str) -> None:
    from genpon.records import users

    with unit() as (s, actor):
        users.revoke_key(s, actor, prefix)
    out({"prefix": prefix}, f"{prefix} を失効しました")


@app.command()
def gc(
    dry_run: bool = False, grace: Annotated[int | None, typer.Option(help="猶予秒数")] = None
) -> None:
    """どの文書からも参照されない保管データを削除する（猶予期間より古いもののみ）。"""
    from genpon.records.gc import collect

    c = ctx()
    r = collect(
        c.engine,
        c.store,
        grace_seconds=c.settings.gc_grace_seconds if grace is None else grace,
        dry_run=dry_run,
    )
    d = r.as_dict()
    out(
        d,
        f"確認 {d['blobs_seen']} 件 / 孤立 {len(r.orphans)} 件{'（削除せず）' if dry_run else '削除'} / "
        f"猶予中 {d['young_orphans_kept']} 件 / 一時ファイル {d['staging_removed']} 件",
    )


# The other domains' command groups: each module has ``register(app: typer.Typer)``.
for _module in (cli_search, cli_retention, cli_audit, cli_imports, cli_ocr, cli_worker):
    _module.register(app)


def main(argv: list[str] | None = None) -> Any:
    try:
        return app(args=argv, standalone_mode=True)
    except GenponError as exc:
        detail = ""
        errs = exc.details.get("errors") if isinstance(exc.details, dict) else None
        if errs:
            detail = " " + "; ".join(
                f"{e['row']}行目 {e.get('column') or ''}: {e['message']}" for e in errs[:5]
            )
        fail(f"{exc.message} [{exc.code}]{detail}", 1)
    except KeyboardInterrupt:
        fail("中断しました", 130)
    except Exception:  # one line for people; internals only on request, on stderr
        if _state.get("debug") or os.environ.get("GENPON_DEBUG", "") not in ("", "0"):
            traceback.print_exc(file=sys.stderr)
        fail(
            "内部エラーが発生しました。操作は完了していません。"
            "詳細は --debug（または GENPON_DEBUG=1）を付けて再実行すると表示されます [internal_error]",
            70,
        )
    return None


if __name__ == "__main__":
    main()
