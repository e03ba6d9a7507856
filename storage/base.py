"""Blob store interface (原本の保管領域) shared by every backend.

A blob is immutable content addressed by its SHA-256. Writing happens in two steps so that the
deposit flow can look at the content (type sniffing, text extraction, duplicate check) before
anything becomes visible in the store:

1. **stage** — the upload is streamed once into a private temp file on local disk while its
   SHA-256 and size are computed (:class:`Stager`, :meth:`BlobStore.stage`). The result is a
   :class:`StagedBlob`, fsynced but not yet in the store.
2. **put_staged** — the staged file is moved into the store write-once and durably. It returns
   ``True`` when newly stored and ``False`` when the same content was already present; an
   existing blob is never overwritten.

Like fsspec, backends implement a handful of primitives and errors are built-ins::

    ValueError
    ├── InvalidDigest      a sha256 string that is not 64 lowercase hex characters
    ├── BlobTooLarge       upload passed ``max_bytes`` (carries ``limit``)
    └── ChecksumMismatch   content on its way into the store does not hash to its name
    FileNotFoundError      open/size/delete/hash_blob of a blob that is not stored

No path or object key is ever built from a string that did not pass :func:`check_sha256`.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import BinaryIO, Self

__all__ = [
    "CHUNK_SIZE",
    "HEAD_SIZE",
    "BlobStore",
    "BlobTooLarge",
    "ChecksumMismatch",
    "InvalidDigest",
    "StagedBlob",
    "Stager",
    "check_sha256",
]

#: bytes kept from the start of every upload for libmagic sniffing
HEAD_SIZE = 8192
#: read/write buffer size: large enough that syscalls and Python overhead are noise
CHUNK_SIZE = 1 << 20
#: prefix of every temp file a stager creates (used to recognise leftovers)
STAGING_PREFIX = "stage-"
STAGING_SUFFIX = ".part"
_SMALL_WRITE = 64 * 1024

_SHA256_RE = re.compile(r"[0-9a-f]{64}")


class InvalidDigest(ValueError):
    """A string that is not a lowercase hex SHA-256 digest (64 characters)."""


class BlobTooLarge(ValueError):
    """The upload is larger than the allowed number of bytes (``limit``)."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"blob exceeds the limit of {limit} bytes")
        self.limit = limit


class ChecksumMismatch(ValueError):
    """Content on its way into the store does not hash to the name it is stored under."""

    def __init__(self, expected: str, actual: str | None = None) -> None:
        detail = f" (got {actual})" if actual else ""
        super().__init__(f"content does not match sha256 {expected}{detail}")
        self.expected = expected
        self.actual = actual


def check_sha256(sha256: object) -> str:
    """Return ``sha256`` if it is exactly 64 lowercase hex characters, else raise InvalidDigest."""
    if not isinstance(sha256, str) or not _SHA256_RE.fullmatch(sha256):
        raise InvalidDigest(f"not a lowercase hex sha256 digest: {sha256!r:.80}")
    return sha256


@dataclass(frozen=True)
class StagedBlob:
    """A fully received upload: hashed, fsynced on local disk, not yet in the store."""

    sha256: str
    size: int
    path: Path
    head: bytes


class Stager:
    """Push-style writer: feed chunks with :meth:`write`, then :meth:`finish` (or :meth:`abort`).

    The SHA-256 and size are computed while writing, so the content is read exactly once.
    Used as a context manager it aborts (removes the temp file) unless :meth:`finish` ran.
    """

    def __init__(self, directory: Path, *, max_bytes: int | None = None) -> None:
        if max_bytes is not None and max_bytes < 0:
            raise ValueError("max_bytes must be >= 0")
        directory.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=STAGING_PREFIX, suffix=STAGING_SUFFIX, dir=directory)
        self.path = Path(name)
        self.max_bytes = max_bytes
        self._fd: int | None = fd
        self._hash = hashlib.sha256()
        self._size = 0
        self._head = bytearray()
        self._pending = bytearray()
        self._result: StagedBlob | None = None
        self._aborted = False

    @property
    def size(self) -> int:
        """Bytes written so far."""
        return self._size

    def write(self, chunk: bytes | bytearray | memoryview) -> None:
        """Append ``chunk``; raise :class:`BlobTooLarge` (and abort) past ``max_bytes``."""
        if self._fd is None:
            raise ValueError("stager is closed")
        n = len(chunk)
        if not n:
            return
        if self.max_bytes is not None and self._size + n > self.max_bytes:
            self.abort()
            raise BlobTooLarge(self.max_bytes)
        if len(self._head) < HEAD_SIZE:
            self._head += chunk[: HEAD_SIZE - len(self._head)]
        self._hash.update(chunk)
        self._size += n
        if n < _SMALL_WRITE:
            # coalesce small chunks (multipart parsers feed a few KiB at a time)
            self._pending += chunk
            if len(self._pending) >= CHUNK_SIZE:
                self._flush()
        else:
            self._flush()
            self._write_all(chunk)

    def _write_all(self, data: bytes | bytearray | memoryview) -> None:
        assert self._fd is not None
        view = memoryview(data)
        while view:
            view = view[os.write(self._fd, view) :]

    def _flush(self) -> None:
        if self._pending:
            self._write_all(self._pending)
            self._pending.clear()

    def finish(self) -> StagedBlob:
        """fsync and close the temp file; return the :class:`StagedBlob`. Idempotent."""
        if self._result is not None:
            return self._result
        fd = self._fd
        if fd is None:
            raise ValueError("stager was aborted")
        try:
            self._flush()
            os.fsync(fd)
        except BaseException:
            self.abort()
            raise
        os.close(fd)
        self._fd = None
        self._result = StagedBlob(
            sha256=self._hash.hexdigest(), size=self._size, path=self.path, head=bytes(self._head)
        )
        return self._result

    def abort(self) -> None:
        """Close and delete the temp file. Idempotent; a no-op after :meth:`finish`."""
        if self._result is not None or self._aborted:
            return
        self._aborted = True
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = None
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._result is None:
            self.abort()


def _iter_source(
    source: BinaryIO | Iterable[bytes], buf: bytearray
) -> Iterator[memoryview | bytes]:
    """Yield chunks of ``source``, reusing ``buf`` for file objects (no per-chunk allocation)."""
    readinto = getattr(source, "readinto", None)
    if readinto is not None:
        view = memoryview(buf)
        while True:
            n = readinto(view)
            if not n:
                return
            yield view[:n]
    read = getattr(source, "read", None)
    if read is not None:
        while True:
            chunk = read(len(buf))
            if not chunk:
                return
            yield chunk
    yield from source


def _mtime_utc(path: Path) -> datetime:
    return datetime.fromtimestamp(path.stat().st_mtime, tz=UTC)


class BlobStore(ABC):
    """Write-once, content-addressed blob store (fsspec-like: few primitives, built-in errors)."""

    name: str

    # -- staging (local temp files; shared by all backends) ---------------------------------

    @property
    @abstractmethod
    def staging_dir(self) -> Path:
        """Directory holding this store's temp files (on local disk)."""

    def stager(self, *, max_bytes: int | None = None) -> Stager:
        """A new :class:`Stager` writing into this store's staging directory."""
        return Stager(self.staging_dir, max_bytes=max_bytes)

    def stage(
        self, source: BinaryIO | Iterable[bytes], *, max_bytes: int | None = None
    ) -> StagedBlob:
        """Stream ``source`` (file object or iterable of chunks) into a staged temp file."""
        buf = bytearray(CHUNK_SIZE)
        with self.stager(max_bytes=max_bytes) as st:
            for chunk in _iter_source(source, buf):
                st.write(chunk)
            return st.finish()

    def _own_staged_path(self, staged: StagedBlob) -> Path:
        """The staged file's path, refusing files outside this store's staging directory."""
        path = Path(staged.path)
        if not path.name.startswith(STAGING_PREFIX):
            raise ValueError(f"not a staged file of this store: {path}")
        staging = self.staging_dir
        # (the usual case, a name the stager made in the directory itself, needs no syscall)
        if os.path.dirname(staged.path) != str(staging) and path.parent.resolve() != (
            staging.resolve()
        ):
            raise ValueError(f"not a staged file of this store: {path}")
        return path

    def discard(self, staged: StagedBlob) -> None:
        """Delete a staged temp file that will not be stored. Idempotent."""
        with contextlib.suppress(FileNotFoundError):
            self._own_staged_path(staged).unlink()

    def iter_staging(self) -> Iterator[tuple[Path, datetime]]:
        """Leftover temp files (path, last modified UTC), for garbage collection."""
        try:
            entries = list(os.scandir(self.staging_dir))
        except FileNotFoundError:
            return
        for entry in entries:
            if entry.is_file(follow_symlinks=False) and entry.name.startswith(STAGING_PREFIX):
                with contextlib.suppress(FileNotFoundError):
                    yield Path(entry.path), _mtime_utc(Path(entry.path))

    # -- primitives --------------------------------------------------------------------------

    @abstractmethod
    def put_staged(self, staged: StagedBlob) -> bool:
        """Store ``staged`` under its sha256, durably, never overwriting.

        Returns True if newly stored, False if the content was already present. The temp file
        is removed in both cases (and left in place if an error is raised).
        """

    @abstractmethod
    def exists(self, sha256: str) -> bool:
        """Whether a blob with this digest is stored."""

    @abstractmethod
    def open(self, sha256: str) -> BinaryIO:
        """Streaming reader of the blob; FileNotFoundError if missing. Close it after use."""

    @abstractmethod
    def size(self, sha256: str) -> int:
        """Size in bytes; FileNotFoundError if missing."""

    @abstractmethod
    def delete(self, sha256: str) -> None:
        """Remove the blob (disposal / gc only); FileNotFoundError if missing."""

    @abstractmethod
    def iter_blobs(self) -> Iterator[tuple[str, datetime]]:
        """Every stored blob as (sha256, stored_at UTC), in no particular order."""

    # -- derived -----------------------------------------------------------------------------

    def hash_blob(self, sha256: str, *, chunk_size: int = CHUNK_SIZE) -> str:
        """Re-hash the stored content (fixity audit); FileNotFoundError if missing."""
        check_sha256(sha256)
        h = hashlib.sha256()
        buf = bytearray(chunk_size)
        with self.open(sha256) as fh:
            for chunk in _iter_source(fh, buf):
                h.update(chunk)
        return h.hexdigest()

    def local_path(self, sha256: str) -> Path | None:
        """A real file path of the stored blob if the backend has one, else None."""
        check_sha256(sha256)
        return None

    @contextlib.contextmanager
    def as_file(self, sha256: str, spool: Path | None = None) -> Iterator[Path]:
        """A real file of the stored blob, for tools that need a path (text extraction): the
        blob itself where the backend has one, else a temporary copy in ``spool`` removed on
        exit. FileNotFoundError if missing. The file must only be read."""
        local = self.local_path(sha256)
        if local is not None:
            yield local
            return
        if spool is not None:
            spool.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=spool, prefix="blob-", delete=True) as tmp:
            buf = bytearray(CHUNK_SIZE)
            with self.open(sha256) as fh:
                for chunk in _iter_source(fh, buf):
                    tmp.write(chunk)
            tmp.flush()
            yield Path(tmp.name)
