"""Dates in the merchant's calendar: local purchase days of timestamps, and birthdays.

Local days: a purchase at 2024-03-01 23:30 in Shanghai is a purchase on March 1st even though it
is 15:30 UTC; RFM counts purchase days in the merchant's calendar. Day numbers count from
1970-01-01. When the zone keeps one UTC offset over the whole range (Asia/Shanghai since 1991)
the day is one integer division of the raw epoch value; otherwise pandas converts timestamp by
timestamp.

Birthdays, solar (公历) or lunar (农历): a member's ``birthday`` is the solar date of birth; with
``birthday_is_lunar`` the member celebrates the lunar anniversary of that date, which falls on a
different solar day every year. Conventions: a 29 February birthday is celebrated on 28 February
in common years; a lunar birthday on day 30 of a month that has only 29 days that year is
celebrated on day 29; a birth in a leap lunar month (闰月) is celebrated in the ordinary month of
the same number (the common practice, since most years have no such leap month). Lunar dates come
from the table in ``segmentation.lunar``, the one the scheduler's triggers read, so a segment and a
scheduled birthday send agree on the day; conversions run once per distinct date.
"""

from __future__ import annotations

import datetime as dt
from functools import lru_cache
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt
import pandas as pd

from segmentation.errors import InvalidInput
from segmentation.lunar import EPOCH, lunar_of_day, solar_of_lunar
from segmentation.lunar import day_number as day_number  # re-exported: callers import it here

DEFAULT_TZ = ZoneInfo("Asia/Shanghai")
_PER_SECOND = {"s": 1, "ms": 1_000, "us": 1_000_000, "ns": 1_000_000_000}


def day_date(number: int) -> dt.date:
    """The calendar date of a day number."""
    return EPOCH + dt.timedelta(days=int(number))


def _constant_offset(low_s: int, high_s: int, tz: ZoneInfo) -> int | None:
    """The zone's UTC offset in seconds if it is the same all through [low_s, high_s]."""
    # Zone transitions are months apart, so checking once a day catches any of them.
    points = range(low_s, high_s + 86_400, 86_400)
    offsets = {
        int(dt.datetime.fromtimestamp(min(p, high_s), tz).utcoffset().total_seconds())  # type: ignore[union-attr]
        for p in points
    }
    return offsets.pop() if len(offsets) == 1 else None


def epoch_to_days(
    values: npt.NDArray[np.int64], *, unit: str, tz: ZoneInfo
) -> npt.NDArray[np.int32]:
    """Local day numbers of UTC epoch values in ``unit`` (s, ms, us, ns)."""
    per_second = _PER_SECOND[unit]
    if len(values) == 0:
        return np.zeros(0, np.int32)
    low_s = int(values.min()) // per_second
    high_s = int(values.max()) // per_second
    offset = _constant_offset(low_s, high_s, tz)
    if offset is not None:
        per_day = 86_400 * per_second
        return ((values + offset * per_second) // per_day).astype(np.int32)
    local = pd.to_datetime(values, unit=unit, utc=True).tz_convert(tz).tz_localize(None)
    return _naive_days(np.asarray(local.values))


def _naive_days(values: npt.NDArray[np.datetime64]) -> npt.NDArray[np.int32]:
    return values.astype("datetime64[D]").astype(np.int64).astype(np.int32)


def _parse_times(series: pd.Series, field: str) -> pd.Series:
    """ISO 8601 first (fast); else any layout pandas reads (Excel's ``2026/11/23 10:00``);
    a value neither reads is named with its row (1 = the first data row, the line after a
    CSV header)."""
    try:
        return pd.to_datetime(series, format="ISO8601")
    except (ValueError, TypeError, OverflowError):
        pass
    try:
        parsed = pd.to_datetime(series, format="mixed", errors="coerce")
    except (ValueError, TypeError, OverflowError):
        parsed = pd.Series(pd.NaT, index=series.index)
    bad = parsed.isna().to_numpy().nonzero()[0]
    if len(bad) == 0:
        return parsed
    row = int(bad[0])
    raise InvalidInput(field, f"row {row + 1}: {series.iloc[row]!r} is not a date or timestamp "
                              f"({len(bad)} such rows; expected e.g. 2026-11-23 10:00:00)")


def series_to_days(
    series: pd.Series, *, tz: ZoneInfo = DEFAULT_TZ, field: str = "time"
) -> npt.NDArray[np.int32]:
    """Local day numbers of a column of timestamps, dates or date/time strings.

    Timezone-aware values are converted to ``tz``; naive values and plain dates are taken as
    already in the merchant's local time.
    """
    if series.isna().any():
        raise InvalidInput(field, f"has {int(series.isna().sum())} empty values")
    if not pd.api.types.is_datetime64_any_dtype(series.dtype):
        series = _parse_times(series, field)
    if isinstance(series.dtype, pd.DatetimeTZDtype):
        unit = series.dtype.unit
        raw = series.dt.tz_convert("UTC").dt.tz_localize(None).to_numpy().astype(np.int64)
        return epoch_to_days(raw, unit=unit, tz=tz)
    return _naive_days(series.to_numpy())


def _solar_anniversary(month: int, day: int, year: int) -> dt.date:
    if month == 2 and day == 29:
        try:
            return dt.date(year, 2, 29)
        except ValueError:
            return dt.date(year, 2, 28)
    return dt.date(year, month, day)


@lru_cache(maxsize=65_536)
def _lunar_of(birth: dt.date) -> tuple[int, int]:
    # A birth in a leap month (闰月) is celebrated in the ordinary month of the same number.
    _, month, day, _, _ = lunar_of_day(birth)
    return month, day


@lru_cache(maxsize=65_536)
def _lunar_anniversary(month: int, day: int, lunar_year: int) -> dt.date:
    # Day 30 in a year whose month has 29 days is celebrated on day 29 (solar_of_lunar).
    return solar_of_lunar(lunar_year, month, day)


def next_birthday(birth: dt.date, *, lunar: bool, today: dt.date) -> dt.date:
    """The first birthday celebration on or after ``today``."""
    if lunar:
        month, day = _lunar_of(birth)
        # A lunar year starts in January or February, so its dates span two solar years.
        candidates = [_lunar_anniversary(month, day, y) for y in (today.year - 1, today.year,
                                                                   today.year + 1)]
    else:
        candidates = [_solar_anniversary(birth.month, birth.day, y) for y in (today.year,
                                                                               today.year + 1)]
    return min(c for c in candidates if c >= today)


def days_until_birthday(
    birth_days: npt.NDArray[np.integer],
    is_lunar: npt.NDArray[np.bool_],
    *,
    today: dt.date,
) -> npt.NDArray[np.int64]:
    """Days from ``today`` to each member's next birthday (0 = today).

    ``birth_days`` are day numbers of the solar dates of birth (``day_number``).
    """
    out = np.zeros(len(birth_days), dtype=np.int64)
    today_number = day_number(today)
    for lunar in (False, True):
        chosen = np.flatnonzero(is_lunar == lunar)
        if not len(chosen):
            continue
        inverse, distinct = pd.factorize(np.asarray(birth_days)[chosen])
        until = np.array(
            [day_number(next_birthday(day_date(int(b)), lunar=lunar, today=today)) - today_number
             for b in distinct],
            dtype=np.int64,
        )
        out[chosen] = until[inverse]
    return out


def birthday_in_month(
    birth_days: npt.NDArray[np.integer],
    is_lunar: npt.NDArray[np.bool_],
    *,
    year: int,
    month: int,
) -> npt.NDArray[np.bool_]:
    """Whether each member's birthday celebration (solar or lunar, per member) falls in the
    solar ``month`` of ``year`` (the lunar one moves: 农历八月十五 is in September some years and
    in October others)."""
    first = dt.date(year, month, 1)
    out = np.zeros(len(birth_days), dtype=bool)
    for lunar in (False, True):
        chosen = np.flatnonzero(is_lunar == lunar)
        if not len(chosen):
            continue
        inverse, distinct = pd.factorize(np.asarray(birth_days)[chosen])
        nexts = [next_birthday(day_date(int(b)), lunar=lunar, today=first) for b in distinct]
        hit = np.array([(d.year, d.month) == (year, month) for d in nexts], dtype=bool)
        out[chosen] = hit[inverse]
    return out
