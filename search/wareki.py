"""和暦 (Japanese era years) in search filters and in hits.

A filter value may be written 2023, 令和5年度, 令和五年度, R5, R5年度, 平成31年, 2023-04-01,
令和5年4月1日 or R5.4.1 (full-width too). :func:`fiscal_year` reads a 年度 (April to March);
:func:`date_bound` reads the first or last day a value covers: a 年度 runs from 1 April to 31
March, a 年 from 1 January to 31 December, a month its days. :func:`fiscal_year_label` writes a
年度 both ways, ``令和8年度 (2026)``.

The era of a year is the one in force for most of it: 2019 is 令和元年, 1989 平成元年 (as
city offices write 令和元年度 for the fiscal year from April 2019).
"""

from __future__ import annotations

import calendar
import re
from datetime import date

from genpon.search.analyzer import ERA_LETTERS, ERAS, kanji_number, normalize

_ERA_START = sorted(((base + 1, name) for name, base in ERAS.items()), reverse=True)
_NUM = "[0-9]+|[〇零一二三四五六七八九十百千]+"
_VALUE = re.compile(
    rf"(?:(?P<era>{'|'.join(ERAS)})|(?P<letter>[{''.join(ERA_LETTERS)}]))? ?"
    rf"(?P<y>{_NUM}|元)"
    rf"(?:(?P<fy> ?年度)|(?: ?年|[./-])(?: ?(?P<m>{_NUM}) ?(?:月|[./-])? ?"
    rf"(?:(?P<d>{_NUM}) ?日?)?)?)?"
)


class WarekiError(ValueError):
    pass


def _year(g: dict[str, str | None]) -> int:
    n = kanji_number(g["y"] or "")
    if n is None:
        raise WarekiError(g["y"])
    era = g["era"] or (ERA_LETTERS[g["letter"]] if g["letter"] else None)
    if era is None:
        if n < 1000:
            raise WarekiError("a Western year needs four digits")
        return n
    return ERAS[era] + n


def _parse(raw: str) -> tuple[int, int | None, int | None, bool]:
    """(year, month, day, is a 年度) of a value."""
    m = _VALUE.fullmatch(normalize(raw).strip())
    if m is None:
        raise WarekiError(raw)
    g = m.groupdict()
    year = _year(g)
    month = kanji_number(g["m"]) if g["m"] else None
    day = kanji_number(g["d"]) if g["d"] else None
    return year, month, day, bool(g["fy"])


def fiscal_year(raw: str) -> int:
    """The 年度 a value names: 2023, 令和5年度, R5, 令和5年 (a bare year is its 年度 too)."""
    year, month, _day, _fy = _parse(raw)
    if month is not None:
        raise WarekiError("a 年度 has no month")
    return year


def date_bound(raw: str, *, last: bool) -> date:
    """The first (or ``last``) day that a value covers."""
    year, month, day, fy = _parse(raw)
    try:
        if fy:
            return date(year + 1, 3, 31) if last else date(year, 4, 1)
        if month is None:
            return date(year, 12, 31) if last else date(year, 1, 1)
        if day is None:
            return date(year, month, calendar.monthrange(year, month)[1] if last else 1)
        return date(year, month, day)
    except ValueError as e:
        raise WarekiError(str(e)) from None


def era_year(year: int) -> str:
    """``令和8年`` for 2026, ``令和元年`` for 2019 (without the trailing 年: ``令和8``)."""
    for start, name in _ERA_START:
        if year >= start:
            n = year - start + 1
            return f"{name}{'元' if n == 1 else n}"
    return str(year)


def fiscal_year_label(year: int | None) -> str:
    """``令和8年度 (2026)``; empty for no year."""
    if not year:
        return ""
    return f"{era_year(year)}年度 ({year})"
