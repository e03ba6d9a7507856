"""Local filesystem blob store (ローカル保管領域).

Layout::

    root/
      .staging/stage-XXXX.part     temp files of uploads in progress (same filesystem as blobs)
      ab/cd/abcd…(64 hex)          stored blobs, mode 0444, never rewritten

``put_staged`` hard-links the fsynced temp file to its final name (``os.link`` fails with
FileExistsError instead of overwriting), then removes the temp name and fsyncs the directories
involved, so a blob is either completely there after a crash or not there at all.
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import os
import stat
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

from genpon.storage.base import CHUNK_SIZE, BlobStore, ChecksumMismatch, StagedBlob, check_sha256

__all__ = ["LocalBlobStore"]

STAGING_DIRNAME = ".staging"
_READ_ONLY = stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH  # 0o444


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    buf = bytearray(CHUNK_SIZE)
    view = memoryview(buf)
    with open(path, "rb", buffering=0) as f:
        while n := f.readinto(view):
            h.update(view[:n])
    return h.hexdigest()


def _is_hex2(name: str) -> bool:
    return len(name) == 2 and all(c in "0123456789abcdef" for c in name)


class LocalBlobStore(BlobStore):
    """Content-addressed, write-once blobs under ``root`` on a local filesystem."""

    name = "local"

    def __init__(self, root: Path | str, *, verify_on_put: bool = False) -> None:
        """``verify_on_put`` re-hashes the staged file before storing it (one more read pass:
        off by default because the stager hashed the very bytes it wrote a moment ago)."""
        self.root = Path(root).absolute()
        self.verify_on_put = verify_on_put
        self._staging = self.root / STAGING_DIRNAME
        self._ensure_dir(self._staging)

    def __repr__(self) -> str:
        return f"LocalBlobStore({str(self.root)!r})"

    @property
    def staging_dir(self) -> Path:
        return self._staging

    # -- paths -------------------------------------------------------------------------------

    def _path(self, sha256: str) -> Path:
        check_sha256(sha256)
        return self.root / sha256[:2] / sha256[2:4] / sha256

    def _blob_mode(self) -> int:
        """Read-only, for whoever may read the store's root (0444 under 0755, 0400 under 0700)."""
        return _READ_ONLY & stat.S_IMODE(self.root.stat().st_mode)

    def _ensure_dir(self, directory: Path) -> None:
        """Create ``directory`` and missing parents, fsyncing each parent that gained an entry."""
        if directory.is_dir():
            return
        missing: list[Path] = []
        d = directory
        while not d.is_dir():
            missing.append(d)
            d = d.parent
        for d in reversed(missing):
            try:
                d.mkdir()
            except FileExistsError:
                continue
            _fsync_dir(d.parent)

    # -- primitives --------------------------------------------------------------------------

    def put_staged(self, staged: StagedBlob) -> bool:
        check_sha256(staged.sha256)
        tmp = self._own_staged_path(staged)
        dest = self._path(staged.sha256)
        st = tmp.stat()
        if st.st_size != staged.size:
            raise ChecksumMismatch(staged.sha256, f"{st.st_size} bytes, expected {staged.size}")
        if self.exists(staged.sha256):
            self._refresh(dest)
            tmp.unlink()
            return False
        if self.verify_on_put:
            actual = _sha256_file(tmp)
            if actual != staged.sha256:
                raise ChecksumMismatch(staged.sha256, actual)
        self._ensure_dir(dest.parent)
        os.chmod(tmp, self._blob_mode())
        try:
            os.link(tmp, dest)
        except FileExistsError:
            # stored concurrently by someone else: keep theirs, drop ours
            self._refresh(dest)
            tmp.unlink()
            return False
        # the temp file was fsynced by the stager; make the new name durable
        _fsync_dir(dest.parent)
        tmp.unlink()
        return True

    # --- batch primitives (bulk import) -------------------------------------------------------
    def put_staged_deferred(self, staged: StagedBlob) -> None:
        """Give a staged file its final name without fsyncs, for bulk writers that make a whole
        batch durable with one :meth:`sync` before committing rows that refer to it.

        Write-once like :meth:`put_staged` (an existing blob is kept). The staged name stays, so
        a later ``put_staged`` of the same file finds the blob stored and only drops the temp name.
        The caller must call :meth:`sync` *before* linking too if the staged bytes were written
        without fsync, so that a name never survives a crash without its bytes.
        """
        check_sha256(staged.sha256)
        tmp = self._own_staged_path(staged)
        dest = self._path(staged.sha256)
        if dest.is_file():
            return
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.chmod(tmp, self._blob_mode())
        with contextlib.suppress(FileExistsError):
            os.link(tmp, dest)

    def sync(self) -> None:
        """Flush the filesystem holding the store (data and metadata) with one ``syncfs``: one
        journal commit for a whole batch instead of an fsync per file and per directory."""
        fd = os.open(self.root, os.O_RDONLY | os.O_DIRECTORY)
        try:
            if not _syncfs(fd):
                os.sync()
        finally:
            os.close(fd)

    @staticmethod
    def _refresh(dest: Path) -> None:
        """Bump the mtime of a re-deposited blob so gc's grace period covers the new reference."""
        with contextlib.suppress(OSError):
            os.utime(dest)

    def exists(self, sha256: str) -> bool:
        return self._path(sha256).is_file()

    def open(self, sha256: str) -> BinaryIO:
        return open(self._path(sha256), "rb", buffering=1 << 20)

    def size(self, sha256: str) -> int:
        return self._path(sha256).stat().st_size

    def delete(self, sha256: str) -> None:
        path = self._path(sha256)
        path.unlink()
        _fsync_dir(path.parent)

    def local_path(self, sha256: str) -> Path | None:
        path = self._path(sha256)
        return path if path.is_file() else None

    def iter_blobs(self) -> Iterator[tuple[str, datetime]]:
        """(sha256, stored_at) where stored_at is the file's mtime (the time it was written)."""
        for top in sorted(os.scandir(self.root), key=lambda e: e.name):
            if not (_is_hex2(top.name) and top.is_dir(follow_symlinks=False)):
                continue
            for sub in sorted(os.scandir(top.path), key=lambda e: e.name):
                if not (_is_hex2(sub.name) and sub.is_dir(follow_symlinks=False)):
                    continue
                for entry in os.scandir(sub.path):
                    name = entry.name
                    if not name.startswith(top.name + sub.name):
                        continue
                    try:
                        check_sha256(name)
                        st = entry.stat(follow_symlinks=False)
                    except (ValueError, FileNotFoundError):
                        continue
                    if stat.S_ISREG(st.st_mode):
                        yield name, datetime.fromtimestamp(st.st_mtime, tz=UTC)


_libc: Any = None


def _syncfs(fd: int) -> bool:
    """``syncfs(2)`` through libc; False where it is unavailable or fails."""
    global _libc
    if _libc is None:
        try:
            _libc = ctypes.CDLL(None, use_errno=True)
            _libc.syncfs  # noqa: B018 - raises AttributeError where missing
        except (OSError, AttributeError):
            _libc = False
    return bool(_libc) and _libc.syncfs(fd) == 0
