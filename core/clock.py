"""Time: stored in UTC, business dates (年度, 起算日) computed in the city's time zone."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo


def utcnow() -> datetime:
    """Aware UTC now. Every timestamp in the database is UTC."""
    return datetime.now(UTC)


def as_utc(dt: datetime) -> datetime:
    """Treat naive datetimes read back from SQLite as UTC."""
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


def local_date(dt: datetime, tz: str) -> date:
    """The calendar date of ``dt`` in the city's time zone."""
    return as_utc(dt).astimezone(ZoneInfo(tz)).date()


def fiscal_year_of(d: date) -> int:
    """年度: April to March. 2027-03-31 is FY2026, 2027-04-01 is FY2027."""
    return d.year if d.month >= 4 else d.year - 1


def fiscal_year(dt: datetime, tz: str) -> int:
    return fiscal_year_of(local_date(dt, tz))
