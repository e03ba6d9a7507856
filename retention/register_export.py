"""行政文書ファイル管理簿 (file register) export: CSV for Excel and XLSX.

Input rows are plain dicts with English keys (:data:`ROW_KEYS`); the service that builds them
from the database decides what one row is (one 行政文書ファイル, normally a case). Columns, in
order (:data:`REGISTER_COLUMNS`):

    作成・取得年度 | 分類 (大分類 中分類 小分類) | 名称 | 作成・取得者 | 起算日 | 保存期間 |
    保存期間満了日 | 媒体の種類 | 保存場所 | 管理者 | 保存期間満了時の措置 | 備考

Choices (documented here because the register is read by people and by programs):

- **分類** is three columns. The XLSX has a two-row header: 「分類」 merged over 大分類・中分類・
  小分類 on row 1, the three level names on row 2, every other heading merged over both rows;
  data starts on row 3. The CSV has one header row (programs read it) whose three class columns
  are named 大分類, 中分類, 小分類 (:data:`CSV_HEADER`).
- **年度** is shown in 和暦 as 「令和8年度」 (2019 → 令和元年度), as on the city's published registers.
- **Dates**: the CSV writes ISO 8601 (2026-07-15), which Excel and programs both read as a date;
  the XLSX stores real date cells displayed as 「2026年7月15日」 (number format
  ``yyyy"年"m"月"d"日"``), so they still sort and filter as dates.
- **保存期間** shows the cumulative period after extensions: 「8年（延長3年を含む）」; 保存期間満了日
  is the end date the caller computed (after extensions). No end (永年) is an empty cell.
- **Spreadsheet formula injection**: a text cell starting with ``= + - @`` (or tab/CR) is
  prefixed with ``'`` in the CSV; in the XLSX it is stored as a string cell, never a formula.
- CSV: UTF-8 with BOM (Excel detects the encoding), CRLF line ends (RFC 4180).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping
from datetime import date, datetime
from os import PathLike
from typing import IO, TYPE_CHECKING, Any

from genpon.retention.rules import Disposition, RetentionPeriod, effective_years, reiwa_label

if TYPE_CHECKING:
    from openpyxl.cell.cell import Cell

CLASS_HEADING = "分類"
CLASS_LEVELS = ("大分類", "中分類", "小分類")

#: Register headings; 「分類」 stands for the three CLASS_LEVELS columns.
REGISTER_COLUMNS: tuple[str, ...] = (
    "作成・取得年度",
    CLASS_HEADING,
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
)

#: The flat header (one column per cell), as in the CSV and row 2 of the XLSX.
CSV_HEADER: tuple[str, ...] = (
    REGISTER_COLUMNS[0],
    *CLASS_LEVELS,
    *REGISTER_COLUMNS[2:],
)

#: Row dict key for each column of CSV_HEADER.
ROW_KEYS: tuple[str, ...] = (
    "fiscal_year",
    "class_large",
    "class_medium",
    "class_small",
    "title",
    "organization",
    "retention_start",
    "retention",
    "retention_end",
    "medium",
    "location",
    "manager",
    "disposition",
    "remarks",
)

#: Keys accepted besides ROW_KEYS: total years added by extensions (延長), shown in 保存期間.
EXTRA_KEYS: tuple[str, ...] = ("extension_years",)

DEFAULT_MEDIUM = "電子"

XLSX_DATE_FORMAT = 'yyyy"年"m"月"d"日"'
_XLSX_WIDTHS = (14, 16, 16, 16, 48, 20, 16, 20, 16, 10, 20, 16, 14, 30)
_DATE_KEYS = frozenset({"retention_start", "retention_end"})
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _as_date(key: str, value: Any) -> date | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        raise ValueError(f"{key}: pass a local date, not a datetime ({value!r})")
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        return date.fromisoformat(value)
    raise ValueError(f"{key}: not a date: {value!r}")


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _fiscal_year_label(value: Any) -> str:
    if value is None or value == "":
        return ""
    if isinstance(value, int) and not isinstance(value, bool):
        return reiwa_label(value)
    return str(value)


def _retention_label(value: Any, extension_years: Any) -> str:
    if value is None or value == "":
        return ""
    period = RetentionPeriod.parse(value)
    ext = int(extension_years or 0)
    if ext < 0:
        raise ValueError(f"extension_years must not be negative: {ext}")
    if ext == 0 or period is RetentionPeriod.PERMANENT:
        return period.label
    total = effective_years(period, [ext])
    return f"{total}年（延長{ext}年を含む）"


def _disposition_label(value: Any) -> str:
    if value is None or value == "":
        return ""
    return Disposition.parse(value).label


def register_values(row: Mapping[str, Any]) -> list[str | date | None]:
    """One row as cell values in CSV_HEADER order: dates stay ``date`` (or ``None``), every
    other cell is display text. Unknown keys are refused (a typo would silently blank a
    column)."""
    unknown = set(row) - set(ROW_KEYS) - set(EXTRA_KEYS)
    if unknown:
        raise ValueError(f"unknown register keys: {sorted(unknown)}")
    out: list[str | date | None] = []
    for key in ROW_KEYS:
        value = row.get(key)
        if key == "fiscal_year":
            out.append(_fiscal_year_label(value))
        elif key in _DATE_KEYS:
            out.append(_as_date(key, value))
        elif key == "retention":
            out.append(_retention_label(value, row.get("extension_years")))
        elif key == "disposition":
            out.append(_disposition_label(value))
        elif key == "medium":
            out.append(_text(value) if value not in (None, "") else DEFAULT_MEDIUM)
        else:
            out.append(_text(value))
    return out


def _csv_cell(value: str | date | None) -> str:
    if value is None:
        return ""
    if isinstance(value, date):
        return value.isoformat()
    if value.startswith(_FORMULA_START):
        return "'" + value
    return value


def write_csv(rows: Iterable[Mapping[str, Any]], fp: IO[str] | IO[bytes]) -> int:
    """Write the register as CSV (UTF-8 with BOM, CRLF) to a text stream opened with
    ``newline=""`` or to a binary stream. Returns the number of data rows."""
    text: IO[str]
    wrapper: io.TextIOWrapper | None = None
    if isinstance(fp, io.TextIOBase):
        text = fp
        encoding = (getattr(fp, "encoding", None) or "").lower().replace("_", "-")
        if encoding != "utf-8-sig":  # that codec writes the BOM itself
            text.write("\ufeff")
    else:
        wrapper = io.TextIOWrapper(fp, encoding="utf-8-sig", newline="", write_through=True)  # type: ignore[arg-type]
        text = wrapper
    try:
        writer = csv.writer(text, lineterminator="\r\n")
        writer.writerow(CSV_HEADER)
        n = 0
        for row in rows:
            writer.writerow([_csv_cell(v) for v in register_values(row)])
            n += 1
        text.flush()
    finally:
        if wrapper is not None:
            wrapper.detach()  # leave the caller's stream open
    return n


def write_xlsx(
    rows: Iterable[Mapping[str, Any]],
    path_or_fp: str | PathLike[str] | IO[bytes],
    *,
    sheet_title: str = "行政文書ファイル管理簿",
) -> int:
    """Write the register as an XLSX workbook (streamed: write-only mode, constant memory).
    Two-row bold header, column widths, frozen header, auto filter, dates as 2026年7月15日.
    Returns the number of data rows."""
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Alignment, Font, PatternFill
    from openpyxl.utils import get_column_letter
    from openpyxl.worksheet.cell_range import CellRange

    wb = Workbook(write_only=True)
    ws = wb.create_sheet(title=sheet_title[:31])
    ncols = len(CSV_HEADER)
    for i, width in enumerate(_XLSX_WIDTHS, start=1):
        ws.column_dimensions[get_column_letter(i)].width = width
    ws.freeze_panes = "A3"

    bold = Font(bold=True)
    fill = PatternFill("solid", fgColor="DDEBF7")
    center = Alignment(horizontal="center", vertical="center", wrap_text=True)

    def head(value: str | None) -> Cell:
        cell = WriteOnlyCell(ws, value=value)
        cell.font = bold
        cell.fill = fill
        cell.alignment = center
        return cell

    # Row 1: every heading, 「分類」 over the three class columns; row 2: the class levels.
    class_first = 2  # column B
    class_last = class_first + len(CLASS_LEVELS) - 1
    row1: list[str | None] = []
    row2: list[str | None] = []
    for col, name in enumerate(CSV_HEADER, start=1):
        if class_first <= col <= class_last:
            row1.append(CLASS_HEADING if col == class_first else None)
            row2.append(name)
        else:
            row1.append(name)
            row2.append(None)
    ws.append([head(v) for v in row1])
    ws.append([head(v) for v in row2])
    ws.merged_cells.add(CellRange(min_col=class_first, max_col=class_last, min_row=1, max_row=1))
    for col in range(1, ncols + 1):
        if not class_first <= col <= class_last:
            ws.merged_cells.add(CellRange(min_col=col, max_col=col, min_row=1, max_row=2))

    n = 0
    for row in rows:
        cells = []
        for value in register_values(row):
            # openpyxl writes date cells; its stubs name datetime only
            cell = WriteOnlyCell(ws, value=value)  # type: ignore[arg-type]
            if isinstance(value, date):
                cell.number_format = XLSX_DATE_FORMAT
            elif isinstance(value, str):
                cell.data_type = "s"  # never a formula, whatever the text starts with
            cells.append(cell)
        ws.append(cells)
        n += 1
    last_col = get_column_letter(ncols)
    ws.auto_filter.ref = f"A2:{last_col}{n + 2}"
    wb.save(path_or_fp)
    return n
