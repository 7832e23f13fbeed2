"""Birthdays, solar and lunar, checked against calendar facts: Spring Festival 2025-01-29,
2026-02-17 and 2027-02-06; Mid-Autumn (8/15) 2025-10-06 and 2026-09-25; lunar 2025 has no
12/30, so New Year's Eve 2026 is 2026-02-16 (腊月二十九)."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from segmentation.local_dates import day_number, days_until_birthday, next_birthday

SPRING_1990 = dt.date(1990, 1, 27)  # lunar 1990-01-01
EVE_1990 = dt.date(1990, 1, 26)  # lunar 1989-12-30
MID_AUTUMN_2000 = dt.date(2000, 9, 12)  # lunar 2000-08-15
MID_AUTUMN_1978 = dt.date(1978, 9, 17)  # lunar 1978-08-15 (a month start lunardate put a day off)


@pytest.mark.parametrize(
    ("birth", "today", "expected"),
    [
        (SPRING_1990, dt.date(2025, 1, 1), dt.date(2025, 1, 29)),
        (SPRING_1990, dt.date(2026, 2, 10), dt.date(2026, 2, 17)),
        (SPRING_1990, dt.date(2026, 2, 17), dt.date(2026, 2, 17)),
        (SPRING_1990, dt.date(2026, 2, 18), dt.date(2027, 2, 6)),
        (MID_AUTUMN_2000, dt.date(2025, 9, 1), dt.date(2025, 10, 6)),
        (MID_AUTUMN_2000, dt.date(2025, 10, 7), dt.date(2026, 9, 25)),
        (EVE_1990, dt.date(2026, 1, 1), dt.date(2026, 2, 16)),
        (MID_AUTUMN_1978, dt.date(2026, 9, 1), dt.date(2026, 9, 25)),
    ],
)
def test_lunar_birthdays(birth: dt.date, today: dt.date, expected: dt.date) -> None:
    assert next_birthday(birth, lunar=True, today=today) == expected


def test_solar_birthdays_and_29_february() -> None:
    assert next_birthday(dt.date(1990, 6, 1), lunar=False, today=dt.date(2026, 6, 1)) == dt.date(
        2026, 6, 1)
    assert next_birthday(dt.date(1990, 6, 1), lunar=False, today=dt.date(2026, 6, 2)) == dt.date(
        2027, 6, 1)
    leap = dt.date(1996, 2, 29)
    assert next_birthday(leap, lunar=False, today=dt.date(2026, 2, 1)) == dt.date(2026, 2, 28)
    assert next_birthday(leap, lunar=False, today=dt.date(2028, 2, 1)) == dt.date(2028, 2, 29)
    # Year end: 31 December seen from 1 January is 364 days away.
    assert next_birthday(dt.date(1980, 12, 31), lunar=False, today=dt.date(2026, 1, 1)) == \
        dt.date(2026, 12, 31)


def test_vectorised_days_until_mixes_solar_and_lunar() -> None:
    births = np.array([day_number(d) for d in (SPRING_1990, SPRING_1990, dt.date(1990, 2, 20),
                                                MID_AUTUMN_2000)])
    lunar = np.array([True, False, False, True])
    today = dt.date(2026, 2, 10)
    until = days_until_birthday(births, lunar, today=today)
    assert list(until) == [7, (dt.date(2027, 1, 27) - today).days, 10,
                           (dt.date(2026, 9, 25) - today).days]
