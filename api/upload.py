"""Streaming ``multipart/form-data`` reception: the file goes straight into a blob stager
(hashed while written, never held in memory); small fields are kept as text."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from fastapi import Request
from genpon.core.errors import InvalidInput, PayloadTooLarge
from genpon.storage.base import BlobStore, BlobTooLarge, StagedBlob, Stager
from starlette.concurrency import run_in_threadpool
from streaming_form_data import StreamingFormDataParser
from streaming_form_data.targets import BaseTarget, ValueTarget
from streaming_form_data.validators import MaxSizeValidator, ValidationError

FIELD_LIMIT = 64 * 1024
BATCH = 1 << 20


class _StagerTarget(BaseTarget):
    def __init__(self, stager: Stager) -> None:
        super().__init__()
        self.stager = stager
        self.seen = False

    def on_start(self) -> None:
        self.seen = True

    def on_data_received(self, chunk: bytes) -> None:
        self.stager.write(chunk)


@dataclass
class Upload:
    staged: StagedBlob
    filename: str
    content_type: str | None
    fields: dict[str, str] = field(default_factory=dict)


async def receive(
    request: Request,
    store: BlobStore,
    *,
    max_bytes: int,
    field_names: tuple[str, ...],
    file_field: str = "file",
) -> Upload:
    ctype = request.headers.get("content-type", "")
    if not ctype.lower().startswith("multipart/form-data"):
        raise InvalidInput(
            "multipart_required",
            "multipart/form-data でファイルを送信してください（項目名 file）。",
        )
    length = request.headers.get("content-length")
    if length and length.isdigit() and int(length) > max_bytes + 1024 * 1024:
        raise PayloadTooLarge(
            "file_too_large",
            f"ファイルが大きすぎます（上限 {max_bytes:,} バイト）。",
            {"limit": max_bytes},
        )
    stager = store.stager(max_bytes=max_bytes)
    try:
        parser = StreamingFormDataParser(headers=dict(request.headers))
        target = _StagerTarget(stager)
        parser.register(file_field, target)
        values = {
            name: ValueTarget(validator=MaxSizeValidator(FIELD_LIMIT)) for name in field_names
        }
        for name, t in values.items():
            parser.register(name, t)
        # Double buffering: while a worker thread parses, hashes and writes one batch (hashlib
        # and os.write release the GIL), the event loop keeps reading the next from the socket.
        pending = bytearray()
        busy: asyncio.Future[None] | None = None
        try:
            async for chunk in request.stream():
                pending += chunk
                if len(pending) >= BATCH:
                    data, pending = bytes(pending), bytearray()
                    if busy is not None:
                        await busy
                    busy = asyncio.ensure_future(run_in_threadpool(parser.data_received, data))
        finally:
            if busy is not None:  # never abort the stager under a running writer
                await asyncio.gather(busy, return_exceptions=True)
        if busy is not None:
            busy.result()
        if pending:
            await run_in_threadpool(parser.data_received, bytes(pending))
        if not target.seen:
            raise InvalidInput("file_required", "ファイル（項目名 file）がありません。")
        staged = await run_in_threadpool(stager.finish)
    except BlobTooLarge:
        stager.abort()
        raise PayloadTooLarge(
            "file_too_large",
            f"ファイルが大きすぎます（上限 {max_bytes:,} バイト）。",
            {"limit": max_bytes},
        ) from None
    except ValidationError:
        stager.abort()
        raise InvalidInput("field_too_large", "フォームの項目が長すぎます。") from None
    except InvalidInput:
        stager.abort()
        raise
    except Exception as exc:  # the parser raises plain exceptions on malformed bodies
        stager.abort()
        raise InvalidInput(
            "malformed_multipart", f"multipart の形式が正しくありません: {type(exc).__name__}"
        ) from None
    fields = {}
    for name, t in values.items():
        if t.value:
            try:
                fields[name] = t.value.decode("utf-8")
            except UnicodeDecodeError:
                store.discard(staged)
                raise InvalidInput(
                    "invalid_encoding", f"{name} は UTF-8 で送信してください。"
                ) from None
    return Upload(
        staged=staged,
        filename=target.multipart_filename or "file",
        content_type=target.multipart_content_type,
        fields=fields,
    )
