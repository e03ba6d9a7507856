"""Streaming ``multipart/form-data`` reception: the file goes straight into a blob stager
(hashed while written, never held in memory); small fields are kept as text.

The body is cut into parts by python-multipart's callback parser (the one Starlette uses): a
state machine over the raw bytes that hands each part's data on as slices, with no message
object per part. (The parser used before built an ``email.message`` per part and a header
class per header line: 1.4 ms of CPU for a small deposit, more than the rest of its parse.)
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar
from urllib.parse import unquote

from fastapi import Request
from genpon.core.errors import GenponError, InvalidInput, PayloadTooLarge
from genpon.storage.base import BlobStore, BlobTooLarge, StagedBlob, Stager
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.concurrency import run_in_threadpool

T = TypeVar("T")

FIELD_LIMIT = 64 * 1024  # one text field
HEADER_LIMIT = 16 * 1024  # one part's header section
FRAMING = 1024 * 1024  # what a body may hold besides the file: fields, headers, boundaries
BATCH = 1 << 20
#: RFC 7578 forbids ``filename*=`` in forms, but some clients send it (RFC 5987/2231 form)
_EXT_FILENAME = re.compile(r"filename\*\s*=\s*([\w!#$%&+^`{}~.-]*)'[^']*'([^;\s]+)", re.I)


class DuplicateField(Exception):
    """A form field arrived twice (parts of one name would otherwise be concatenated)."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


class Malformed(Exception):
    """The body is not well-formed ``multipart/form-data`` (said in the error's message)."""


class FieldTooLarge(Exception):
    """A text field is longer than :data:`FIELD_LIMIT`."""


def _filename(disposition: str, options: dict[bytes, bytes]) -> str | None:
    raw = options.get(b"filename")
    if raw is not None:  # browsers, curl and httpx send the name's UTF-8 bytes as they are
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            return raw.decode("latin-1")
    ext = _EXT_FILENAME.search(disposition)
    if ext is None:
        return None
    try:
        return unquote(ext.group(2), encoding=ext.group(1) or "utf-8", errors="strict")
    except (LookupError, UnicodeDecodeError):
        return None


class _Form:
    """The parts of one body as they arrive: the file part (``file_field``) into a stager
    opened when its headers end, the ``field_names`` into memory, other parts dropped.
    :meth:`feed` runs in a worker thread (the stager writes to disk)."""

    def __init__(
        self,
        boundary: bytes,
        store: BlobStore,
        max_bytes: int,
        file_field: str,
        field_names: tuple[str, ...],
    ) -> None:
        self.store = store
        self.max_bytes = max_bytes
        self.file_field = file_field
        self.wanted = frozenset(field_names)
        self.fields: dict[str, bytearray] = {}
        self.stager: Stager | None = None
        self.filename: str | None = None
        self.content_type: str | None = None
        self.ended = False
        self.size = 0
        self._headers: dict[bytes, bytes] = {}
        self._name = bytearray()
        self._value = bytearray()
        self._header_bytes = 0
        self._sink: Callable[[bytes], object] | None = None
        self.parser = MultipartParser(
            boundary,
            {
                "on_part_begin": self._part_begin,
                "on_header_field": self._header_field,
                "on_header_value": self._header_value,
                "on_header_end": self._header_end,
                "on_headers_finished": self._headers_finished,
                "on_part_data": self._part_data,
                "on_end": self._end,
            },
        )

    def feed(self, data: bytes) -> None:
        self.size += len(data)
        if self.size > self.max_bytes + FRAMING:
            raise BlobTooLarge(self.max_bytes)
        if data:
            self.parser.write(data)

    def finish(self) -> StagedBlob:
        """The staged file, once the closing boundary has arrived."""
        if not self.ended:
            raise Malformed("本文が終端の境界（boundary）の前で終わっています")
        if self.stager is None:
            raise InvalidInput("file_required", "ファイル（項目名 file）がありません。")
        return self.stager.finish()

    def abort(self) -> None:
        if self.stager is not None:
            self.stager.abort()

    # -- parser callbacks ---------------------------------------------------------------------

    def _part_begin(self) -> None:
        self._headers.clear()
        self._header_bytes = 0
        self._sink = None

    def _count(self, n: int) -> None:
        self._header_bytes += n
        if self._header_bytes > HEADER_LIMIT:
            raise Malformed("部分（part）のヘッダーが長すぎます")

    def _header_field(self, data: bytes, start: int, end: int) -> None:
        self._count(end - start)
        self._name += data[start:end]

    def _header_value(self, data: bytes, start: int, end: int) -> None:
        self._count(end - start)
        self._value += data[start:end]

    def _header_end(self) -> None:
        self._headers[bytes(self._name).strip().lower()] = bytes(self._value).strip()
        self._name.clear()
        self._value.clear()

    def _headers_finished(self) -> None:
        disposition = self._headers.get(b"content-disposition", b"").decode("latin-1")
        kind, options = parse_options_header(disposition)
        raw_name = options.get(b"name")
        if kind != b"form-data" or raw_name is None:
            raise Malformed("部分（part）に Content-Disposition: form-data; name がありません")
        try:
            name = raw_name.decode("utf-8")
        except UnicodeDecodeError:
            raise Malformed("項目名が UTF-8 ではありません") from None
        if name == self.file_field:
            if self.stager is not None:
                raise DuplicateField(name)
            self.stager = self.store.stager(max_bytes=self.max_bytes)
            self.filename = _filename(disposition, options)
            ctype = self._headers.get(b"content-type")
            self.content_type = ctype.decode("latin-1") if ctype else None
            self._sink = self.stager.write
        elif name in self.wanted:
            if name in self.fields:
                raise DuplicateField(name)
            self.fields[name] = value = bytearray()
            self._sink = self._field_writer(value)

    @staticmethod
    def _field_writer(value: bytearray) -> Callable[[bytes], None]:
        def write(chunk: bytes) -> None:
            value.extend(chunk)
            if len(value) > FIELD_LIMIT:
                raise FieldTooLarge

        return write

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        if self._sink is not None:
            self._sink(data[start:end])

    def _end(self) -> None:
        self.ended = True


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


def _boundary(request: Request, max_bytes: int) -> bytes:
    """The body's boundary, after the headers are judged: a form, and not announced larger
    than the file's limit plus its framing."""
    ctype = request.headers.get("content-type", "")
    kind, options = parse_options_header(ctype)
    if kind != b"multipart/form-data":
        raise InvalidInput(
            "multipart_required",
            "multipart/form-data でファイルを送信してください（項目名 file）。",
        )
    length = request.headers.get("content-length")
    if length and length.isdigit() and int(length) > max_bytes + FRAMING:
        raise _too_large(max_bytes)
    boundary = options.get(b"boundary")
    if not boundary:
        raise Malformed("Content-Type に boundary がありません")
    return boundary


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


async def _feed(request: Request, form: _Form, first: _Once, last: Callable[[bytes], T]) -> T:
    """Stream the body into the parser; ``last(final batch)`` parses the rest and finishes.
    Double buffering: while a worker thread parses, hashes and writes one batch (hashlib and
    os.write release the GIL), the event loop keeps reading the next from the socket. The
    last batch, the file's finish (fsync) and what the caller does with the upload run in one
    worker call: a small upload costs a single hop. ``first`` runs in the first worker call,
    before the parser: at most one batch (BATCH bytes) is read before it, into memory."""

    def parse(data: bytes) -> None:
        first()
        form.feed(data)

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
    if isinstance(exc, FieldTooLarge):
        return InvalidInput("field_too_large", "フォームの項目が長すぎます。")
    if isinstance(exc, DuplicateField):
        return InvalidInput(
            "duplicate_field",
            f"フォームの項目 {exc.name} が複数回送信されました。各項目は1回だけ送信してください。",
            {"field": exc.name},
        )
    detail = str(exc) if isinstance(exc, Malformed) else type(exc).__name__
    return InvalidInput("malformed_multipart", f"multipart の形式が正しくありません: {detail}")


def _decode_fields(values: dict[str, bytearray]) -> dict[str, str]:
    fields = {}
    for name, value in values.items():
        if value:
            try:
                fields[name] = value.decode("utf-8")
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
        form = _Form(_boundary(request, max_bytes), store, max_bytes, file_field, field_names)
    except Exception as exc:
        if not once.done:
            await run_in_threadpool(once)
        raise _translate(exc, max_bytes) from None

    def last(data: bytes) -> T:
        once()
        form.feed(data)
        staged = form.finish()
        try:
            up = Upload(
                staged=staged,
                filename=form.filename or "file",
                content_type=form.content_type,
                fields=_decode_fields(form.fields),
            )
            return work(up)
        except BaseException as exc:
            store.discard(staged)
            raise _WorkFailed(exc) from exc

    try:
        return await _feed(request, form, once, last)
    except _WorkFailed as failed:
        raise failed.exc from None
    except Exception as exc:
        if form.stager is not None:
            await run_in_threadpool(form.abort)
        if not once.done and not isinstance(exc, GenponError):
            await run_in_threadpool(once)  # e.g. the body ended early: who asks comes first
        raise _translate(exc, max_bytes) from None
