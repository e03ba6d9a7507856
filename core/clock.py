"""Time: stored in UTC, business dates (年度, 起算日) computed in the city's time zone."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

DEFAULT_TIMEZONE = "Asia/Tokyo"  # Settings.timezone's default (GENPON_TIMEZONE)


def utcnow() -> datetime:
    """Aware UTC now. Every timestamp in the database is UTC."""
    return datetime.now(UTC)


def as_utc(dt: datetime) -> datetime:
    """Treat naive datetimes read back from SQLite as UTC."""
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


def local_date(dt: datetime, tz: str) -> date:
    """The calendar date of ``dt`` in the city's time zone."""
    return as_utc(dt).astimezone(ZoneInfo(tz)).date()


def local_now(tz: str) -> datetime:
    """Aware now in the city's time zone (never the process's local time)."""
    return utcnow().astimezone(ZoneInfo(tz))


def today(tz: str) -> date:
    """Today's date in the city: before 09:00 JST the UTC date is still yesterday."""
    return local_now(tz).date()


def to_local(dt: datetime, tz: str) -> datetime:
    """``dt`` (naive = UTC) as an aware datetime in the city's time zone."""
    return as_utc(dt).astimezone(ZoneInfo(tz))


def local_iso(dt: datetime, tz: str, *, timespec: str = "seconds") -> str:
    """ISO 8601 in the city's time zone with an explicit offset: 2026-07-15T09:30:00+09:00."""
    return to_local(dt, tz).isoformat(timespec=timespec)


def local_text(dt: datetime, tz: str) -> str:
    """For people: 2026-07-15 09:30 +09:00 (the city's time, offset shown)."""
    local = to_local(dt, tz)
    offset = local.strftime("%z")
    return f"{local:%Y-%m-%d %H:%M} {offset[:3]}:{offset[3:]}"


def mtime_date(mtime: float, tz: str) -> date:
    """The city-local date of a file's POSIX mtime (seconds since the epoch, so UTC-based),
    independent of the process's TZ."""
    return datetime.fromtimestamp(mtime, UTC).astimezone(ZoneInfo(tz)).date()


def fiscal_year_of(d: date) -> int:
    """年度: April to March. 2027-03-31 is FY2026, 2027-04-01 is FY2027."""
    return d.year if d.month >= 4 else d.year - 1


def fiscal_year(dt: datetime, tz: str) -> int:
    return fiscal_year_of(local_date(dt, tz))
