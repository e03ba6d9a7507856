"""行政文書ファイル管理簿 export: columns, a row, read back from CSV and XLSX."""

from __future__ import annotations

import csv
import io
from datetime import date, datetime
from pathlib import Path

import pytest
from genpon.retention.register_export import (
    CSV_HEADER,
    REGISTER_COLUMNS,
    XLSX_DATE_FORMAT,
    write_csv,
    write_xlsx,
)
from openpyxl import load_workbook

EXPECTED_HEADER = [
    "作成・取得年度",
    "大分類",
    "中分類",
    "小分類",
    "名称",
    "作成・取得者",
    "起算日",
    "保存期間",
    "保存期間満了日",
    "媒体の種類",
    "保存場所",
    "管理者",
    "保存期間満了時の措置",
    "備考",
]


def _row(**over: object) -> dict[str, object]:
    row: dict[str, object] = {
        "fiscal_year": 2026,
        "class_large": "総務",
        "class_medium": "文書管理",
        "class_small": "文書廃棄",
        "title": "令和8年度 文書廃棄に関する伺い",
        "organization": "総務部総務課",
        "retention_start": date(2027, 4, 1),
        "retention": "5",
        "retention_end": date(2032, 3, 31),
        "location": "Genpon 公文書保管領域",
        "manager": "総務課長",
        "disposition": "destroy",
        "remarks": "",
    }
    row.update(over)
    return row


def test_headings_are_the_register_columns() -> None:
    assert REGISTER_COLUMNS == (
        "作成・取得年度", "分類", "名称", "作成・取得者", "起算日", "保存期間", "保存期間満了日",
        "媒体の種類", "保存場所", "管理者", "保存期間満了時の措置", "備考",
    )  # fmt: skip
    assert list(CSV_HEADER) == EXPECTED_HEADER


def test_csv_has_bom_columns_and_row() -> None:
    rows = [
        _row(),
        _row(
            fiscal_year=2019,
            title='=HYPERLINK("http://evil")',
            retention="10",
            extension_years=3,
            retention_start=date(2020, 4, 1),
            retention_end=date(2033, 3, 31),
            disposition="transfer",
            medium="紙",
            remarks="訴訟のため延長",
        ),
        _row(retention="permanent", retention_end=None, disposition="移管"),
    ]
    buf = io.BytesIO()
    assert write_csv(rows, buf) == 3
    raw = buf.getvalue()
    assert raw.startswith(b"\xef\xbb\xbf")
    assert raw.count(b"\xef\xbb\xbf") == 1
    assert b"\r\n" in raw
    table = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"), newline="")))
    assert table[0] == EXPECTED_HEADER
    assert table[1] == [
        "令和8年度", "総務", "文書管理", "文書廃棄", "令和8年度 文書廃棄に関する伺い",
        "総務部総務課", "2027-04-01", "5年", "2032-03-31", "電子", "Genpon 公文書保管領域",
        "総務課長", "廃棄", "",
    ]  # fmt: skip
    second = dict(zip(EXPECTED_HEADER, table[2], strict=True))
    assert second["作成・取得年度"] == "令和元年度"
    assert second["名称"] == '\'=HYPERLINK("http://evil")'  # no formula in Excel
    assert second["保存期間"] == "13年（延長3年を含む）"
    assert second["保存期間満了日"] == "2033-03-31"
    assert second["媒体の種類"] == "紙"
    assert second["保存期間満了時の措置"] == "移管"
    third = dict(zip(EXPECTED_HEADER, table[3], strict=True))
    assert (third["保存期間"], third["保存期間満了日"]) == ("永年", "")


def test_csv_to_text_stream_writes_one_bom(tmp_path: Path) -> None:
    path = tmp_path / "register.csv"
    with path.open("w", encoding="utf-8", newline="") as fp:
        write_csv([_row()], fp)
    with path.open("w", encoding="utf-8-sig", newline="") as fp:
        write_csv([_row()], fp)
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf") and raw.count(b"\xef\xbb\xbf") == 1
    assert len(list(csv.reader(io.StringIO(raw.decode("utf-8-sig"), newline="")))) == 2


def test_xlsx_columns_row_and_formats(tmp_path: Path) -> None:
    path = tmp_path / "register.xlsx"
    rows = [_row(), _row(title="=1+1", fiscal_year=2018, retention="lt1", retention_end=None)]
    assert write_xlsx(rows, path) == 2
    ws = load_workbook(path).active
    assert ws.title == "行政文書ファイル管理簿"
    # two-row header: 分類 over 大・中・小, others merged over both rows
    assert ws["A1"].value == "作成・取得年度"
    assert ws["B1"].value == "分類"
    assert [ws.cell(2, c).value for c in (2, 3, 4)] == ["大分類", "中分類", "小分類"]
    flat = [ws.cell(1, c).value for c in range(1, 15)]
    assert [v for v in flat if v is not None] == list(REGISTER_COLUMNS)
    merged = {str(r) for r in ws.merged_cells.ranges}
    assert "B1:D1" in merged and "A1:A2" in merged and "N1:N2" in merged
    assert ws["A1"].font.bold and ws["C2"].font.bold
    assert ws.column_dimensions["E"].width >= 40
    assert ws.freeze_panes == "A3"
    # data row
    values = [ws.cell(3, c).value for c in range(1, 15)]
    assert values[:6] == [
        "令和8年度", "総務", "文書管理", "文書廃棄", "令和8年度 文書廃棄に関する伺い", "総務部総務課",
    ]  # fmt: skip
    assert values[6] == datetime(2027, 4, 1)
    assert ws.cell(3, 7).number_format == XLSX_DATE_FORMAT  # 2027年4月1日 in Excel
    assert values[7:] == [
        "5年", datetime(2032, 3, 31), "電子", "Genpon 公文書保管領域", "総務課長", "廃棄", None,
    ]  # fmt: skip
    # text that looks like a formula stays text
    assert ws["E4"].value == "=1+1" and ws["E4"].data_type == "s"
    assert ws["A4"].value == "平成30年度"
    assert ws["H4"].value == "1年未満" and ws["I4"].value is None


def test_xlsx_to_binary_stream() -> None:
    buf = io.BytesIO()
    write_xlsx([_row()], buf)
    ws = load_workbook(io.BytesIO(buf.getvalue())).active
    assert ws["E3"].value == "令和8年度 文書廃棄に関する伺い"


@pytest.mark.parametrize(
    "bad",
    [
        {"titel": "typo"},
        {"retention": "7"},
        {"disposition": "shred"},
        {"retention_end": datetime(2032, 3, 31, 0, 0)},
        {"retention_start": "2027/04/01"},
    ],
)
def test_bad_rows_are_refused(bad: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        write_csv([_row(**bad)], io.BytesIO())
