"""経緯: audit events of a case told as sentences a newcomer can follow."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from genpon.api.web.i18n import fmt_date
from genpon.api.web.lookups import Names
from genpon.records.audit.actions import AuditAction
from genpon.records.models import AuditEvent
from genpon.retention.batches import reason_label

A = AuditAction  # short, for the table below

# action -> (Japanese sentence, English sentence); placeholders come from the event (see
# ``describe``). Every action has its pair (a test checks), so no event shows a bare name.
SENTENCES: dict[AuditAction, tuple[str, str]] = {
    # 案件・フォルダ
    A.CASE_CREATED: ("{who}が案件「{title}」を作成しました。", "{who} created the case “{title}”."),
    A.CASE_UPDATED: ("{who}が案件の情報を変更しました。", "{who} changed the case data."),
    A.CASE_MEMBER_ADDED: (
        "{who}が{member}を担当者に加えました。",
        "{who} added {member} as a member.",
    ),
    A.CASE_CLOSED: ("{who}が案件を完結しました。", "{who} closed the case."),
    A.CASE_REOPENED: ("{who}が案件を再開しました。", "{who} reopened the case."),
    A.FOLDER_CREATED: (
        "{who}がフォルダ「{name}」を作りました。",
        "{who} created the folder “{name}”.",
    ),
    # 文書
    A.DOCUMENT_DEPOSITED: (
        "{who}が「{filename}」を登録しました{copy_ja}。",
        "{who} registered “{filename}”{copy_en}.",
    ),
    A.DOCUMENT_IMPORTED: (
        "{who}が「{doc}」を既存の共有フォルダから取り込みました。",
        "{who} imported “{doc}” from a legacy share.",
    ),
    A.DOCUMENT_APPROVED: (
        "「{doc}」が決裁されました（決裁日 {approved_on}{approvers_ja}）。",
        "“{doc}” was approved (on {approved_on}).",
    ),
    A.DOCUMENT_COPIED: ("{who}が「{doc}」の写しを作りました。", "{who} made a copy of “{doc}”."),
    A.DOCUMENT_COPY_MADE: (
        "{who}が「{doc}」の写しを別の場所に作りました。",
        "{who} copied “{doc}” elsewhere.",
    ),
    A.DOCUMENT_READ: (
        "{who}が「{doc}」を閲覧・ダウンロードしました。",
        "{who} downloaded “{doc}”.",
    ),
    A.DOCUMENT_PREVIEWED: (
        "{who}が「{doc}」を画面で閲覧しました。",
        "{who} viewed “{doc}” on screen.",
    ),
    A.DOCUMENT_VERSIONED: (
        "{who}が「{doc}」の第{version}版を登録しました。",
        "{who} added version {version} of “{doc}”.",
    ),
    A.DOCUMENT_CORRECTED: (
        "{who}が「{doc}」の訂正版を登録しました。",
        "{who} registered a correction of “{doc}”.",
    ),
    A.DOCUMENT_ORIGINAL_MOVED: (
        "原本の役割が「{doc}」に移りました。",
        "“{doc}” became the original.",
    ),
    A.DOCUMENT_DESTROYED: (
        "{who}が「{doc}」を廃棄しました（伺い #{batch_id}）。",
        "{who} destroyed “{doc}” (batch #{batch_id}).",
    ),
    A.DOCUMENT_TRANSFERRED: (
        "{who}が「{doc}」を移管しました（伺い #{batch_id}）。",
        "{who} transferred “{doc}” to the archives (batch #{batch_id}).",
    ),
    # 保存期間・廃棄・移管
    A.RETENTION_HOLD_PLACED: (
        "{who}が保留を設定しました（{hold}）。",
        "{who} placed a hold ({hold}).",
    ),
    A.RETENTION_HOLD_RELEASED: ("{who}が保留を解除しました。", "{who} released a hold."),
    A.RETENTION_EXTENDED: (
        "{who}が保存期間を{years}年延長しました。",
        "{who} extended retention by {years} year(s).",
    ),
    A.RETENTION_BATCH_CREATED: (
        "{who}が{act_ja}伺い #{target}を作成しました（{items}件）。",
        "{who} created {act_en} batch #{target} ({items} document(s)).",
    ),
    A.RETENTION_BATCH_APPROVED: (
        "{who}が伺い #{target}の{items}件を承認しました。",
        "{who} approved {items} document(s) of batch #{target}.",
    ),
    A.RETENTION_BATCH_REJECTED: (
        "{who}が伺い #{target}の{items}件を却下しました（理由: {reason}）。",
        "{who} rejected {items} document(s) of batch #{target} (reason: {reason}).",
    ),
    A.RETENTION_BATCH_EXECUTION_STARTED: (
        "{who}が伺い #{target}の{act_ja}を開始しました。",
        "{who} started the {act_en} of batch #{target}.",
    ),
    A.RETENTION_BATCH_EXECUTED: (
        "{who}が伺い #{target}の廃棄を完了しました（{destroyed}件、廃棄証明書 {certificate_id}）。",
        "{who} completed the disposal of batch #{target} ({destroyed} document(s), "
        "certificate {certificate_id}).",
    ),
    A.RETENTION_ITEM_SKIPPED: (
        "「{doc}」は伺い #{batch_id}の実行から除外されました（{skip_ja}）。",
        "“{doc}” was left out of batch #{batch_id} ({skip_en}).",
    ),
    A.RETENTION_DISPOSAL_REQUESTED: (
        "{who}が{count}件の{act_ja}を起案しました（伺い #{batch_id}）。",
        "{who} proposed {act_en} of {count} document(s) (batch #{batch_id}).",
    ),
    A.RETENTION_DISPOSAL_APPROVED: (
        "{who}が{act_ja}を承認しました（伺い #{batch_id}、{count}件）。",
        "{who} approved the {act_en} (batch #{batch_id}).",
    ),
    A.RETENTION_DISPOSAL_REJECTED: (
        "{who}が{act_ja}を却下しました（伺い #{batch_id}）。",
        "{who} rejected the {act_en} (batch #{batch_id}).",
    ),
    A.RETENTION_TRANSFER_EXPORTED: (
        "{who}が伺い #{target}の移管パッケージを作成しました（{items}件）。",
        "{who} built the transfer package of batch #{target} ({items} document(s)).",
    ),
    A.RETENTION_TRANSFER_ACKNOWLEDGED: (
        "{who}が伺い #{target}の移管先での受領を記録しました（{transferred}件{receipt_ja}）。",
        "{who} recorded that the archives received batch #{target} "
        "({transferred} document(s){receipt_en}).",
    ),
    # 監査・完全性
    A.AUDIT_EXPORTED: (
        "{who}が監査ログを書き出しました（{directory}）。",
        "{who} exported the audit log ({directory}).",
    ),
    A.FIXITY_COMPLETED: (
        "{who}が保存内容の完全性検査を行いました（{checked}件中 正常{ok}件）。",
        "{who} ran a fixity check ({ok} of {checked} intact).",
    ),
    A.FIXITY_FAILED: (
        "完全性検査で問題が見つかりました（{problem_ja}、SHA-256 {sha_short}…）。",
        "The fixity check found a problem ({problem_en}, SHA-256 {sha_short}…).",
    ),
    # 取込
    A.IMPORT_STARTED: (
        "{who}が共有フォルダ「{source}」の取込を開始しました。",
        "{who} started importing the share “{source}”.",
    ),
    A.IMPORT_COMPLETED: (
        "{who}が取込を完了しました（ファイル{files_seen}件、登録{imported}件）。",
        "{who} finished an import ({files_seen} file(s) seen, {imported} registered).",
    ),
    # マスタ・利用者・鍵
    A.MASTER_IMPORTED: (
        "{who}がマスタ（{target}）を取り込みました。",
        "{who} imported master data ({target}).",
    ),
    A.USER_PASSWORD_SET: (
        "{who}が{user}のパスワードを設定しました。",
        "{who} set the password of {user}.",
    ),
    A.KEY_ISSUED: (
        "{who}が{user}のAPIキー（{prefix}）を発行しました。",
        "{who} issued an API key ({prefix}) for {user}.",
    ),
    A.KEY_REVOKED: (
        "{who}が{user}のAPIキー（{prefix}）を無効にしました。",
        "{who} revoked the API key ({prefix}) of {user}.",
    ),
    A.SYSTEM_KEY_ROTATED: (
        "{who}がシステム署名鍵を更新しました（新しい鍵 {new_key_id}）。",
        "{who} rotated the system signing key (new key {new_key_id}).",
    ),
    A.SIGN_IN_FAILED: (
        "{user}としてのサインインに失敗しました（接続元 {client}）。",
        "Sign-in as {user} failed (client {client}).",
    ),
    A.SIGN_IN_LOCKED: (
        "失敗が続いたため、{user}のサインインを一時停止しました（接続元 {client}）。",
        "Sign-in as {user} was paused after repeated failures (client {client}).",
    ),
    # 管理画面
    A.USER_CREATED: ("{who}が利用者{user}を登録しました。", "{who} created the user {user}."),
    A.USER_UPDATED: (
        "{who}が{user}の登録内容（氏名・所属・役割・連携先）を変更しました。",
        "{who} changed the account of {user} (name, organization, roles or grants).",
    ),
    A.USER_DISABLED: ("{who}が{user}を無効にしました。", "{who} disabled {user}."),
    A.USER_ENABLED: ("{who}が{user}を有効に戻しました。", "{who} enabled {user} again."),
    A.MASTER_EXPORTED: (
        "{who}がマスタ（{target}）をCSVに書き出しました。",
        "{who} exported master data ({target}) as CSV.",
    ),
}

_KNOWN = frozenset(AuditAction)
_ACT_JA = {"transfer": "移管", "destroy": "廃棄"}
_ACT_EN = {"transfer": "transfer", "destroy": "disposal"}
_PROBLEM_JA = {"missing": "内容が見つかりません", "corrupt": "内容が壊れています"}


def _day(raw: Any, lang: str) -> str:
    try:
        return fmt_date(str(raw), "UTC", lang) if raw else ""
    except ValueError:
        return str(raw)


@dataclass
class Entry:
    at: str
    who: str
    action: str
    sentence: str
    document_id: int | None


def _values(
    event: AuditEvent, d: dict[str, Any], names: Names, doc: str, lang: str
) -> dict[str, Any]:
    """Every placeholder of ``SENTENCES``, from the event and its details ("" when absent)."""
    act = d.get("action", "")
    receipt = d.get("receipt_reference")
    skip = str(d.get("reason") or "")
    problem = str(d.get("problem") or "error")
    return {
        "who": names.person(event.actor),
        "target": event.target_id,
        "user": names.person(event.target_id),
        "title": d.get("title", ""),
        "member": names.person(d.get("login")),
        "name": d.get("name", ""),
        "filename": d.get("filename", ""),
        "doc": doc,
        "approved_on": _day(d.get("approved_on"), lang),
        "approvers_ja": f"、決裁者 {'・'.join(d['approvers'])}" if d.get("approvers") else "",
        "version": d.get("version", ""),
        "count": d.get("count", ""),
        "items": d.get("items", ""),
        "batch_id": d.get("batch_id", ""),
        "act_ja": _ACT_JA.get(act, "廃棄・移管"),
        "act_en": _ACT_EN.get(act, "disposition"),
        "reason": d.get("reason") or "",
        "skip_ja": reason_label(skip) if skip else "",
        "skip_en": skip,
        "hold": d.get("hold_type_label") or d.get("hold_type", ""),
        "years": d.get("years", ""),
        "copy_ja": "（同じ内容の原本があるため写しとして）" if d.get("is_copy") else "",
        "copy_en": " (as a copy of an existing original)" if d.get("is_copy") else "",
        "destroyed": d.get("destroyed", ""),
        "certificate_id": d.get("certificate_id", ""),
        "transferred": d.get("transferred", ""),
        "receipt_ja": f"、受領番号 {receipt}" if receipt else "",
        "receipt_en": f", receipt {receipt}" if receipt else "",
        "directory": d.get("directory", ""),
        "checked": d.get("checked", ""),
        "ok": d.get("ok", ""),
        "problem_ja": _PROBLEM_JA.get(problem, "読み取りエラー"),
        "problem_en": problem,
        "sha_short": event.target_id[:12],
        "source": d.get("source", ""),
        "client": d.get("client", ""),
        "files_seen": d.get("files_seen", ""),
        "imported": d.get("imported", ""),
        "prefix": d.get("prefix", ""),
        "new_key_id": d.get("new_key_id", ""),
    }


def describe(event: AuditEvent, names: Names, titles: dict[int, str], lang: str) -> Entry:
    d: dict[str, Any] = dict(event.details or {})
    doc_id = (
        int(event.target_id)
        if event.target_type == "document" and event.target_id.isdigit()
        else None
    )
    values = _values(event, d, names, titles.get(doc_id or 0, f"文書 {event.target_id}"), lang)
    if event.action in _KNOWN:
        ja, en = SENTENCES[AuditAction(event.action)]
        sentence = (en if lang == "en" else ja).format(**values)
    else:  # a name this version does not know
        sentence = f"{values['who']}: {event.action}"
    return Entry(
        at=event.at, who=values["who"], action=event.action, sentence=sentence, document_id=doc_id
    )
