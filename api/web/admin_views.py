"""Administration screens (管理, issue 18 point 9): users and service accounts with their
grants, API keys, the organization and document-class masters, the system key's status.

Only admins see these pages: anyone else gets the polite 404 (the pages' existence does not
leak). Every change goes through a records service, which checks the role itself and writes
the audit event; a view parses the form, calls one service and renders. A new API key or
password is shown once, on the answer to the POST that made it (never in a URL, never again).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response
from genpon.api.deps import SessionDep
from genpon.api.web import i18n
from genpon.api.web.deps import WebActor
from genpon.api.web.lookups import names
from genpon.api.web.render import render, safe_next
from genpon.api.web.session import check_csrf
from genpon.core.errors import Conflict, Forbidden, GenponError, InvalidInput, NotFound
from genpon.core.signing import SystemKeyring
from genpon.records import accounts, master, users
from genpon.records.access import Actor, require_role
from genpon.records.models import ROLES
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool

router = APIRouter(prefix="/admin", include_in_schema=False)

MASTER_KINDS = {"organizations": "所属", "document_classes": "文書分類"}
START_RULE_JA = {"next_fiscal_year": "翌年度の4月1日", "closing_date": "完結日の翌日"}
SOURCE_JA = {
    "dir": "データディレクトリの鍵（1台構成）",
    "file": "共有の鍵ファイル（GENPON_SIGNING_KEY_FILE）",
    "env": "環境変数（GENPON_SIGNING_KEY）",
}
MESSAGES = {
    "created": "利用者を登録しました。",
    "updated": "登録内容を保存しました。",
    "disabled": "利用者を無効にしました。この利用者のAPIキーとサインインは使えなくなりました。",
    "enabled": "利用者を有効に戻しました。",
    "grants": "連携先の所属を保存しました。",
    "revoked": "APIキーを失効させました。",
}

# English for the labels of these screens (the UI's table is keyed by the Japanese text).
EN = {
    "管理": "Admin",
    "利用者": "Users",
    "利用者の登録": "New user",
    "氏名": "Name",
    "役割": "Roles",
    "区分": "Kind",
    "職員": "Person",
    "サービスアカウント": "Service account",
    "有効": "Active",
    "無効": "Disabled",
    "登録する": "Create",
    "保存する": "Save",
    "無効にする": "Disable",
    "有効に戻す": "Enable",
    "パスワードを再発行する": "Reset password",
    "連携先の所属": "Granted organizations",
    "APIキーを発行する": "Issue API key",
    "用途（ラベル）": "Label",
    "失効させる": "Revoke",
    "失効": "Revoked",
    "発行日時": "Issued",
    "プレフィックス": "Prefix",
    "マスタ": "Masters",
    "CSVで書き出す": "Export as CSV",
    "CSVを取り込む": "Import CSV",
    "CSVファイル": "CSV file",
    "取り込む": "Import",
    "行": "Line",
    "列": "Column",
    "親コード": "Parent code",
    "コード": "Code",
    "名称": "Name",
    "起算日の規則": "Start rule",
    "署名鍵": "System key",
    "システム署名鍵": "System signing key",
    "鍵ID": "Key ID",
    "鍵の保管場所": "Key source",
    "署名できるか": "Can sign",
    "できる": "Yes",
    "できない": "No",
    "交替の履歴": "Rotation history",
    "作成日時": "Created",
    "退役日時": "Retired",
    "現在の鍵": "Current key",
    "APIキー一覧": "API keys",
    "利用者の詳細": "User",
    "利用者一覧": "Users",
    "この画面を閉じると二度と表示されません。": "This is shown once: it cannot be shown again.",
}
for _ja, _en in EN.items():
    i18n.EN.setdefault(_ja, _en)


def admin_actor(actor: WebActor) -> Actor:
    """The signed-in admin; for anyone else the page does not exist (404, not 403)."""
    try:
        require_role(actor, "admin")
    except Forbidden:
        raise NotFound("page_not_found", "お探しのページは見つかりません。") from None
    return actor


AdminActor = Annotated[Actor, Depends(admin_actor)]


def _page(request: Request, template: str, status_code: int = 200, **data: Any) -> Response:
    return render(
        request,
        template,
        status_code=status_code,
        ROLES=ROLES,
        MASTER_KINDS=MASTER_KINDS,
        START_RULE_JA=START_RULE_JA,
        SOURCE_JA=SOURCE_JA,
        **data,
    )


def _field_errors(exc: GenponError) -> dict[str, str]:
    errs = exc.details.get("errors") if isinstance(exc.details, dict) else None
    out: dict[str, str] = {}
    for e in errs or []:
        out.setdefault(str(e.get("field") or ""), str(e.get("message", "")))
    return out or {"": exc.message}


async def _form(request: Request) -> Any:
    form = await request.form()
    check_csrf(request, str(form.get("csrf", "")))
    return form


@router.get("")
def admin_home(actor: AdminActor) -> Response:
    return RedirectResponse("/admin/users", 303)


# --- users ---------------------------------------------------------------------------------


def _users_page(
    request: Request,
    session: Session,
    actor: Actor,
    *,
    form: dict[str, Any] | None = None,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    all_users = master.list_users(session, actor)
    return _page(
        request,
        "admin/users.html",
        status_code=status_code,
        users=all_users,
        n=names(session),
        form=form or {"kind": "person", "roles": ["staff"]},
        errors=errors or {},
    )


@router.get("/users")
def users_page(request: Request, session: SessionDep, actor: AdminActor) -> Response:
    return _users_page(request, session, actor)


@router.post("/users")
async def user_create(request: Request, session: SessionDep, actor: AdminActor) -> Response:
    form = await _form(request)
    values: dict[str, Any] = {
        "login": str(form.get("login", ""))[:200],
        "name": str(form.get("name", ""))[:1000],
        "organization_code": str(form.get("organization_code", "")),
        "roles": [str(r) for r in form.getlist("roles")],
        "kind": str(form.get("kind", "person")),
        "grants": [str(g) for g in form.getlist("grants")],
    }
    try:
        user = await run_in_threadpool(lambda: accounts.create_user(session, actor, **values))
    except (InvalidInput, Conflict) as exc:
        session.rollback()
        return _users_page(
            request, session, actor, form=values, errors=_field_errors(exc), status_code=422
        )
    return RedirectResponse(f"/admin/users/{user.login}?msg=created", 303)


def _user_page(
    request: Request,
    session: Session,
    actor: Actor,
    login: str,
    *,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
    secret: dict[str, str] | None = None,
) -> Response:
    user = master.get_user(session, login)
    n = names(session)
    org = n.orgs.get(user.organization_id)
    return _page(
        request,
        "admin/user.html",
        status_code=status_code,
        user=user,
        org_code=org.code if org else "",
        grants=master.grant_codes(session, user) if user.kind == "service" else [],
        keys=sorted(users.list_keys(session, actor, login), key=lambda k: k.id or 0, reverse=True),
        n=n,
        is_self=user.id == actor.user_id,
        msg=MESSAGES.get(request.query_params.get("msg", "")),
        errors=errors or {},
        secret=secret,
    )


@router.get("/users/{login}")
def user_page(login: str, request: Request, session: SessionDep, actor: AdminActor) -> Response:
    return _user_page(request, session, actor, login)


async def _user_action(
    request: Request, session: Session, actor: Actor, login: str, action: Any, msg: str
) -> Response:
    """Run one service call on the user; a refused input shows the user page with the reason."""
    try:
        await run_in_threadpool(action)
    except InvalidInput as exc:
        session.rollback()
        return _user_page(
            request, session, actor, login, errors=_field_errors(exc), status_code=422
        )
    return RedirectResponse(f"/admin/users/{login}?msg={msg}", 303)


@router.post("/users/{login}")
async def user_update(
    login: str, request: Request, session: SessionDep, actor: AdminActor
) -> Response:
    form = await _form(request)
    return await _user_action(
        request,
        session,
        actor,
        login,
        lambda: accounts.update_user(
            session,
            actor,
            login,
            name=str(form.get("name", ""))[:1000],
            organization_code=str(form.get("organization_code", "")),
            roles=[str(r) for r in form.getlist("roles")],
        ),
        "updated",
    )


@router.post("/users/{login}/active")
async def user_active(
    login: str, request: Request, session: SessionDep, actor: AdminActor
) -> Response:
    form = await _form(request)
    active = str(form.get("active", "")) == "1"
    return await _user_action(
        request,
        session,
        actor,
        login,
        lambda: accounts.set_user_active(session, actor, login, active=active),
        "enabled" if active else "disabled",
    )


@router.post("/users/{login}/grants")
async def user_grants(
    login: str, request: Request, session: SessionDep, actor: AdminActor
) -> Response:
    form = await _form(request)
    codes = [str(g) for g in form.getlist("grants")]
    return await _user_action(
        request,
        session,
        actor,
        login,
        lambda: accounts.set_service_grants(session, actor, login, codes),
        "grants",
    )


@router.post("/users/{login}/password")
async def user_password(
    login: str, request: Request, session: SessionDep, actor: AdminActor
) -> Response:
    await _form(request)
    try:
        password = await run_in_threadpool(users.reset_password, session, actor, login)
    except InvalidInput as exc:
        session.rollback()
        return _user_page(
            request, session, actor, login, errors=_field_errors(exc), status_code=422
        )
    session.commit()  # shown only once it is stored
    return _user_page(
        request, session, actor, login, secret={"kind": "password", "value": password}
    )


@router.post("/users/{login}/keys")
async def key_issue(
    login: str, request: Request, session: SessionDep, actor: AdminActor
) -> Response:
    form = await _form(request)
    label = str(form.get("label", "")).strip()[:200]
    key, clear = await run_in_threadpool(users.issue_key, session, actor, login, label)
    session.commit()  # shown only once it is stored
    return _user_page(
        request,
        session,
        actor,
        login,
        secret={"kind": "key", "value": clear, "prefix": key.prefix},
    )


# --- API keys ------------------------------------------------------------------------------


@router.get("/keys")
def keys_page(request: Request, session: SessionDep, actor: AdminActor) -> Response:
    show = request.query_params.get("show", "active")
    rows = users.list_all_keys(session, actor, active_only=show != "all")
    return _page(
        request,
        "admin/keys.html",
        rows=rows,
        show=show,
        msg=MESSAGES.get(request.query_params.get("msg", "")),
    )


@router.post("/keys/{prefix}/revoke")
async def key_revoke(
    prefix: str, request: Request, session: SessionDep, actor: AdminActor
) -> Response:
    form = await _form(request)
    await run_in_threadpool(users.revoke_key, session, actor, prefix)
    back = safe_next(str(form.get("next", "")), "/admin/keys")
    sep = "&" if "?" in back else "?"
    return RedirectResponse(f"{back}{sep}msg=revoked", 303)


# --- masters -------------------------------------------------------------------------------


def _kind(kind: str) -> str:
    if kind not in MASTER_KINDS:
        raise NotFound("page_not_found", "お探しのページは見つかりません。")
    return kind


def _master_page(
    request: Request,
    session: Session,
    kind: str,
    *,
    result: dict[str, Any] | None = None,
    error: GenponError | None = None,
    status_code: int = 200,
) -> Response:
    n = names(session)
    errs = error.details.get("errors") if error is not None else None
    return _page(
        request,
        "admin/masters.html",
        status_code=status_code,
        kind=kind,
        orgs=list(n.orgs.values()),
        classes=list(n.classes.values()),
        n=n,
        result=result,
        error=error,
        row_errors=sorted(errs or [], key=lambda e: int(e.get("row") or 0)),  # by line, stable
        error_count=(error.details.get("error_count") if error is not None else None)
        or len(errs or []),
    )


@router.get("/masters")
def masters_home(actor: AdminActor) -> Response:
    return RedirectResponse("/admin/masters/organizations", 303)


@router.get("/masters/{kind}")
def master_page(kind: str, request: Request, session: SessionDep, actor: AdminActor) -> Response:
    qp = request.query_params
    result = None
    if qp.get("created") is not None:
        result = {k: qp.get(k, "0") for k in ("created", "updated", "unchanged")}
    return _master_page(request, session, _kind(kind), result=result)


@router.post("/masters/{kind}/import")
async def master_import(
    kind: str, request: Request, session: SessionDep, actor: AdminActor
) -> Response:
    _kind(kind)
    form = await _form(request)
    upload = form.get("file")
    if upload is None or isinstance(upload, str) or not upload.filename:
        err: GenponError = InvalidInput("file_required", "取り込むCSVファイルを選んでください。")
        return _master_page(request, session, kind, error=err, status_code=422)
    data = await upload.read(master.MAX_CSV_BYTES + 1)
    try:
        r = await run_in_threadpool(master.import_csv, session, actor, kind, data)
    except InvalidInput as exc:
        session.rollback()  # all or nothing: nothing of the file was written
        return _master_page(request, session, kind, error=exc, status_code=422)
    return RedirectResponse(
        f"/admin/masters/{kind}?created={r.created}&updated={r.updated}&unchanged={r.unchanged}",
        303,
    )


@router.get("/masters/{kind}/export")
def master_export(kind: str, session: SessionDep, actor: AdminActor) -> Response:
    body = master.export_csv(session, actor, kind if kind == "users" else _kind(kind))
    return Response(
        body,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{kind}.csv"'},
    )


# --- the system key ------------------------------------------------------------------------


@router.get("/system-key")
def system_key_page(request: Request, session: SessionDep, actor: AdminActor) -> Response:
    ctx = request.app.state.ctx
    keyring = SystemKeyring.from_settings(ctx.settings, ctx.engine)
    status = users.system_key_status(session, actor, keyring, ctx.engine)
    return _page(request, "admin/system_key.html", status=status)
