"""A minimal writer of OLE compound files (CFB version 3), for test fixtures only: streams in
the root storage, each padded to the 4,096-byte mini-stream cutoff so that only regular sectors
are used. Enough for olefile (and libmagic) to read; nothing else of the format is written."""

from __future__ import annotations

import struct

SECTOR = 512
FREE, END, FATSECT, NOSTREAM = 0xFFFFFFFF, 0xFFFFFFFE, 0xFFFFFFFD, 0xFFFFFFFF


def _entry(name: str, kind: int, start: int, size: int, right: int, child: int) -> bytes:
    raw = (name.encode("utf-16-le") + b"\0\0") if name else b""
    return (
        raw.ljust(64, b"\0")
        + struct.pack("<HBB", len(raw), kind, 1)
        + struct.pack("<III", NOSTREAM, right, child)
        + bytes(16 + 4 + 16)  # CLSID, state bits, creation and modification times
        + struct.pack("<III", start, size, 0)
    )


def compound_file(streams: dict[str, bytes]) -> bytes:
    names = list(streams)
    datas = [streams[n].ljust(max(len(streams[n]), 4096), b"\0") for n in names]
    dir_sectors = (len(names) + 1 + 3) // 4
    fat: list[int] = [FATSECT]
    fat += [*range(2, 1 + dir_sectors), END]  # directory chain: sectors 1..dir_sectors
    starts = []
    for data in datas:
        count = (len(data) + SECTOR - 1) // SECTOR
        first = len(fat)
        starts.append(first)
        fat += [*range(first + 1, first + count), END]
    assert len(fat) <= SECTOR // 4, "fixture too large for one FAT sector"
    fat += [FREE] * (SECTOR // 4 - len(fat))
    entries = [_entry("Root Entry", 5, END, 0, NOSTREAM, 1 if names else NOSTREAM)]
    for i, (name, data) in enumerate(zip(names, datas, strict=True)):
        right = i + 2 if i + 1 < len(names) else NOSTREAM
        entries.append(_entry(name, 2, starts[i], len(data), right, NOSTREAM))
    directory = b"".join(entries).ljust(dir_sectors * SECTOR, b"\0")
    header = (
        b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
        + bytes(16)
        + struct.pack("<HHHHH", 0x3E, 3, 0xFFFE, 9, 6)
        + bytes(6)
        + struct.pack("<IIIIIIIII", 0, 1, 1, 0, 4096, END, 0, END, 0)
        + struct.pack("<I", 0)
        + struct.pack("<108I", *([FREE] * 108))
    )
    assert len(header) == SECTOR
    body = b"".join(d.ljust(((len(d) + SECTOR - 1) // SECTOR) * SECTOR, b"\0") for d in datas)
    return header + struct.pack(f"<{SECTOR // 4}I", *fat) + directory + body
