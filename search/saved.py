"""保存した検索 (saved searches): a person keeps a search of the search page under a name and
finds it on their start page. A saved search is the query and its filters, not its results:
opening it searches again, so it never shows what the person may no longer read. Each is
private to its owner (another person's id is "not found")."""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping

from genpon.core.errors import Conflict, Forbidden, InvalidInput, NotFound
from genpon.records.access import Actor
from genpon.search.models import SavedSearch
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

KEYS = ("q", "case_id", "organization", "class", "folder_kind", "status", "fiscal_year")
"""The parameters of the search page a saved search keeps (in the page's order)."""
MAX_PER_PERSON = 50


def _require_person(actor: Actor) -> None:
    if actor.kind != "person":
        raise Forbidden("forbidden_for_service_account", "検索の保存は職員のみ行えます。")


def clean_params(raw: Mapping[str, str]) -> dict[str, str]:
    """Only the search page's own parameters, trimmed; a search needs its words (``q``)."""
    params = {k: str(raw.get(k, "")).strip()[:200] for k in KEYS}
    params = {k: v for k, v in params.items() if v}
    if not params.get("q"):
        raise InvalidInput("empty_query", "保存する検索の検索語がありません。")
    return params


def list_saved(session: Session, actor: Actor) -> list[SavedSearch]:
    if actor.kind != "person":
        return []
    rows = session.exec(
        select(SavedSearch)
        .where(SavedSearch.user_id == actor.user_id)
        .order_by(col(SavedSearch.name), col(SavedSearch.id))
    ).all()
    return list(rows)


def save(session: Session, actor: Actor, name: str, params: Mapping[str, str]) -> SavedSearch:
    """Save (or, under an existing name of the same person, replace) a search."""
    _require_person(actor)
    label = unicodedata.normalize("NFC", name or "").strip()
    label = "".join(ch for ch in label if unicodedata.category(ch)[0] != "C")
    if not label:
        raise InvalidInput("invalid_name", "保存する検索の名前を入力してください。")
    if len(label) > 100:
        raise InvalidInput("invalid_name", "名前は100文字以内で入力してください。")
    cleaned = clean_params(params)
    existing = session.exec(
        select(SavedSearch).where(SavedSearch.user_id == actor.user_id, SavedSearch.name == label)
    ).first()
    if existing is not None:
        existing.params = cleaned
        session.add(existing)
        session.flush()
        return existing
    count = len(list_saved(session, actor))
    if count >= MAX_PER_PERSON:
        raise Conflict(
            "too_many_saved_searches",
            f"保存できる検索は{MAX_PER_PERSON}件までです。不要なものを削除してください。",
        )
    row = SavedSearch(user_id=actor.user_id, name=label, params=cleaned)
    try:
        with session.begin_nested():
            session.add(row)
            session.flush()
    except IntegrityError:  # saved twice at once under the same name
        raise Conflict("saved_search_exists", "同じ名前の検索が既に保存されています。") from None
    return row


def delete(session: Session, actor: Actor, saved_id: int) -> None:
    row = session.get(SavedSearch, saved_id)
    if row is None or actor.kind != "person" or row.user_id != actor.user_id:
        raise NotFound("saved_search_not_found", "保存した検索が見つかりません。")
    session.delete(row)
    session.flush()
