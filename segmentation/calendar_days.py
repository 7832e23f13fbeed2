"""Local calendar days (the merchant's timezone decides "today") of timestamps, as int32 numbers.

A purchase at 2024-03-01 23:30 in Shanghai is a purchase on March 1st even though it is 15:30
UTC; RFM counts purchase days in the merchant's calendar. Day numbers count from 1970-01-01.
When the zone keeps one UTC offset over the whole range (Asia/Shanghai since 1991) the day is
one integer division of the raw epoch value; otherwise pandas converts timestamp by timestamp.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt
import pandas as pd

from segmentation.errors import InvalidInput

EPOCH = dt.date(1970, 1, 1)
DEFAULT_TZ = ZoneInfo("Asia/Shanghai")
_PER_SECOND = {"s": 1, "ms": 1_000, "us": 1_000_000, "ns": 1_000_000_000}


def day_number(day: dt.date) -> int:
    """Days since 1970-01-01 of a calendar date."""
    return (day - EPOCH).days


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
        try:
            series = pd.to_datetime(series, format="ISO8601")
        except (ValueError, TypeError) as exc:
            raise InvalidInput(field, f"is not a date or timestamp column ({exc})") from None
    if isinstance(series.dtype, pd.DatetimeTZDtype):
        unit = series.dtype.unit
        raw = series.dt.tz_convert("UTC").dt.tz_localize(None).to_numpy().astype(np.int64)
        return epoch_to_days(raw, unit=unit, tz=tz)
    return _naive_days(series.to_numpy())
