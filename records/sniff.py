"""Content type from the bytes (libmagic), never from the client's word.

libmagic often calls OOXML files ``application/zip`` or ``octet-stream``: they are confirmed by
their ``[Content_Types].xml`` entry and main part instead.
"""

from __future__ import annotations

import fnmatch
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
    if mime in ("application/zip", "application/octet-stream") or mime.startswith(
        "application/vnd.openxmlformats"
    ):
        ooxml = _ooxml_kind(path)
        if ooxml:
            return ooxml
    return mime


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
