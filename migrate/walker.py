"""Reading a legacy share without trusting it: walk, open and hash, never modify.

The walk works on directory file descriptors (``os.scandir(fd)``, ``dir_fd=``), so paths longer
than PATH_MAX are still reached, symlinks are never followed (no loops), and special files
(FIFOs, sockets, devices) are recognised from ``lstat`` and never opened. Names are kept as raw
bytes; :func:`decode_name` gives a display name (UTF-8, else Shift_JIS/CP932, else UTF-8 with
replacement characters) in NFC.

:func:`hash_file` reads a file once, re-checks ``fstat`` afterwards and retries when the file
changed while it was read; a file that keeps changing is reported, not imported half-written.
"""

from __future__ import annotations

import errno
import hashlib
import os
import pwd
import stat
import unicodedata
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import lru_cache

from genpon.storage.base import CHUNK_SIZE, HEAD_SIZE

#: deeper trees than this are reported (each level holds one open directory descriptor)
MAX_DEPTH = 200
_OPEN_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)


class SkipEntry(Exception):
    """An entry that cannot be imported; ``reason`` is a stable code for the report."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class WalkItem:
    rel: bytes  # path relative to the root, raw bytes, b"/"-separated
    entry_type: str  # file | symlink | special | directory
    size: int | None = None
    mtime_ns: int | None = None
    uid: int | None = None
    reason: str | None = None  # set when the item cannot be imported
    detail: str | None = None


def decode_name(raw: bytes) -> tuple[str, str]:
    """Display text (NFC) and the encoding it was read with: utf-8 | cp932 | undecodable."""
    for enc in ("utf-8", "cp932"):
        try:
            return unicodedata.normalize("NFC", raw.decode(enc)), enc
        except UnicodeDecodeError:
            continue
    return unicodedata.normalize("NFC", raw.decode("utf-8", "replace")), "undecodable"


def decode_path(raw: bytes) -> tuple[str, str]:
    """Decode each component separately (a tree may mix encodings); worst encoding wins."""
    order = {"utf-8": 0, "cp932": 1, "undecodable": 2}
    parts, worst = [], "utf-8"
    for comp in raw.split(b"/"):
        text, enc = decode_name(comp)
        parts.append(text)
        if order[enc] > order[worst]:
            worst = enc
    return "/".join(parts), worst


@lru_cache(maxsize=4096)
def owner_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except (KeyError, OverflowError):
        return str(uid)


def _special_kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "fifo"
    if stat.S_ISSOCK(mode):
        return "socket"
    if stat.S_ISCHR(mode):
        return "character_device"
    if stat.S_ISBLK(mode):
        return "block_device"
    return "unknown"


def walk(root: bytes) -> Iterator[WalkItem]:
    """Every entry below ``root`` in a stable (sorted) order; problems become items too."""
    fd = os.open(root, _DIR_FLAGS)
    try:
        yield from _walk_dir(fd, b"", 0)
    finally:
        os.close(fd)


def _walk_dir(dfd: int, rel: bytes, depth: int) -> Iterator[WalkItem]:
    try:
        with os.scandir(dfd) as it:
            names = sorted(os.fsencode(e.name) for e in it)
    except OSError as exc:
        yield WalkItem(rel or b".", "directory", reason="unreadable_directory", detail=str(exc))
        return
    for name in names:
        child = rel + b"/" + name if rel else name
        try:
            st = os.stat(name, dir_fd=dfd, follow_symlinks=False)
        except FileNotFoundError:
            continue  # vanished between listing and stat
        except OSError as exc:
            yield WalkItem(child, "file", reason="unreadable", detail=str(exc))
            continue
        mode = st.st_mode
        if stat.S_ISLNK(mode):
            yield _symlink_item(dfd, name, child, st)
        elif stat.S_ISDIR(mode):
            if depth + 1 > MAX_DEPTH:
                yield WalkItem(child, "directory", reason="too_deep", detail=f"> {MAX_DEPTH}")
                continue
            try:
                sub = os.open(name, _DIR_FLAGS, dir_fd=dfd)
            except OSError as exc:
                yield WalkItem(child, "directory", reason="unreadable_directory", detail=str(exc))
                continue
            try:
                yield from _walk_dir(sub, child, depth + 1)
            finally:
                os.close(sub)
        elif stat.S_ISREG(mode):
            yield WalkItem(child, "file", st.st_size, st.st_mtime_ns, st.st_uid)
        else:
            kind = _special_kind(mode)
            yield WalkItem(child, "special", None, st.st_mtime_ns, st.st_uid, "special_file", kind)


def _symlink_item(dfd: int, name: bytes, child: bytes, st: os.stat_result) -> WalkItem:
    try:
        target = os.readlink(name, dir_fd=dfd)
    except OSError:
        target = b""
    detail = os.fsdecode(target)
    try:
        os.stat(name, dir_fd=dfd, follow_symlinks=True)
        reason = "symlink"
    except OSError as exc:
        reason = "symlink_loop" if exc.errno == errno.ELOOP else "broken_symlink"
    return WalkItem(child, "symlink", None, st.st_mtime_ns, st.st_uid, reason, detail)


def open_entry(root: bytes, rel: bytes) -> int:
    """Open a regular file below ``root`` read-only without following symlinks or blocking on
    FIFOs; paths past PATH_MAX are opened component by component. Raises :class:`SkipEntry`."""
    try:
        try:
            fd = os.open(root + b"/" + rel, _OPEN_FLAGS)
        except OSError as exc:
            if exc.errno != errno.ENAMETOOLONG:
                raise
            fd = _open_long(root, rel)
    except FileNotFoundError as exc:
        raise SkipEntry("vanished", str(exc)) from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise SkipEntry("symlink", str(exc)) from None
        raise SkipEntry("unreadable", f"{exc.strerror or exc}") from None
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise SkipEntry("special_file", _special_kind(st.st_mode))
    return fd


def _open_long(root: bytes, rel: bytes) -> int:
    parts = [p for p in rel.split(b"/") if p]
    dfd = os.open(root, _DIR_FLAGS)
    try:
        for part in parts[:-1]:
            nxt = os.open(part, _DIR_FLAGS, dir_fd=dfd)
            os.close(dfd)
            dfd = nxt
        return os.open(parts[-1], _OPEN_FLAGS, dir_fd=dfd)
    finally:
        os.close(dfd)


@dataclass(frozen=True)
class Hashed:
    sha256: str
    size: int
    mtime_ns: int
    head: bytes


def _same(a: os.stat_result, b: os.stat_result) -> bool:
    return (a.st_size, a.st_mtime_ns, a.st_ino) == (b.st_size, b.st_mtime_ns, b.st_ino)


def read_stable(
    root: bytes,
    rel: bytes,
    sink: Callable[[memoryview], object] | None = None,  # its result is ignored
    *,
    attempts: int = 3,
    on_chunk: Callable[[int], None] | None = None,
) -> Hashed:
    """Hash (and optionally feed ``sink``) a file; the result is only returned when ``fstat``
    before and after the read agree and the bytes read equal the size. A ``sink`` cannot be
    rewound, so with a sink only one attempt is made."""
    if sink is not None:
        attempts = 1
    buf = bytearray(CHUNK_SIZE)
    view = memoryview(buf)
    last = ""
    for _attempt in range(attempts):
        fd = open_entry(root, rel)
        try:
            before = os.fstat(fd)
            h = hashlib.sha256()
            head = bytearray()
            total = 0
            while True:
                try:
                    n = os.readv(fd, [view])
                except OSError as exc:
                    raise SkipEntry("read_error", exc.strerror or str(exc)) from None
                if not n:
                    break
                chunk = view[:n]
                h.update(chunk)
                if len(head) < HEAD_SIZE:
                    head += chunk[: HEAD_SIZE - len(head)]
                if sink is not None:
                    sink(chunk)
                total += n
                if on_chunk is not None:
                    on_chunk(total)
            after = os.fstat(fd)
        finally:
            os.close(fd)
        if _same(before, after) and total == after.st_size:
            return Hashed(h.hexdigest(), total, after.st_mtime_ns, bytes(head))
        last = f"size {before.st_size}->{after.st_size}, read {total}"
    raise SkipEntry("changed_while_reading", last)
