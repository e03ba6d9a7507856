"""Jinja2 rendering with the request's language, CSRF token, actor and date formats."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import Request
from fastapi.responses import HTMLResponse
from genpon.api.web import i18n
from genpon.api.web.session import actor_of, load
from genpon.core.clock import local_iso
from genpon.records.audit.actions import AuditAction
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup

TEMPLATES = Path(__file__).parent / "templates"

A = AuditAction
# A short Japanese name of each audit action, for lists and filters (the case timeline tells
# whole sentences: timeline.SENTENCES). Every action has one (a test checks).
ACTION_JA: dict[AuditAction, str] = {
    A.CASE_CREATED: "案件の作成",
    A.CASE_UPDATED: "案件の変更",
    A.CASE_MEMBER_ADDED: "担当者の追加",
    A.CASE_CLOSED: "案件の完結",
    A.CASE_REOPENED: "案件の再開",
    A.FOLDER_CREATED: "フォルダの作成",
    A.DOCUMENT_DEPOSITED: "文書の登録",
    A.DOCUMENT_IMPORTED: "文書の取込",
    A.DOCUMENT_APPROVED: "決裁",
    A.DOCUMENT_COPIED: "写しの作成",
    A.DOCUMENT_COPY_MADE: "写しの作成（別の場所）",
    A.DOCUMENT_READ: "閲覧・ダウンロード",
    A.DOCUMENT_PREVIEWED: "画面での閲覧",
    A.DOCUMENT_VERSIONED: "版の追加",
    A.DOCUMENT_CORRECTED: "訂正版の登録",
    A.DOCUMENT_ORIGINAL_MOVED: "原本の交替",
    A.DOCUMENT_DESTROYED: "文書の廃棄",
    A.DOCUMENT_TRANSFERRED: "文書の移管",
    A.RETENTION_HOLD_PLACED: "保留の設定",
    A.RETENTION_HOLD_RELEASED: "保留の解除",
    A.RETENTION_EXTENDED: "保存期間の延長",
    A.RETENTION_BATCH_CREATED: "伺いの作成",
    A.RETENTION_BATCH_APPROVED: "伺いの承認",
    A.RETENTION_BATCH_REJECTED: "伺いの却下",
    A.RETENTION_BATCH_EXECUTION_STARTED: "伺いの実行開始",
    A.RETENTION_BATCH_EXECUTED: "廃棄の実行",
    A.RETENTION_ITEM_SKIPPED: "対象外とした文書",
    A.RETENTION_DISPOSAL_REQUESTED: "廃棄・移管の起案",
    A.RETENTION_DISPOSAL_APPROVED: "廃棄・移管の承認",
    A.RETENTION_DISPOSAL_REJECTED: "廃棄・移管の却下",
    A.RETENTION_TRANSFER_EXPORTED: "移管パッケージの作成",
    A.RETENTION_TRANSFER_ACKNOWLEDGED: "移管の受領",
    A.AUDIT_EXPORTED: "監査ログの書き出し",
    A.FIXITY_COMPLETED: "完全性検査（正常）",
    A.FIXITY_FAILED: "完全性検査（異常あり）",
    A.IMPORT_STARTED: "取込の開始",
    A.IMPORT_COMPLETED: "取込の完了",
    A.MASTER_IMPORTED: "マスタの取込",
    A.MASTER_EXPORTED: "マスタの書き出し",
    A.USER_CREATED: "利用者の登録",
    A.USER_UPDATED: "利用者の変更",
    A.USER_DISABLED: "利用者の停止",
    A.USER_ENABLED: "利用者の再開",
    A.USER_PASSWORD_SET: "パスワードの設定",
    A.KEY_ISSUED: "APIキーの発行",
    A.KEY_REVOKED: "APIキーの失効",
    A.SYSTEM_KEY_ROTATED: "システム署名鍵の交替",
    A.SIGN_IN_FAILED: "サインインの失敗",
    A.SIGN_IN_LOCKED: "サインインの一時停止",
}
TARGET_JA = {
    "document": "文書",
    "case": "案件",
    "folder": "フォルダ",
    "batch": "伺い",
    "class": "文書分類",
    "blob": "保管データ",
    "user": "利用者",
    "api_key": "APIキー",
    "audit_log": "監査ログ",
    "fixity_run": "完全性検査",
    "import_run": "取込",
    "master": "マスタ",
    "system_key": "システム署名鍵",
}
ACTION_GROUPS_JA = {
    "case.": "案件",
    "folder.": "フォルダ",
    "document.": "文書",
    "retention.": "保存期間・廃棄・移管",
    "fixity.": "完全性検査",
    "import.": "取込",
    "auth.": "サインイン",
}


def action_label(code: str | None) -> str:
    """An audit action's Japanese name; an action this version does not know keeps its code."""
    if not code:
        return ""
    try:
        return ACTION_JA[AuditAction(code)]
    except (ValueError, KeyError):
        return code


# MIME type -> a name people know. Office Open XML and the older binary formats read alike.
MIME_JA = {
    "application/pdf": "PDF文書",
    "application/msword": "Word文書",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": "Word文書",
    "application/vnd.ms-excel": "Excelブック",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": "Excelブック",
    "application/vnd.ms-powerpoint": "PowerPointプレゼンテーション",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation": (
        "PowerPointプレゼンテーション"
    ),
    "application/vnd.ms-office": "Office文書",
    "application/zip": "ZIP圧縮ファイル",
    "application/json": "JSONデータ",
    "application/x-ndjson": "JSONデータ（行区切り）",
    "application/xml": "XML文書",
    "text/xml": "XML文書",
    "application/csv": "CSV（表データ）",
    "text/csv": "CSV（表データ）",
    "text/plain": "テキスト",
    "text/html": "HTML文書",
    "message/rfc822": "電子メール",
    "application/x-empty": "空のファイル",
    "application/octet-stream": "種類不明のファイル",
}
_IMAGE_JA = {"jpeg": "JPEG", "png": "PNG", "gif": "GIF", "tiff": "TIFF", "bmp": "BMP"}


def mime_label(mime: str | None) -> str:
    """PDF文書, Word文書, 画像（PNG）…; an unknown type shows as it is."""
    if not mime:
        return ""
    base = mime.split(";", 1)[0].strip().lower()
    if base in MIME_JA:
        return MIME_JA[base]
    major, _, minor = base.partition("/")
    if major == "image":
        return f"画像（{_IMAGE_JA.get(minor, minor.upper())}）"
    if major == "text":
        return "テキスト"
    if major == "audio":
        return "音声"
    if major == "video":
        return "動画"
    return mime


env = Environment(
    loader=FileSystemLoader(TEMPLATES),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)
env.globals.update(
    RETENTION_JA=i18n.RETENTION_JA,
    DISPOSITION_JA=i18n.DISPOSITION_JA,
    STATUS_JA=i18n.STATUS_JA,
    STATE_JA=i18n.STATE_JA,
    FOLDER_KIND_JA=i18n.FOLDER_KIND_JA,
    ROLE_JA=i18n.ROLE_JA,
    fmt_size=i18n.fmt_size,
    action_label=action_label,
    mime_label=mime_label,
    ACTION_JA=ACTION_JA,
    ACTION_GROUPS_JA=ACTION_GROUPS_JA,
    TARGET_JA=TARGET_JA,
)
env.filters["action_label"] = action_label
env.filters["mime_label"] = mime_label


def safe_next(value: str | None, default: str = "/") -> str:
    """Only local paths are followed after sign-in or a language switch (no open redirect)."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return default
    return value


def datetime_markup(value: datetime | str | None, tz: str, lang: str) -> Markup | str:
    """A timestamp as people read it (2026年7月15日 09:30, the city's time) in a ``<time>``
    whose ``datetime`` carries the explicit offset (2026-07-15T09:30:00+09:00) and whose
    tooltip names the zone."""
    if value is None or value == "":
        return ""
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    iso = local_iso(value, tz)
    label = f"{tz}（UTC{iso[-6:]}）"
    return Markup('<time datetime="{}" title="{}">{}</time>').format(
        iso, label, i18n.fmt_datetime(value, tz, lang)
    )


def page_context(request: Request) -> dict[str, Any]:
    sess = load(request)
    lang = sess.lang
    tz = request.app.state.ctx.settings.timezone
    actor = actor_of(request)

    def _(text: str, **kw: object) -> str:
        return i18n.translate(lang, text, **kw)

    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return {
        "request": request,
        "lang": lang,
        "_": _,
        "csrf": sess.csrf,
        "actor": actor,
        "display_name": getattr(request.state, "display_name", None),
        "here": here,
        "here_q": quote(here, safe=""),
        "d": lambda v: i18n.fmt_date(v, tz, lang),
        "dt": lambda v: datetime_markup(v, tz, lang),
        "fy": lambda v: i18n.fmt_fiscal_year(v, lang),
        "csrf_field": Markup(f'<input type="hidden" name="csrf" value="{sess.csrf}">'),
        "is_officer": bool(actor and (actor.has_role("records_officer") or actor.is_admin)),
        "is_auditor": bool(actor and (actor.has_role("auditor") or actor.is_admin)),
    }


def render(request: Request, template: str, status_code: int = 200, **data: Any) -> HTMLResponse:
    ctx = page_context(request)
    ctx.update(data)
    html = env.get_template(template).render(ctx)
    return HTMLResponse(html, status_code=status_code)
