"""Streaming ``multipart/form-data`` reception: the file goes straight into a blob stager
(hashed while written, never held in memory); small fields are kept as text."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from fastapi import Request
from genpon.core.errors import GenponError, InvalidInput, PayloadTooLarge
from genpon.storage.base import BlobStore, BlobTooLarge, StagedBlob, Stager
from starlette.concurrency import run_in_threadpool
from streaming_form_data import StreamingFormDataParser
from streaming_form_data.targets import BaseTarget, ValueTarget
from streaming_form_data.validators import MaxSizeValidator, ValidationError

T = TypeVar("T")

FIELD_LIMIT = 64 * 1024
BATCH = 1 << 20


class DuplicateField(Exception):
    """A form field arrived twice (parts of one name would otherwise be concatenated)."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


class _StagerTarget(BaseTarget):
    """The file part. Its stager (a temp file) is opened when the part starts: the parser runs
    in a worker thread, so opening it there costs no extra hop off the event loop."""

    def __init__(self, store: BlobStore, max_bytes: int, name: str) -> None:
        super().__init__()
        self.store = store
        self.max_bytes = max_bytes
        self.stager: Stager | None = None
        self.name = name
        self.seen = False

    def on_start(self) -> None:
        if self.seen:
            raise DuplicateField(self.name)
        self.seen = True
        self.stager = self.store.stager(max_bytes=self.max_bytes)

    def on_data_received(self, chunk: bytes) -> None:
        assert self.stager is not None
        self.stager.write(chunk)

    # (not ``finish``/``abort``: the parser calls ``finish`` at the end of each part)
    def finish_file(self) -> StagedBlob:
        if self.stager is None:
            raise InvalidInput("file_required", "ファイル（項目名 file）がありません。")
        return self.stager.finish()

    def abort_file(self) -> None:
        if self.stager is not None:
            self.stager.abort()


class _FieldTarget(ValueTarget):
    def __init__(self, name: str) -> None:
        super().__init__(validator=MaxSizeValidator(FIELD_LIMIT))
        self.name = name
        self.seen = False

    def on_start(self) -> None:
        if self.seen:
            raise DuplicateField(self.name)
        self.seen = True


@dataclass
class Upload:
    staged: StagedBlob
    filename: str
    content_type: str | None
    fields: dict[str, str] = field(default_factory=dict)


def _too_large(max_bytes: int) -> PayloadTooLarge:
    return PayloadTooLarge(
        "file_too_large",
        f"ファイルが大きすぎます（上限 {max_bytes:,} バイト）。",
        {"limit": max_bytes},
    )


def _check_headers(request: Request, max_bytes: int) -> None:
    ctype = request.headers.get("content-type", "")
    if not ctype.lower().startswith("multipart/form-data"):
        raise InvalidInput(
            "multipart_required",
            "multipart/form-data でファイルを送信してください（項目名 file）。",
        )
    length = request.headers.get("content-length")
    if length and length.isdigit() and int(length) > max_bytes + 1024 * 1024:
        raise _too_large(max_bytes)


class _Once:
    """The caller's check that must pass before the parser sees a byte (``first``): run at
    the start of the first worker call, so that it costs no hop of its own."""

    def __init__(self, check: Callable[[], object] | None) -> None:
        self.check = check
        self.done = check is None

    def __call__(self) -> None:
        if not self.done:
            assert self.check is not None
            self.check()
            self.done = True


async def _feed(
    request: Request, parser: StreamingFormDataParser, first: _Once, last: Callable[[bytes], T]
) -> T:
    """Stream the body into the parser; ``last(final batch)`` parses the rest and finishes.
    Double buffering: while a worker thread parses, hashes and writes one batch (hashlib and
    os.write release the GIL), the event loop keeps reading the next from the socket. The
    last batch, the file's finish (fsync) and what the caller does with the upload run in one
    worker call: a small upload costs a single hop. ``first`` runs in the first worker call,
    before the parser: at most one batch (BATCH bytes) is read before it, into memory."""

    def parse(data: bytes) -> None:
        first()
        parser.data_received(data)

    pending = bytearray()
    busy: asyncio.Future[None] | None = None
    try:
        async for chunk in request.stream():
            pending += chunk
            if len(pending) >= BATCH:
                data, pending = bytes(pending), bytearray()
                if busy is not None:
                    await busy
                busy = asyncio.ensure_future(run_in_threadpool(parse, data))
    finally:
        if busy is not None:  # never abort the stager under a running writer
            await asyncio.gather(busy, return_exceptions=True)
    if busy is not None:
        busy.result()
    return await run_in_threadpool(last, bytes(pending))


class _WorkFailed(Exception):
    """What the caller's work raised: passed on as it is, not read as a malformed body."""

    def __init__(self, exc: BaseException) -> None:
        super().__init__(repr(exc))
        self.exc = exc


def _translate(exc: Exception, max_bytes: int) -> GenponError:
    """The caller's error for what went wrong while parsing and staging."""
    if isinstance(exc, GenponError):
        return exc
    if isinstance(exc, BlobTooLarge):
        return _too_large(max_bytes)
    if isinstance(exc, ValidationError):
        return InvalidInput("field_too_large", "フォームの項目が長すぎます。")
    if isinstance(exc, DuplicateField):
        return InvalidInput(
            "duplicate_field",
            f"フォームの項目 {exc.name} が複数回送信されました。各項目は1回だけ送信してください。",
            {"field": exc.name},
        )
    # the parser raises plain exceptions on malformed bodies
    return InvalidInput(
        "malformed_multipart", f"multipart の形式が正しくありません: {type(exc).__name__}"
    )


def _decode_fields(values: dict[str, _FieldTarget]) -> dict[str, str]:
    fields = {}
    for name, t in values.items():
        if t.value:
            try:
                fields[name] = t.value.decode("utf-8")
            except UnicodeDecodeError:
                raise InvalidInput(
                    "invalid_encoding", f"{name} は UTF-8 で送信してください。"
                ) from None
    return fields


async def receive(
    request: Request,
    store: BlobStore,
    *,
    max_bytes: int,
    field_names: tuple[str, ...],
    file_field: str = "file",
) -> Upload:
    """Parse the form: the file part into a stager, the named fields as text. Any error
    (including a part sent twice: ``duplicate_field``) leaves nothing staged."""
    return await receive_then(
        request,
        store,
        max_bytes=max_bytes,
        field_names=field_names,
        file_field=file_field,
        work=lambda up: up,
    )


async def receive_then(
    request: Request,
    store: BlobStore,
    *,
    max_bytes: int,
    field_names: tuple[str, ...],
    work: Callable[[Upload], T],
    file_field: str = "file",
    first: Callable[[], object] | None = None,
) -> T:
    """:func:`receive`, then ``work(upload)`` in the worker-thread call that parses the last
    batch and finishes the file: a small deposit costs one hop for its body and its
    transaction together. Nothing stays staged when parsing or ``work`` fails; the errors of
    ``work`` are raised as they are.

    ``first()`` (the caller's authentication) runs in a worker thread before anything else:
    before the headers are judged, the body parsed or a file opened, so its error is the one
    answered. Normally it shares the first worker call (no hop of its own); when the request
    fails before that call, it runs on its own first."""
    once = _Once(first)
    try:
        _check_headers(request, max_bytes)
        target = _StagerTarget(store, max_bytes, file_field)
        values = {name: _FieldTarget(name) for name in field_names}
        parser = StreamingFormDataParser(headers=dict(request.headers))
        parser.register(file_field, target)
        for name, t in values.items():
            parser.register(name, t)
    except Exception as exc:
        if not once.done:
            await run_in_threadpool(once)
        raise _translate(exc, max_bytes) from None

    def last(data: bytes) -> T:
        once()
        if data:
            parser.data_received(data)
        staged = target.finish_file()
        try:
            up = Upload(
                staged=staged,
                filename=target.multipart_filename or "file",
                content_type=target.multipart_content_type,
                fields=_decode_fields(values),
            )
            return work(up)
        except BaseException as exc:
            store.discard(staged)
            raise _WorkFailed(exc) from exc

    try:
        return await _feed(request, parser, once, last)
    except _WorkFailed as failed:
        raise failed.exc from None
    except Exception as exc:
        if target.stager is not None:
            await run_in_threadpool(target.abort_file)
        if not once.done and not isinstance(exc, GenponError):
            await run_in_threadpool(once)  # e.g. the body ended early: who asks comes first
        raise _translate(exc, max_bytes) from None
