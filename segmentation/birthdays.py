"""Days until each member's next birthday, solar (公历) or lunar (农历), from a given day.

A member's ``birthday`` is the solar date of birth; with ``birthday_is_lunar`` the member
celebrates the lunar anniversary of that date, which falls on a different solar day every year.
Conventions: a 29 February birthday is celebrated on 28 February in common years; a lunar
birthday on day 30 of a month that has only 29 days that year is celebrated on day 29; a birth
in a leap lunar month (闰月) is celebrated in the ordinary month of the same number (the common
practice, since most years have no such leap month).

Conversions run once per distinct date (at most a few tens of thousands for a million members),
never once per member, because ``lunardate`` is pure Python.
"""

from __future__ import annotations

import datetime as dt
from functools import lru_cache

import numpy as np
import numpy.typing as npt
from lunardate import LunarDate

from segmentation.calendar_days import day_date, day_number


def _solar_anniversary(month: int, day: int, year: int) -> dt.date:
    if month == 2 and day == 29:
        try:
            return dt.date(year, 2, 29)
        except ValueError:
            return dt.date(year, 2, 28)
    return dt.date(year, month, day)


@lru_cache(maxsize=65_536)
def _lunar_of(birth: dt.date) -> tuple[int, int]:
    lunar = LunarDate.from_solar_date(birth.year, birth.month, birth.day)
    return lunar.month, lunar.day


@lru_cache(maxsize=65_536)
def _lunar_anniversary(month: int, day: int, lunar_year: int) -> dt.date:
    # Day 30 of a short month: lunardate either refuses it or rolls into the next month, so
    # check by converting back.
    if day == 30:
        try:
            solar: dt.date = LunarDate(lunar_year, month, 30).to_solar_date()
            back = LunarDate.from_solar_date(solar.year, solar.month, solar.day)
            if (back.month, back.day, back.isLeapMonth) == (month, 30, False):
                return solar
        except ValueError:
            pass
        day = 29
    return LunarDate(lunar_year, month, day).to_solar_date()  # type: ignore[no-any-return]


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

    ``birth_days`` are day numbers of the solar dates of birth (``calendar_days.day_number``).
    """
    out = np.zeros(len(birth_days), dtype=np.int64)
    today_number = day_number(today)
    for lunar in (False, True):
        chosen = np.flatnonzero(is_lunar == lunar)
        if not len(chosen):
            continue
        distinct, inverse = np.unique(np.asarray(birth_days)[chosen], return_inverse=True)
        until = np.array(
            [day_number(next_birthday(day_date(int(b)), lunar=lunar, today=today)) - today_number
             for b in distinct],
            dtype=np.int64,
        )
        out[chosen] = until[inverse]
    return out
