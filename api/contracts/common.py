"""Shared pieces of the contract: the error body, timestamps, pages, declared responses."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Generic, TypeVar

from fastapi.responses import Response
from pydantic import BaseModel, PlainSerializer, WithJsonSchema

T = TypeVar("T")

# A timestamp the dict already holds as ISO 8601 text (schemas.iso, model_dump(mode="json")).
IsoTime = Annotated[str, WithJsonSchema({"type": "string", "format": "date-time"})]
IsoDate = Annotated[str, WithJsonSchema({"type": "string", "format": "date"})]
# A datetime object in the dict: written as ``datetime.isoformat()`` (what FastAPI's encoder
# wrote before the routes declared models; Pydantic's own format would write "Z" for UTC).
RawTime = Annotated[
    datetime,
    PlainSerializer(lambda d: d.isoformat(), return_type=str, when_used="json"),
    WithJsonSchema({"type": "string", "format": "date-time"}),
]


class ErrorDetail(BaseModel):
    code: str
    message: str
    details: dict[str, Any]


class ErrorResponse(BaseModel):
    """The one error shape of the API (``api/errors.py``): ``{"error": {code, message,
    details}}``; a 422 from request validation lists the bad fields in ``details.errors``."""

    error: ErrorDetail


_DESCRIPTIONS = {
    401: "認証が必要です（API キーがない・無効）",
    403: "権限がありません",
    404: "見つかりません（見る権限がない場合も 404）",
    409: "状態の競合（重複、べき等キーの不一致、処理できない状態）",
    411: "Content-Length が必要です",
    413: "大きすぎます",
    415: "受け付けない形式です",
    422: "入力内容に誤りがあります",
    503: "必要な機能が利用できません",
}


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` entries: each status answered with :class:`ErrorResponse`."""
    return {s: {"model": ErrorResponse, "description": _DESCRIPTIONS[s]} for s in statuses}


BINARY = {"schema": {"type": "string", "format": "binary"}}


def file_response(description: str, *media_types: str) -> dict[int | str, dict[str, Any]]:
    """A 200 whose body is a file (download, export, report) in one of ``media_types``."""
    return {200: {"description": description, "content": {m: BINARY for m in media_types}}}


class FileDownload(Response):
    """``response_class`` of a route that returns its own file response: no default media
    type, so the OpenAPI lists only the types of :func:`file_response` for 200 and JSON (the
    one error schema) for the errors."""

    media_type = None


class Page(BaseModel, Generic[T]):
    """A page of a list: ``data`` plus the total ``count`` and the ``offset``/``limit`` used."""

    data: list[T]
    count: int
    offset: int
    limit: int


class Listing(BaseModel, Generic[T]):
    """A whole (unpaged) list and its length."""

    data: list[T]
    count: int
