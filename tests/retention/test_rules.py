"""Retention date rules at fiscal-year edges, leap years, time zones, copies."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from genpon.retention.rules import (
    Disposition,
    HoldType,
    RetentionPeriod,
    StartRule,
    copy_end_cap,
    copy_period_allowed,
    effective_years,
    fiscal_year,
    is_due,
    reiwa_label,
    retention_dates,
    retention_end,
    retention_start,
)

JST = ZoneInfo("Asia/Tokyo")


# --- periods and labels ---------------------------------------------------------------------


def test_periods_match_stored_codes_and_labels() -> None:
    from genpon.records.models import RETENTIONS

    assert tuple(p.value for p in RetentionPeriod) == RETENTIONS
    assert [p.label for p in RetentionPeriod] == [
        "1年未満", "1年", "3年", "5年", "10年", "30年", "永年",
    ]  # fmt: skip
    assert RetentionPeriod.LT1.years == 0
    assert RetentionPeriod.Y30.years == 30
    assert RetentionPeriod.PERMANENT.years is None


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("lt1", "lt1"), ("1年未満", "lt1"), (5, "5"), ("10年", "10"), ("永年", "permanent")],
)
def test_parse_period(raw: object, expected: str) -> None:
    assert RetentionPeriod.parse(raw) == expected  # type: ignore[arg-type]


@pytest.mark.parametrize("raw", ["2", 7, "", "forever", True])
def test_parse_period_refuses(raw: object) -> None:
    with pytest.raises(ValueError):
        RetentionPeriod.parse(raw)  # type: ignore[arg-type]


def test_dispositions_and_holds_have_japanese_labels() -> None:
    assert Disposition.DESTROY.label == "廃棄"
    assert Disposition.TRANSFER.label == "移管"
    assert Disposition.parse("移管") is Disposition.TRANSFER
    with pytest.raises(ValueError):
        Disposition.parse("shred")
    assert [h.label for h in HoldType] == ["訴訟", "開示請求", "不服申立て", "監査", "その他"]


# --- fiscal years ---------------------------------------------------------------------------


def test_fiscal_year_edges_on_dates() -> None:
    assert fiscal_year(date(2027, 3, 31)) == 2026
    assert fiscal_year(date(2027, 4, 1)) == 2027
    assert fiscal_year(date(2026, 1, 1)) == 2025
    assert fiscal_year(date(2026, 12, 31)) == 2026


def test_fiscal_year_in_city_time_zone() -> None:
    # 23:30 JST on March 31 is still FY2026 …
    assert fiscal_year(datetime(2027, 3, 31, 23, 30, tzinfo=JST)) == 2026
    # … and is 14:30 UTC the same day: same answer whatever zone the datetime carries
    assert fiscal_year(datetime(2027, 3, 31, 14, 30, tzinfo=UTC)) == 2026
    # 15:00 UTC on March 31 is already April 1 in Tokyo: FY2027
    assert fiscal_year(datetime(2027, 3, 31, 15, 0, tzinfo=UTC)) == 2027
    # naive datetimes are UTC (as read back from SQLite)
    assert fiscal_year(datetime(2027, 3, 31, 15, 0)) == 2027
    assert fiscal_year(datetime(2027, 3, 31, 14, 59)) == 2026
    # another city time zone gives another answer for the same instant
    assert fiscal_year(datetime(2027, 3, 31, 15, 0, tzinfo=UTC), tz="UTC") == 2026
    minus5 = timezone(timedelta(hours=-5))
    assert fiscal_year(datetime(2027, 3, 31, 20, 0, tzinfo=minus5)) == 2027  # 01:00 UTC Apr 1


@pytest.mark.parametrize(
    ("fy", "label"),
    [
        (2026, "令和8年度"),
        (2020, "令和2年度"),
        (2019, "令和元年度"),  # began in 平成31年 (April 2019), named 令和元年度
        (2018, "平成30年度"),
        (1989, "平成元年度"),
        (1988, "昭和63年度"),
    ],
)
def test_reiwa_label(fy: int, label: str) -> None:
    assert reiwa_label(fy) == label


# --- start and end --------------------------------------------------------------------------


def test_issue_example_closed_mid_year_five_years() -> None:
    start, end = retention_dates(date(2026, 7, 15), "5")
    assert (start, end) == (date(2027, 4, 1), date(2032, 3, 31))
    assert retention_start(date(2026, 7, 15)) == date(2027, 4, 1)
    assert retention_end(date(2027, 4, 1), 5) == date(2032, 3, 31)


def test_start_at_fiscal_year_edges() -> None:
    assert retention_start(date(2027, 3, 31)) == date(2027, 4, 1)
    assert retention_start(date(2027, 4, 1)) == date(2028, 4, 1)
    # closed 23:30 JST on March 31: FY2026, starts 2027-04-01
    assert retention_start(datetime(2027, 3, 31, 23, 30, tzinfo=JST)) == date(2027, 4, 1)
    # closed 15:00 UTC on March 31 = April 1 JST: FY2027, starts 2028-04-01
    assert retention_start(datetime(2027, 3, 31, 15, 0, tzinfo=UTC)) == date(2028, 4, 1)


def test_closing_date_rule() -> None:
    assert retention_start(date(2026, 7, 15), StartRule.CLOSING_DATE) == date(2026, 7, 15)
    assert retention_start(date(2026, 7, 15), "closing_date") == date(2026, 7, 15)
    start, end = retention_dates(date(2026, 7, 15), 3, rule="closing_date")
    assert (start, end) == (date(2026, 7, 15), date(2029, 7, 14))
    with pytest.raises(ValueError):
        retention_start(date(2026, 7, 15), "whenever")


def test_end_is_day_before_corresponding_day() -> None:
    assert retention_end(date(2027, 4, 1), 1) == date(2028, 3, 31)
    assert retention_end(date(2027, 4, 1), 30) == date(2057, 3, 31)
    # start March 1: the day before March 1 of a leap year is February 29
    assert retention_end(date(2027, 3, 1), 1) == date(2028, 2, 29)
    assert retention_end(date(2026, 3, 1), 1) == date(2027, 2, 28)


def test_end_from_february_29() -> None:
    # No Feb 29 in 2029: the period ends on the last day of February (民法143条2項ただし書)
    assert retention_end(date(2028, 2, 29), 1) == date(2029, 2, 28)
    assert retention_end(date(2028, 2, 29), 3) == date(2031, 2, 28)
    # 2032 has Feb 29: the corresponding day exists, the end is the day before
    assert retention_end(date(2028, 2, 29), 4) == date(2032, 2, 28)
    _, end = retention_dates(date(2028, 2, 29), 5, rule="closing_date")
    assert end == date(2033, 2, 28)


@pytest.mark.parametrize("years", [0, -1, True, 1.5])
def test_end_refuses_bad_years(years: object) -> None:
    with pytest.raises(ValueError):
        retention_end(date(2027, 4, 1), years)  # type: ignore[arg-type]


def test_lt1_and_permanent_dates() -> None:
    assert retention_dates(date(2026, 7, 15), "lt1") == (date(2026, 7, 15), date(2026, 7, 15))
    assert retention_dates(date(2026, 7, 15), "permanent") == (date(2027, 4, 1), None)
    # 1年未満 extended by one year behaves like one year from the start rule
    assert retention_dates(date(2026, 7, 15), "lt1", extensions=[1]) == (
        date(2027, 4, 1),
        date(2028, 3, 31),
    )


def test_extensions_are_cumulative() -> None:
    assert effective_years("5") == 5
    assert effective_years("5", [3]) == 8
    assert effective_years(RetentionPeriod.Y10, [1, 2]) == 13
    assert effective_years("permanent", [5]) is None
    _, end = retention_dates(date(2026, 7, 15), "5", extensions=[3, 2])
    assert end == date(2037, 3, 31)
    for bad in (0, -2, True):
        with pytest.raises(ValueError):
            effective_years("5", [bad])


# --- due ------------------------------------------------------------------------------------


def test_due_after_end_only() -> None:
    end = date(2032, 3, 31)
    assert not is_due("5", as_of=date(2032, 3, 31), retention_end=end)
    assert is_due("5", as_of=date(2032, 4, 1), retention_end=end)
    assert is_due(8, as_of=date(2040, 1, 1), retention_end=end)
    assert not is_due("5", as_of=date(2040, 1, 1), retention_end=None)  # dates not fixed


def test_lt1_due_any_time_after_closing() -> None:
    closed = date(2026, 7, 15)
    assert not is_due("lt1", as_of=date(2026, 7, 14), closed_on=closed)
    assert is_due("lt1", as_of=closed, closed_on=closed)
    assert is_due(0, as_of=date(2026, 7, 16), closed_on=closed)
    assert not is_due("lt1", as_of=date(2030, 1, 1), closed_on=None)  # open / reopened case


def test_permanent_never_due() -> None:
    assert not is_due("permanent", as_of=date(9999, 12, 31), retention_end=date(2000, 1, 1))


# --- copies ---------------------------------------------------------------------------------


def test_copy_lt1_only_while_original_kept() -> None:
    assert copy_period_allowed("lt1", original_kept=True)
    assert not copy_period_allowed("lt1", original_kept=False)
    assert copy_period_allowed("5", original_kept=False)
    assert copy_period_allowed(RetentionPeriod.PERMANENT, original_kept=True)


def test_copy_never_outlives_original() -> None:
    assert copy_end_cap(date(2040, 3, 31), date(2032, 3, 31)) == date(2032, 3, 31)
    assert copy_end_cap(date(2030, 3, 31), date(2032, 3, 31)) == date(2030, 3, 31)
    assert copy_end_cap(None, date(2032, 3, 31)) == date(2032, 3, 31)  # permanent copy
    assert copy_end_cap(date(2030, 3, 31), None) == date(2030, 3, 31)  # permanent original
    assert copy_end_cap(None, None) is None
