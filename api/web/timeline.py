"""経緯: audit events of a case told as sentences a newcomer can follow."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from genpon.api.web.i18n import fmt_date
from genpon.api.web.lookups import Names
from genpon.records.models import AuditEvent

# action -> (Japanese sentence, English sentence); placeholders come from the event details.
SENTENCES: dict[str, tuple[str, str]] = {
    "case.created": ("{who}が案件「{title}」を作成しました。", "{who} created the case “{title}”."),
    "case.updated": ("{who}が案件の情報を変更しました。", "{who} changed the case data."),
    "case.member_added": (
        "{who}が{member}を担当者に加えました。",
        "{who} added {member} as a member.",
    ),
    "case.closed": ("{who}が案件を完結しました。", "{who} closed the case."),
    "case.reopened": ("{who}が案件を再開しました。", "{who} reopened the case."),
    "folder.created": (
        "{who}がフォルダ「{name}」を作りました。",
        "{who} created the folder “{name}”.",
    ),
    "document.deposited": (
        "{who}が「{filename}」を登録しました{copy_ja}。",
        "{who} registered “{filename}”{copy_en}.",
    ),
    "document.approved": (
        "「{doc}」が決裁されました（決裁日 {approved_on}{approvers_ja}）。",
        "“{doc}” was approved (on {approved_on}).",
    ),
    "document.copied": ("{who}が「{doc}」の写しを作りました。", "{who} made a copy of “{doc}”."),
    "document.copy_made": (
        "{who}が「{doc}」の写しを別の場所に作りました。",
        "{who} copied “{doc}” elsewhere.",
    ),
    "document.read": (
        "{who}が「{doc}」を閲覧・ダウンロードしました。",
        "{who} downloaded “{doc}”.",
    ),
    "document.previewed": (
        "{who}が「{doc}」を画面で閲覧しました。",
        "{who} viewed “{doc}” on screen.",
    ),
    "document.versioned": (
        "{who}が「{doc}」の第{version}版を登録しました。",
        "{who} added version {version} of “{doc}”.",
    ),
    "document.corrected": (
        "{who}が「{doc}」の訂正版を登録しました。",
        "{who} registered a correction of “{doc}”.",
    ),
    "retention.disposal_requested": (
        "{who}が{count}件の{act_ja}を起案しました（伺い #{batch_id}）。",
        "{who} proposed {act_en} of {count} document(s) (batch #{batch_id}).",
    ),
    "retention.disposal_approved": (
        "{who}が{act_ja}を承認しました（伺い #{batch_id}、{count}件）。",
        "{who} approved the {act_en} (batch #{batch_id}).",
    ),
    "retention.disposal_rejected": (
        "{who}が{act_ja}を却下しました（伺い #{batch_id}）。",
        "{who} rejected the {act_en} (batch #{batch_id}).",
    ),
    "retention.hold_placed": (
        "{who}が保留を設定しました（{hold}）。",
        "{who} placed a hold ({hold}).",
    ),
    "retention.hold_released": ("{who}が保留を解除しました。", "{who} released a hold."),
    "retention.extended": (
        "{who}が保存期間を{years}年延長しました。",
        "{who} extended retention by {years} year(s).",
    ),
    "document.original_moved": (
        "原本の役割が「{doc}」に移りました。",
        "“{doc}” became the original.",
    ),
}


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


def describe(event: AuditEvent, names: Names, titles: dict[int, str], lang: str) -> Entry:
    d: dict[str, Any] = dict(event.details or {})
    doc_id = (
        int(event.target_id)
        if event.target_type == "document" and event.target_id.isdigit()
        else None
    )
    values: dict[str, Any] = {
        "who": names.person(event.actor),
        "title": d.get("title", ""),
        "member": names.person(d.get("login")),
        "name": d.get("name", ""),
        "filename": d.get("filename", ""),
        "doc": titles.get(doc_id or 0, f"文書 {event.target_id}"),
        "approved_on": _day(d.get("approved_on"), lang),
        "approvers_ja": f"、決裁者 {'・'.join(d['approvers'])}" if d.get("approvers") else "",
        "version": d.get("version", ""),
        "count": d.get("count", ""),
        "batch_id": d.get("batch_id", ""),
        "act_ja": {"transfer": "移管", "destroy": "廃棄"}.get(d.get("action", ""), "廃棄・移管"),
        "act_en": {"transfer": "transfer", "destroy": "disposal"}.get(
            d.get("action", ""), "disposition"
        ),
        "hold": d.get("hold_type_label") or d.get("hold_type", ""),
        "years": d.get("years", ""),
        "copy_ja": "（同じ内容の原本があるため写しとして）" if d.get("is_copy") else "",
        "copy_en": " (as a copy of an existing original)" if d.get("is_copy") else "",
    }
    pair = SENTENCES.get(event.action)
    if pair is None:
        sentence = f"{values['who']}: {event.action}"
    else:
        sentence = (pair[1] if lang == "en" else pair[0]).format(**values)
    return Entry(
        at=event.at, who=values["who"], action=event.action, sentence=sentence, document_id=doc_id
    )
