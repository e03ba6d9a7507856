"""Content type from the bytes (libmagic), never from the client's word.

libmagic often calls OOXML files ``application/zip`` or ``octet-stream``: they are confirmed by
their ``[Content_Types].xml`` entry and main part instead.

libmagic also guesses a DOS ``.COM`` program (``application/x-dosexec``, no ``MZ`` header) from
a first byte such as 0x8c (``mov``), which is the Shift_JIS lead byte of 公, 経, 県, 見…: a
Shift_JIS document starting with one of them would be refused as an executable. Such a guess on
bytes that read as Shift_JIS text is taken back: ``text/plain``, what libmagic says of the same
text with another first character.
"""

from __future__ import annotations

import fnmatch
import re
import zipfile
from pathlib import Path

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
    if mime == "application/x-dosexec" and not head.startswith(b"MZ") and _cp932_text(head):
        return "text/plain"
    if mime in ("application/zip", "application/octet-stream") or mime.startswith(
        "application/vnd.openxmlformats"
    ):
        ooxml = _ooxml_kind(path)
        if ooxml:
            return ooxml
    return mime


_CONTROL = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f]")


def _cp932_text(head: bytes) -> bool:
    """Whether ``head`` reads as Shift_JIS (CP932) text: it decodes (but for a character cut
    by the end of the head) and holds no control character besides tab, line breaks and form
    feed."""
    for cut in (0, 1):
        try:
            text = head[: len(head) - cut].decode("cp932")
        except UnicodeDecodeError:
            continue
        return not _CONTROL.search(text)
    return False


def _ooxml_kind(path: Path) -> str | None:
    try:
        with zipfile.ZipFile(path) as zf:
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
