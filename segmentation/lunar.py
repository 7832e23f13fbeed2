"""Lunar (农历) dates of whole arrays of solar days, by table lookup.

A day's triggers over a million members need the lunar month and day of every member's birth
date and the lunar date of the target day; converting date by date in Python costs tens of
microseconds each. So a table of every solar day of lunar years 1900-2098 is built once per
process from the months of ``lunar-python`` (about 2,500 months, a second on a busy machine),
and every lookup after that is numpy indexing.

Why ``lunar-python`` and not ``lunardate``: ``lunardate``'s table puts some month starts a day
off — 1978's eighth month begins on September 3rd (it says the 2nd; the Mid-Autumn Festival of
1978 was September 17th), likewise months of 1933 and 1954 — so members born on those days would
celebrate a day late. ``lunar-python`` agrees with ``sxtwl``'s astronomical computation on every
birth year the tests check.

Segment conditions (``segmentation.local_dates``) and the scheduler's triggers both read this
table, so a member's lunar birthday falls on the same day for both. Birthday rules: a birth in a
leap month (闰月) is celebrated in the ordinary month of the same number; a birth on day 30 is
celebrated on day 29 in years whose month has 29 days; nobody celebrates in a leap month.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import numpy.typing as npt
from lunar_python import LunarYear, Solar

FIRST_YEAR, LAST_YEAR = 1900, 2098
EPOCH = dt.date(1970, 1, 1)


def day_number(day: dt.date) -> int:
    """Days since 1970-01-01 of a calendar date (``local_dates`` offers it too)."""
    return (day - EPOCH).days


@dataclass(frozen=True)
class LunarTable:
    """Per solar day from ``start`` (a day number): lunar year, month, day, leap flag and the
    number of days of that lunar month."""

    start: int
    year: npt.NDArray[np.int16]
    month: npt.NDArray[np.int8]
    day: npt.NDArray[np.int8]
    leap: npt.NDArray[np.bool_]
    month_days: npt.NDArray[np.int8]

    def covers(self, days: npt.NDArray[np.integer]) -> npt.NDArray[np.bool_]:
        """True where a day number lies inside the table."""
        offset = np.asarray(days, dtype=np.int64) - self.start
        return np.asarray((offset >= 0) & (offset < len(self.year)))

    def index(self, days: npt.NDArray[np.integer]) -> npt.NDArray[np.int64]:
        """Table rows of day numbers (clipped: check ``covers`` first)."""
        offset = np.asarray(days, dtype=np.int64) - self.start
        return np.clip(offset, 0, len(self.year) - 1)


@lru_cache(maxsize=1)
def lunar_table() -> LunarTable:
    """The table for lunar years 1900-2098 (built on first use)."""
    months = []  # (first solar day number, lunar year, month, leap, days)
    for year in range(FIRST_YEAR, LAST_YEAR + 1):
        for month in LunarYear.fromYear(year).getMonthsInYear():
            first = Solar.fromJulianDay(month.getFirstJulianDay())
            number = day_number(dt.date(first.getYear(), first.getMonth(), first.getDay()))
            months.append((number, year, abs(month.getMonth()), month.getMonth() < 0,
                           month.getDayCount()))
    start = months[0][0]
    size = months[-1][0] + months[-1][4] - start
    year_a = np.zeros(size, np.int16)
    month_a = np.zeros(size, np.int8)
    day_a = np.zeros(size, np.int8)
    leap_a = np.zeros(size, bool)
    length_a = np.zeros(size, np.int8)
    for begin, year, month, leap, length in months:
        lo = begin - start
        year_a[lo:lo + length] = year
        month_a[lo:lo + length] = month
        day_a[lo:lo + length] = np.arange(1, length + 1)
        leap_a[lo:lo + length] = leap
        length_a[lo:lo + length] = length
    return LunarTable(start, year_a, month_a, day_a, leap_a, length_a)


def lunar_of_day(day: dt.date) -> tuple[int, int, int, bool, int]:
    """(lunar year, month, day, leap, days in that month) of one solar date."""
    table = lunar_table()
    number = np.array([day_number(day)])
    if not table.covers(number)[0]:
        raise ValueError(f"{day} is outside the lunar table ({FIRST_YEAR}-{LAST_YEAR})")
    i = int(table.index(number)[0])
    return (int(table.year[i]), int(table.month[i]), int(table.day[i]), bool(table.leap[i]),
            int(table.month_days[i]))


def lunar_birth_keys(
    birth_days: npt.NDArray[np.integer],
) -> tuple[npt.NDArray[np.int8], npt.NDArray[np.int8]]:
    """Lunar month and day of each birth date (leap months folded into the ordinary month);
    month 0 where the date is outside the table, so it never matches."""
    table = lunar_table()
    days = np.asarray(birth_days, dtype=np.int64)
    inside = table.covers(days)
    rows = table.index(days)
    month = np.where(inside, table.month[rows], 0).astype(np.int8)
    day = np.where(inside, table.day[rows], 0).astype(np.int8)
    return month, day


def solar_of_lunar(year: int, month: int, day: int) -> dt.date:
    """The solar date of an ordinary-month lunar date (day 30 of a 29-day month -> day 29)."""
    table = lunar_table()
    hits = np.flatnonzero((table.year == year) & (table.month == month) & ~table.leap)
    if not len(hits):
        raise ValueError(f"lunar {year}-{month} is outside the table")
    first = int(hits[0])
    days = int(table.month_days[first])
    return dt.date(1970, 1, 1) + dt.timedelta(days=table.start + first + min(day, days) - 1)
