"""Text of Office 97-2003 files: Word .doc (piece table) and Excel .xls (xlrd), through the
extractor's child process, and found by search after a deposit."""

from __future__ import annotations

from pathlib import Path

import pytest
from genpon.search.extract import detect_kind, extract
from genpon.search.legacy_office import _clean

from tests.records.helpers import deposit, team_folder
from tests.search.helpers import ids, search, sync

XLS = "application/vnd.ms-excel"


def _xls(path: Path) -> Path:
    import xlwt

    book = xlwt.Workbook(encoding="utf-8")
    sheet = book.add_sheet("令和6年度予算")
    for r, row in enumerate(
        [("款", "項", "金額"), ("議会費", "議会運営", 12000), ("総務費", "", 3.5)]
    ):
        for c, value in enumerate(row):
            if value != "":
                sheet.write(r, c, value)
    book.add_sheet("空白")
    book.save(str(path))
    return path


def test_xls_text(tmp_path: Path):
    path = _xls(tmp_path / "予算.xls")
    assert detect_kind(path, XLS) == "ole"
    ex = extract(path, XLS)
    assert ex.status == "ok" and ex.extractor == "xlrd", ex
    assert ex.text == "令和6年度予算\n款\t項\t金額\n議会費\t議会運営\t12000\n総務費\t3.5\n空白"


def test_word_controls_and_fields_become_text():
    raw = (
        '詳細は\x13 HYPERLINK "https://example.jp/" \x14市のサイト\x15を参照。\r'
        "表\x07金額\x07\x07改行\x0bあり\x0c次頁\x13 PAGE \x14\x13 NESTED \x142\x15\x15\x01終"
    )
    assert _clean(raw) == "詳細は市のサイトを参照。\n表\t金額\t\t改行\nあり\n次頁2終"


def test_xls_deposited_is_found_by_search(client, demo, ctx, tmp_path: Path):
    auth = demo.auth("tanaka")
    data = _xls(tmp_path / "予算.xls").read_bytes()
    r = deposit(
        client,
        auth,
        data,
        filename="予算.xls",
        folder_id=team_folder(ctx),
        content_type="application/octet-stream",
    )
    assert r.status_code == 201, r.text
    assert r.json()["mime_type"] == XLS
    sync(ctx)
    assert ids(search(client, auth, "議会運営")) == {r.json()["id"]}


@pytest.mark.corpus
def test_real_word_97_files(shared_data: Path):
    office = shared_data / "office"
    ex = extract(office / "word-extractor__test11.doc", "application/msword")
    assert ex.status == "ok" and ex.extractor == "word97", ex
    assert "这是一个用来测试nodejs解析Word文档" in (ex.text or "")  # UTF-16 pieces
    assert "This is a test for parsing the Word file in node." in (ex.text or "")
    big = extract(office / "word-extractor__bigfile-01.doc", "application/msword")
    assert big.status == "ok" and "Welcome to BlogCFC" in (big.text or "")
    assert "\x13" not in (big.text or "") and "HYPERLINK" not in (big.text or "")
    bad = extract(office / "word-extractor__badfile-01-bad-header.doc", "application/msword")
    assert bad.status == "failed" and bad.reason


def test_hostile_piece_table_is_bounded():
    """Every piece of a forged table points at the whole stream: the text stops near the
    extractor's limit instead of growing with the number of pieces."""
    import struct

    from genpon.search.extract import MAX_CHARS
    from genpon.search.legacy_office import _pieces_text

    word = b"a" * 1000
    n = 100_000  # 100 million characters if every piece were taken
    cps = struct.pack(f"<{n + 1}I", *(1000 * i for i in range(n + 1)))
    pcds = b"".join(struct.pack("<HIH", 0, 0x40000000, 0) for _ in range(n))  # 8-bit at 0
    plc = cps + pcds
    clx = b"\x02" + struct.pack("<I", len(plc)) + plc
    text = _pieces_text(word, clx)
    assert MAX_CHARS < len(text) <= MAX_CHARS + 1000


def _record(rec_type: int, body: bytes, *, container: bool = False) -> bytes:
    import struct

    return struct.pack("<HHI", 0x000F if container else 0, rec_type, len(body)) + body


def test_ppt_text(tmp_path: Path):
    """A PowerPoint 97-2003 file written here (tests/search/cfb.py): the text atoms, UTF-16 and
    8-bit, in order, the slide's copy of a text not repeated."""
    from tests.search.cfb import compound_file

    chars = "令和6年度 予算説明会\r次第".encode("utf-16-le")
    slide_list = _record(
        0x0FF0, _record(0x0F9F, b"\0" * 4) + _record(0x0FA0, chars), container=True
    )
    slide = _record(0x03EE, _record(0x0FA0, chars) + _record(0x0FA8, b"Agenda"), container=True)
    document = _record(0x03E8, slide_list + _record(0x1234, b"\0" * 40) + slide, container=True)
    path = tmp_path / "説明会.ppt"
    path.write_bytes(compound_file({"PowerPoint Document": document, "Current User": b"\0" * 8}))
    assert detect_kind(path, "application/vnd.ms-powerpoint") == "ole"
    ex = extract(path, "application/vnd.ms-powerpoint")
    assert ex.status == "ok" and ex.extractor == "ppt97", ex
    assert ex.text == "令和6年度 予算説明会\n次第\nAgenda"
