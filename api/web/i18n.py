"""Language and formats of the web UI.

Japanese is the default and the message key: templates write ``_("原本")`` and the English
table below translates when the person switched to English. Dates follow Japanese office usage
(2026年7月15日; fiscal years also as 令和8年度), always in the city's time zone.
"""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

from genpon.core.clock import as_utc
from genpon.retention.rules import reiwa_label

LANGS = ("ja", "en")

EN: dict[str, str] = {
    "原本": "Original",
    "写し": "Copy",
    "写し {n}件": "{n} copies",
    "ほかの保存場所 {n}件": "{n} other placements",
    "写しの場所": "Where the copies are",
    "原本とほかの写しの場所": "Where the original and the other copies are",
    "検索": "Search",
    "案件": "Cases",
    "案件一覧": "Cases",
    "フォルダ": "Folders",
    "文書管理": "Records officer",
    "監査": "Audit",
    "サインイン": "Sign in",
    "サインアウト": "Sign out",
    "利用者ID": "User ID",
    "パスワード": "Password",
    "APIキー": "API key",
    "パスワードでサインイン": "Sign in with password",
    "APIキーでサインイン": "Sign in with an API key",
    "または": "or",
    "English": "English",
    "日本語": "日本語",
    "件名": "Title",
    "ファイル名": "File name",
    "所属": "Organization",
    "文書分類": "Document class",
    "フォルダの場所": "Folder",
    "種類": "Type",
    "大きさ": "Size",
    "ハッシュ値（SHA-256）": "Hash (SHA-256)",
    "状態": "Status",
    "決裁済": "Official",
    "作業中": "Working",
    "廃棄済": "Destroyed",
    "移管済": "Transferred",
    "決裁": "Approval",
    "決裁日": "Approved on",
    "決裁者": "Approvers",
    "外部システム": "External system",
    "決裁情報はありません。": "No approval recorded.",
    "保存期間": "Retention",
    "起算日": "Retention start",
    "満了日": "Retention end",
    "満了時の措置": "Disposition",
    "廃棄": "Destroy",
    "移管": "Transfer",
    "未確定（案件の完結時に確定します）": "Not fixed yet (set when the case closes)",
    "保留": "Holds",
    "保留はありません。": "No holds.",
    "版の履歴": "Version history",
    "版": "Version",
    "登録日時": "Registered",
    "ダウンロード": "Download",
    "フォルダに写しを作る": "Copy into folder",
    "写しを作る": "Make copy",
    "写し先フォルダ": "Target folder",
    "この文書は写しです。": "This document is a copy.",
    "原本を開く": "Open the original",
    "原本は閲覧できない場所にあります。": "The original is in a folder you cannot open.",
    "この文書が原本です。": "This document is the original.",
    "写しの一覧": "List of copies",
    "完全性の確認": "Fixity",
    "最終確認": "Last check",
    "未確認": "Not checked yet",
    "正常": "OK",
    "異常": "Mismatch",
    "文書日付": "Document date",
    "案件ID": "Case ID",
    "経緯": "Timeline",
    "案件情報": "Case",
    "年度": "Fiscal year",
    "開始日": "Opened",
    "完結日": "Closed",
    "進行中": "Open",
    "完結": "Closed",
    "担当者": "Members",
    "文書": "Documents",
    "サブフォルダ": "Subfolders",
    "文書はありません。": "No documents.",
    "登録": "Upload",
    "ファイルをここにドラッグ＆ドロップ、または選択してください。": "Drag and drop files here, or choose them.",
    "アップロード": "Upload",
    "新しいフォルダ": "New folder",
    "作成": "Create",
    "チームフォルダ": "Team folders",
    "組織共用フォルダ": "Shared folders",
    "案件フォルダ": "Case folders",
    "フォルダはありません。": "No folders.",
    "新しい案件": "New case",
    "日時": "When",
    "操作者": "Who",
    "内容": "What",
    "前へ": "Previous",
    "次へ": "Next",
    "全": "All",
    "該当する文書はありません。": "No matching documents.",
    "件": "hits",
    "絞り込み": "Filters",
    "すべて": "All",
    "組織": "Organization",
    "フォルダの種類": "Folder kind",
    "決裁区分": "Status",
    "ホーム": "Home",
    "メッセージ": "Message",
    "戻る": "Back",
    "トップへ": "Go to the top page",
    "エラー": "Error",
    "ページが見つかりません": "Page not found",
    "権限がありません": "Not allowed",
    "入力内容を確認してください": "Please check your input",
    "サインインが必要です": "Please sign in",
    "問題が発生しました": "Something went wrong",
    "同じ内容の原本が既にあるため、写しとして登録しました。": "The same content already has an original, so this file was registered as a copy.",
    "原本として登録しました。": "Registered as the original.",
    "登録しました。": "Registered.",
    "写しを作りました。": "Copy created.",
    "期限到来": "Due",
    "廃棄・移管の手続": "Disposition batches",
    "保留・延長": "Holds and extensions",
    "管理簿": "File register",
    "監査ログ": "Audit log",
    "チェックポイント": "Checkpoints",
    "完全性検査": "Fixity",
    "検証": "Verification",
    "この機能はまだ利用できません。": "This feature is not available yet.",
}


def translate(lang: str, text: str, **kw: object) -> str:
    out = EN.get(text, text) if lang == "en" else text
    return out.format(**kw) if kw else out


def to_local(dt: datetime, tz: str) -> datetime:
    return as_utc(dt).astimezone(ZoneInfo(tz))


def fmt_date(value: date | datetime | str | None, tz: str, lang: str = "ja") -> str:
    """2026年7月15日 (a datetime is first converted to the city's time zone)."""
    if value is None or value == "":
        return ""
    if isinstance(value, str):
        value = (
            datetime.fromisoformat(value.replace("Z", "+00:00"))
            if "T" in value
            else (date.fromisoformat(value))
        )
    if isinstance(value, datetime):
        value = to_local(value, tz).date()
    if lang == "en":
        return value.isoformat()
    return f"{value.year}年{value.month}月{value.day}日"


def fmt_datetime(value: datetime | str | None, tz: str, lang: str = "ja") -> str:
    """2026年7月15日 14:03 in the city's time zone."""
    if value is None or value == "":
        return ""
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    local = to_local(value, tz)
    if lang == "en":
        return local.strftime("%Y-%m-%d %H:%M")
    return f"{local.year}年{local.month}月{local.day}日 {local:%H:%M}"


def fmt_fiscal_year(fy: int | None, lang: str = "ja") -> str:
    """令和8年度（2026年度） / FY2026."""
    if fy is None:
        return ""
    if lang == "en":
        return f"FY{fy}"
    return f"{reiwa_label(fy)}（{fy}年度）"


def fmt_size(n: int | None) -> str:
    if n is None:
        return ""
    value = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{n:,} B" if unit == "B" else f"{value:.1f} {unit}（{n:,} B）"
        value /= 1024
    return f"{n:,} B"  # pragma: no cover


RETENTION_JA = {
    "lt1": "1年未満",
    "1": "1年",
    "3": "3年",
    "5": "5年",
    "10": "10年",
    "30": "30年",
    "permanent": "永年",
}
DISPOSITION_JA = {"destroy": "廃棄", "transfer": "移管"}
STATUS_JA = {"official": "決裁済", "working": "作業中"}
STATE_JA = {"live": "", "destroyed": "廃棄済", "transferred": "移管済"}
FOLDER_KIND_JA = {"case": "案件フォルダ", "team": "チームフォルダ", "shared": "組織共用フォルダ"}
ROLE_JA = {
    "staff": "職員",
    "records_officer": "文書管理担当",
    "auditor": "監査",
    "admin": "システム管理者",
}
