"""Retention date rules (保存期間の計算) of Japanese public records, as pure functions.

Practice encoded here (公文書管理法・行政文書ファイル管理規則 style):

- 保存期間 (:class:`RetentionPeriod`): 1年未満, 1, 3, 5, 10, 30 years, or legacy 永年 (permanent).
  The string values are the ones stored in ``DocumentClass.retention`` ("lt1", "1", …,
  "permanent").
- 年度 (fiscal year) runs April to March and is computed in the city's time zone, whatever the
  server's: 2027-03-31 23:30 JST is FY2026, 2027-03-31T15:00Z (= 2027-04-01 00:00 JST) is FY2027.
- 起算日 (:func:`retention_start`): by default April 1 of the fiscal year after the closing date
  (``"next_fiscal_year"``); a class may instead start on the closing date (``"closing_date"``).
- 満了日 (:func:`retention_end`): the day before the same date N years later (民法143条).
  Leap years: when the start is February 29 and year ``start + N`` has no February 29, there is
  no corresponding day (応当日); 民法143条2項ただし書 then ends the period on the last day of
  that month, i.e. **February 28**. Equivalently: Feb 29 + N years rolls *forward* to March 1,
  and the day before is February 28. (When ``start + N`` is itself a leap year the corresponding
  day exists and the end is February 28 too.) With the default rule the start is always
  April 1, so this only matters for classes using ``"closing_date"``.
- 1年未満 is due any time after the case closes; 永年 is never due; anything else is due once
  the as-of date is after 満了日 (:func:`is_due`).
- 延長 (extension) adds years cumulatively (:func:`effective_years`).
- 写し (copy): may carry 1年未満 only while its original is kept elsewhere
  (:func:`copy_period_allowed`) and never outlives its original (:func:`copy_end_cap`).
- 満了時の措置 (:class:`Disposition`): 廃棄 ``destroy`` or 移管 ``transfer``.
- 保留 (:class:`HoldType`): 訴訟, 開示請求, 不服申立て, 監査, その他.

Nothing here touches the database, the clock or the settings: callers pass dates and the
time zone.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime, timedelta
from enum import StrEnum

from genpon.core.clock import fiscal_year_of, local_date

DEFAULT_TZ = "Asia/Tokyo"

_ONE_DAY = timedelta(days=1)


class RetentionPeriod(StrEnum):
    """保存期間. Values match ``records.models.RETENTIONS``."""

    LT1 = "lt1"
    Y1 = "1"
    Y3 = "3"
    Y5 = "5"
    Y10 = "10"
    Y30 = "30"
    PERMANENT = "permanent"

    @property
    def label(self) -> str:
        """Japanese label: 1年未満, 5年, 永年 …"""
        if self is RetentionPeriod.LT1:
            return "1年未満"
        if self is RetentionPeriod.PERMANENT:
            return "永年"
        return f"{self.value}年"

    @property
    def years(self) -> int | None:
        """Whole years: 0 for 1年未満, ``None`` for permanent."""
        if self is RetentionPeriod.LT1:
            return 0
        if self is RetentionPeriod.PERMANENT:
            return None
        return int(self.value)

    @classmethod
    def parse(cls, value: RetentionPeriod | str | int) -> RetentionPeriod:
        """Accept the stored code ("lt1", "5", "permanent"), an int of years, or a Japanese
        label ("1年未満", "5年", "永年"). Raises ``ValueError`` otherwise."""
        if isinstance(value, RetentionPeriod):
            return value
        if isinstance(value, bool):  # bool is an int: refuse it explicitly
            raise ValueError(f"invalid retention period: {value!r}")
        text = str(value).strip()
        for member in cls:
            if text in (member.value, member.label):
                return member
        raise ValueError(f"invalid retention period: {value!r}")


class StartRule(StrEnum):
    """起算日の規則 of a document class."""

    NEXT_FISCAL_YEAR = "next_fiscal_year"  # 翌年度の4月1日
    CLOSING_DATE = "closing_date"  # 完結日

    @property
    def label(self) -> str:
        return {"next_fiscal_year": "翌年度4月1日", "closing_date": "完結日"}[self.value]


class Disposition(StrEnum):
    """保存期間満了時の措置."""

    DESTROY = "destroy"
    TRANSFER = "transfer"

    @property
    def label(self) -> str:
        return {"destroy": "廃棄", "transfer": "移管"}[self.value]

    @classmethod
    def parse(cls, value: Disposition | str) -> Disposition:
        if isinstance(value, Disposition):
            return value
        text = str(value).strip()
        for member in cls:
            if text in (member.value, member.label):
                return member
        raise ValueError(f"invalid disposition: {value!r}")


class HoldType(StrEnum):
    """保留の種類: any active hold blocks disposal."""

    LITIGATION = "litigation"
    DISCLOSURE = "disclosure"
    APPEAL = "appeal"
    AUDIT = "audit"
    OTHER = "other"

    @property
    def label(self) -> str:
        return {
            "litigation": "訴訟",
            "disclosure": "開示請求",
            "appeal": "不服申立て",
            "audit": "監査",
            "other": "その他",
        }[self.value]


# --- fiscal years -------------------------------------------------------------------------


def fiscal_year(value: date | datetime, tz: str = DEFAULT_TZ) -> int:
    """年度 (April–March) of a date or a datetime.

    A ``date`` is taken as already local. A ``datetime`` is converted to ``tz`` first; a naive
    datetime is read as UTC, like every timestamp in the database (see ``core.clock``).
    """
    if isinstance(value, datetime):
        return fiscal_year_of(local_date(value, tz))
    return fiscal_year_of(value)


# (first calendar year, era name), newest first. A fiscal year is named after the era of the
# calendar year it starts in, taking the newer era when the calendar year holds two: FY2019
# began in 平成31年 but is 令和元年度; FY1989 is 平成元年度; FY1988 stays 昭和63年度.
_ERAS: tuple[tuple[int, str], ...] = (
    (2019, "令和"),
    (1989, "平成"),
    (1926, "昭和"),
    (1912, "大正"),
    (1868, "明治"),
)


def wareki_year(year: int) -> str:
    """和暦 of a calendar year as named for a fiscal year: 2026 → 令和8年, 2019 → 令和元年."""
    for first, era in _ERAS:
        if year >= first:
            n = year - first + 1
            return f"{era}{'元' if n == 1 else n}年"
    raise ValueError(f"year before 明治: {year}")


def reiwa_label(fy: int) -> str:
    """Japanese fiscal year label: 2026 → 令和8年度, 2019 → 令和元年度, 2018 → 平成30年度."""
    return f"{wareki_year(fy)}度"


# --- start and end ------------------------------------------------------------------------


def _closing_date(closed: date | datetime, tz: str) -> date:
    return local_date(closed, tz) if isinstance(closed, datetime) else closed


def retention_start(
    closed: date | datetime,
    rule: StartRule | str = StartRule.NEXT_FISCAL_YEAR,
    *,
    tz: str = DEFAULT_TZ,
) -> date:
    """起算日 from the closing date (or, for a document without a case, its creation or
    receipt date). A datetime is converted to the city's date first."""
    closed_on = _closing_date(closed, tz)
    rule = StartRule(rule)
    if rule is StartRule.CLOSING_DATE:
        return closed_on
    return date(fiscal_year_of(closed_on) + 1, 4, 1)


def add_years(d: date, years: int) -> date:
    """The corresponding day (応当日) ``years`` later. February 29 in a year without one rolls
    forward to March 1 (so that the day before is February 28, 民法143条2項ただし書)."""
    try:
        return d.replace(year=d.year + years)
    except ValueError:  # Feb 29 -> common year
        return date(d.year + years, 3, 1)


def retention_end(start: date, years: int) -> date:
    """満了日: the day before the same date ``years`` later.

    2027-04-01 + 5 → 2032-03-31. 2028-02-29 + 1 → 2029-02-28 (no Feb 29 in 2029: the period
    ends on the last day of February); 2028-02-29 + 4 → 2032-02-28.
    """
    if isinstance(years, bool) or not isinstance(years, int) or years < 1:
        raise ValueError(f"years must be a positive int, got {years!r}")
    return add_years(start, years) - _ONE_DAY


def effective_years(
    base: RetentionPeriod | str | int, extensions: Iterable[int] = ()
) -> int | None:
    """Cumulative period after 延長: base years plus every extension (each ≥ 1 year).

    1年未満 counts as 0 (so 1年未満 extended by 1 year is 1 year); permanent stays ``None``.
    """
    period = RetentionPeriod.parse(base)
    total = period.years
    for ext in extensions:
        if isinstance(ext, bool) or not isinstance(ext, int) or ext < 1:
            raise ValueError(f"an extension must be a positive number of years, got {ext!r}")
        if total is not None:
            total += ext
    return total


def retention_dates(
    closed: date | datetime,
    period: RetentionPeriod | str | int,
    *,
    rule: StartRule | str = StartRule.NEXT_FISCAL_YEAR,
    extensions: Iterable[int] = (),
    tz: str = DEFAULT_TZ,
) -> tuple[date, date | None]:
    """(起算日, 満了日) of a closed case or a case-less document.

    1年未満 without extension: start = end = closing date (due any time after closing).
    Permanent: end ``None``.
    """
    closed_on = _closing_date(closed, tz)
    years = effective_years(period, extensions)
    if years == 0:
        return closed_on, closed_on
    start = retention_start(closed_on, rule)
    if years is None:
        return start, None
    return start, retention_end(start, years)


def is_due(
    period: RetentionPeriod | str | int,
    *,
    as_of: date,
    retention_end: date | None = None,
    closed_on: date | None = None,
) -> bool:
    """Whether the retention period is over as of ``as_of`` (holds are checked elsewhere).

    ``period`` is the effective one (after extensions; an int is a number of years).
    - 1年未満 (0 years): due any time after the case closes (``as_of >= closed_on``); never
      while ``closed_on`` is unknown (open or reopened case).
    - permanent: never due.
    - otherwise: due when ``as_of > retention_end``; never while the end is not fixed.
    """
    if isinstance(period, int) and not isinstance(period, bool):
        if period < 0:
            raise ValueError(f"negative retention: {period}")
        years: int | None = period
    else:
        years = RetentionPeriod.parse(period).years
    if years is None:
        return False
    if years == 0:
        return closed_on is not None and as_of >= closed_on
    return retention_end is not None and as_of > retention_end


# --- copies (写し) ---------------------------------------------------------------------------


def copy_period_allowed(copy_period: RetentionPeriod | str | int, original_kept: bool) -> bool:
    """A copy may carry 1年未満 only while its original is kept elsewhere; any other period is
    allowed (its end is capped by :func:`copy_end_cap`)."""
    if RetentionPeriod.parse(copy_period) is RetentionPeriod.LT1:
        return original_kept
    return True


def copy_end_cap(copy_end: date | None, original_end: date | None) -> date | None:
    """A copy never outlives its original: the earlier of the two ends. ``None`` means no end
    (permanent), so the other date wins; both ``None`` stays ``None``."""
    if copy_end is None:
        return original_end
    if original_end is None:
        return copy_end
    return min(copy_end, original_end)
