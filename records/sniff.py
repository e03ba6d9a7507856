"""Content type from the bytes (libmagic), never from the client's word.

libmagic often calls OOXML files ``application/zip`` or ``octet-stream``: they are confirmed by
their ``[Content_Types].xml`` entry and main part instead.

libmagic names the program of an OLE compound file (Word, Excel, PowerPoint 97–2003: ``.doc``,
``.xls``, ``.ppt``) from its directory, which an 8 KB head seldom reaches: it then says
``application/x-ole-storage``, which no allowed-types list expects. Such a file is sniffed again
over as many bytes as libmagic itself reads from a file (``MAGIC_PARAM_BYTES_MAX``).

libmagic also guesses a DOS ``.COM`` program (``application/x-dosexec``, no ``MZ`` header) from
a first byte such as 0x8c (``mov``) or 0xb8, which begin 公, 経, 県, 見 in Shift_JIS and 原, 現,
個 in EUC-JP: such a document would be refused as an executable. A guess on bytes that read as
Shift_JIS or EUC-JP text is taken back: ``text/plain``, what libmagic says of the same text with
another first character.
"""

from __future__ import annotations

import fnmatch
import functools
import os
import re
import stat
import zipfile
from pathlib import Path
from typing import BinaryIO

import magic

OOXML = {
    "word/": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "xl/": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "ppt/": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
}


def sniff(path: Path, head: bytes) -> str:
    if not head:
        return "application/x-empty"
    mime = magic.from_buffer(head, mime=True) or "application/octet-stream"
    if mime == "application/x-dosexec" and not head.startswith(b"MZ") and _japanese_text(head):
        return "text/plain"
    if mime == "application/x-ole-storage":
        whole = _read_upto(path, _bytes_max())
        if whole is not None and len(whole) > len(head):
            mime = magic.from_buffer(whole, mime=True) or mime
    if mime in ("application/zip", "application/octet-stream") or mime.startswith(
        "application/vnd.openxmlformats"
    ):
        ooxml = _ooxml_kind(path)
        if ooxml:
            return ooxml
    return mime


_CONTROL = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f]")


def _japanese_text(head: bytes) -> bool:
    """Whether ``head`` reads as Shift_JIS (CP932) or EUC-JP text: it decodes (but for a
    character cut by the end of the head) and holds no control character besides tab, line
    breaks and form feed."""
    for encoding in ("cp932", "euc_jp"):
        for cut in (0, 1):
            try:
                text = head[: len(head) - cut].decode(encoding)
            except UnicodeDecodeError:
                continue
            if not _CONTROL.search(text):
                return True
            break
    return False


def _open_regular(path: Path) -> BinaryIO | None:
    """``path`` opened for reading if it is a regular file (no symlink followed, no FIFO
    waited on), else None."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        return None
    return os.fdopen(fd, "rb")


def _read_upto(path: Path, limit: int) -> bytes | None:
    f = _open_regular(path)
    if f is None:
        return None
    with f:
        try:
            return f.read(limit)
        except OSError:
            return None


@functools.cache
def _bytes_max() -> int:
    """How many bytes libmagic reads of a file (its ``MAGIC_PARAM_BYTES_MAX``, 7 MB by default)."""
    try:
        cookie = magic.Magic(mime=True).cookie
        return int(magic.magic_getparam(cookie, magic.MAGIC_PARAM_BYTES_MAX))
    except Exception:
        return 7 * 1024 * 1024


def _ooxml_kind(path: Path) -> str | None:
    f = _open_regular(path)
    if f is None:
        return None
    try:
        with f, zipfile.ZipFile(f) as zf:
            names = zf.namelist()
    except (zipfile.BadZipFile, OSError, ValueError):
        return None
    if "[Content_Types].xml" not in names:
        return None
    for prefix, mime in OOXML.items():
        if any(n.startswith(prefix) for n in names):
            return mime
    return None


def type_allowed(mime: str, allowed: tuple[str, ...] | list[str]) -> bool:
    return any(fnmatch.fnmatchcase(mime, pattern) for pattern in allowed)


def types_agree(declared: str | None, sniffed: str) -> bool:
    if not declared:
        return True
    d = declared.split(";")[0].strip().lower()
    return d == sniffed or (d.startswith("text/") and sniffed.startswith("text/"))
