"""Text of Office 97–2003 files (OLE compound files): Word ``.doc``, Excel ``.xls`` and
PowerPoint ``.ppt``.

City file shares are full of them, and without their text they can be neither searched nor
compared for near-duplicates. The parsers run in the extractor's child process (limits,
timeout), like the PDF and OOXML ones.

* ``.doc`` (MS-DOC): the text is located through the piece table (``Clx``) in the table stream
  that the FIB names; a piece is UTF-16LE or, when marked compressed, 8-bit (CP1252). Field
  instructions (``HYPERLINK …``) are dropped and their results kept; Word's control characters
  become tabs and line breaks. Read with ``olefile``.
* ``.xls`` (BIFF): every sheet's name and non-empty cells, one row per line, read with ``xlrd``
  (the library made for ``.xls``; 2.x reads nothing else).
* ``.ppt``: the text atoms (UTF-16 and 8-bit) of the ``PowerPoint Document`` stream, each
  distinct text once (a slide's text is kept both in the slide list and on the slide).

Other compound files (Outlook ``.msg`` among them) are reported unsupported.
"""

from __future__ import annotations

import re
import struct
from pathlib import Path
from typing import Any

from genpon.search.extract import MAX_CHARS, sheets_text

OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"


class Encrypted(Exception):
    """The file is password-protected: its text cannot be read."""


def office97_text(path: Path) -> tuple[str, str] | None:
    """(extractor, text) of a Word, PowerPoint or Excel 97–2003 file, told apart by its streams
    (the compound file is parsed once); None for another compound file."""
    import olefile

    with olefile.OleFileIO(str(path)) as ole:
        if ole.exists("WordDocument"):
            return "word97", doc_text(ole)
        if ole.exists("PowerPoint Document"):
            return "ppt97", ppt_text(ole)
        workbook = ole.exists("Workbook") or ole.exists("Book")
    return ("xlrd", xls_text(path)) if workbook else None


# --- Word ------------------------------------------------------------------------------------

_FIELD_BEGIN, _FIELD_SEP, _FIELD_END = "\x13", "\x14", "\x15"
_CONTROLS = str.maketrans(
    {
        "\r": "\n",  # paragraph end
        "\x0b": "\n",  # line break
        "\x0c": "\n",  # page or section break
        "\x0e": "\n",  # column break
        "\x07": "\t",  # cell or row end
        "\x1e": "-",  # non-breaking hyphen
        "\x1f": "",  # optional hyphen
        "\xa0": " ",
    }
)
_OTHER_CONTROLS = re.compile(r"[\x00-\x08\x0f-\x12\x16-\x1d]")


def doc_text(ole: Any) -> str:
    """The text of the Word document in the open compound file ``ole`` (``olefile``)."""
    word = ole.openstream("WordDocument").read()
    if len(word) < 0x200 or struct.unpack_from("<H", word, 0)[0] != 0xA5EC:
        raise ValueError("not a Word 97-2003 document (no FIB)")
    flags = struct.unpack_from("<H", word, 0x0A)[0]
    if flags & 0x0100:
        raise Encrypted("encrypted Word document")
    table_name = "1Table" if flags & 0x0200 else "0Table"
    if not ole.exists(table_name):
        raise ValueError(f"table stream {table_name} missing")
    table = ole.openstream(table_name).read()
    fc_clx, lcb_clx = _clx_location(word)
    if lcb_clx == 0 or fc_clx + lcb_clx > len(table):
        raise ValueError("no piece table")
    return _clean(_pieces_text(word, table[fc_clx : fc_clx + lcb_clx]))


def _clx_location(word: bytes) -> tuple[int, int]:
    """(fcClx, lcbClx) from the FIB: base, FibRgW, FibRgLw, then FibRgFcLcb (pair 33)."""
    pos = 32
    csw = struct.unpack_from("<H", word, pos)[0]
    pos += 2 + 2 * csw
    cslw = struct.unpack_from("<H", word, pos)[0]
    pos += 2 + 4 * cslw
    cb_fc_lcb = struct.unpack_from("<H", word, pos)[0]
    pos += 2
    if cb_fc_lcb < 34:
        raise ValueError("FIB too short for a piece table")
    fc, lcb = struct.unpack_from("<II", word, pos + 33 * 8)
    return fc, lcb


def _pieces_text(word: bytes, clx: bytes) -> str:
    pos = 0
    while pos < len(clx) and clx[pos] == 0x01:  # Prc: property modifiers, skipped
        (cb,) = struct.unpack_from("<H", clx, pos + 1)
        pos += 3 + cb
    if pos >= len(clx) or clx[pos] != 0x02:
        raise ValueError("piece table not found")
    (lcb,) = struct.unpack_from("<I", clx, pos + 1)
    plc = clx[pos + 5 : pos + 5 + lcb]
    n = (len(plc) - 4) // 12
    if n <= 0:
        return ""
    cps = struct.unpack_from(f"<{n + 1}I", plc, 0)
    parts: list[str] = []
    total = 0
    for i in range(n):
        if total > MAX_CHARS:  # a hostile table can point every piece at the whole stream
            break
        start, end = cps[i], cps[i + 1]
        if end <= start:
            continue
        (fc,) = struct.unpack_from("<I", plc, 4 * (n + 1) + 8 * i + 2)
        if fc & 0x40000000:  # 8-bit text at half the offset
            off = (fc & 0x3FFFFFFF) // 2
            parts.append(word[off : off + (end - start)].decode("cp1252", "replace"))
        else:
            off = fc & 0x3FFFFFFF
            parts.append(word[off : off + 2 * (end - start)].decode("utf-16-le", "replace"))
        total += len(parts[-1])
    return "".join(parts)


def _clean(raw: str) -> str:
    """Drop field instructions (keep their results) and turn Word's controls into text."""
    out: list[str] = []
    stack: list[bool] = []  # per open field: still in its instruction part
    for ch in raw:
        if ch == _FIELD_BEGIN:
            stack.append(True)
        elif ch == _FIELD_SEP:
            if stack:
                stack[-1] = False
        elif ch == _FIELD_END:
            if stack:
                stack.pop()
        elif not any(stack):
            out.append(ch)
    text = _OTHER_CONTROLS.sub("", "".join(out).translate(_CONTROLS))
    return re.sub(r"\n{3,}", "\n\n", text)


# --- PowerPoint --------------------------------------------------------------------------------

_PPT_CHARS, _PPT_BYTES = 0x0FA0, 0x0FA8  # TextCharsAtom (UTF-16LE), TextBytesAtom (8-bit)


def ppt_text(ole: Any) -> str:
    """The text atoms of the ``PowerPoint Document`` stream of the open compound file ``ole``,
    in order, each once. Records are walked linearly: a container's children follow its header,
    so entering it is moving past its header; other records are skipped whole."""
    data = ole.openstream("PowerPoint Document").read()
    parts: list[str] = []
    seen: set[str] = set()
    pos = total = 0
    while pos + 8 <= len(data) and total <= MAX_CHARS:
        ver_instance, rec_type, length = struct.unpack_from("<HHI", data, pos)
        body = pos + 8
        if ver_instance & 0x000F == 0x000F:  # a container
            pos = body
            continue
        if rec_type in (_PPT_CHARS, _PPT_BYTES):
            raw = data[body : body + length]
            text = (
                raw.decode("utf-16-le", "replace")
                if rec_type == _PPT_CHARS
                else raw.decode("latin-1")
            )
            text = text.replace("\r", "\n").replace("\x0b", "\n").strip()
            if text and text not in seen:  # the same text sits in the slide list and the slide
                seen.add(text)
                parts.append(text)
                total += len(text)
        pos = body + length
    return "\n".join(parts)


# --- Excel -----------------------------------------------------------------------------------


def xls_text(path: Path) -> str:
    import xlrd
    from xlrd.biffh import XLRDError  # the same class as xlrd.XLRDError; the stubs know this one

    try:
        book = xlrd.open_workbook(str(path), on_demand=True)
    except XLRDError as exc:
        if "encrypt" in str(exc).lower():
            raise Encrypted(str(exc)) from None
        raise
    try:
        return sheets_text(
            (sheet.name, (sheet.row_values(r) for r in range(sheet.nrows)))
            for sheet in book.sheets()
        )
    finally:
        book.release_resources()
