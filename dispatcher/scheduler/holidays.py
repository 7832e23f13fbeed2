"""The Chinese holiday calendar: official public holidays with their 调休 working days, and the
lunar festivals that are not days off but sell (元宵 Lantern, 七夕 Qixi, 重阳 Double Ninth).

The official breaks come from the ``chinese-calendar`` package, which carries the State Council's
yearly notice (published each November for the next year) as data; a year it does not know yet
raises ``CalendarUnknown`` instead of guessing, so a holiday definition for it is reported as
skipped until the package is upgraded. Lunar festivals are computed (``lunar.solar_of_lunar``).

An occasion is what a holiday definition sends before: the first day of an official break (a
break may carry two festivals: in 2025 Mid-Autumn fell inside the National Day break, so both
names start on October 1st) or the day of a lunar festival.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import lru_cache

import chinese_calendar

from dispatcher.scheduler.errors import ScheduleError
from segmentation.lunar import solar_of_lunar

# key -> (Chinese name, the name chinese-calendar uses)
OFFICIAL = {
    "new_year": ("元旦", "New Year's Day"),
    "spring_festival": ("春节", "Spring Festival"),
    "qingming": ("清明节", "Tomb-sweeping Day"),
    "labour_day": ("劳动节", "Labour Day"),
    "dragon_boat": ("端午节", "Dragon Boat Festival"),
    "mid_autumn": ("中秋节", "Mid-autumn Festival"),
    "national_day": ("国庆节", "National Day"),
}
# key -> (Chinese name, lunar month, lunar day)
LUNAR = {
    "lantern": ("元宵节", 1, 15),
    "qixi": ("七夕", 7, 7),
    "double_ninth": ("重阳节", 9, 9),
}
OCCASIONS = (*OFFICIAL, *LUNAR)
_KEY_OF = {english: key for key, (_zh, english) in OFFICIAL.items()}


class CalendarUnknown(ScheduleError):
    """The official calendar of a year is not published in the installed data yet."""


@dataclass(frozen=True)
class Occasion:
    """One festival of one year: the day a definition counts back from, and its break."""

    key: str
    name_zh: str
    day: dt.date  # first day of the official break, or the lunar festival's day
    last_day: dt.date  # last day off (the festival day itself for lunar festivals)
    official: bool


@lru_cache(maxsize=1)
def known_years() -> frozenset[int]:
    """Years whose official calendar the installed data has."""
    return frozenset(day.year for day in chinese_calendar.holidays)


def _check_year(year: int) -> None:
    if year not in known_years():
        newest = max(known_years())
        raise CalendarUnknown(f"the official holiday calendar of {year} is not known (data up "
                              f"to {newest}; upgrade chinese-calendar once it is published)")


@lru_cache(maxsize=64)
def official_breaks(year: int) -> tuple[Occasion, ...]:
    """The official breaks of ``year``, one occasion per festival in each break."""
    _check_year(year)
    days = sorted(d for d in chinese_calendar.holidays if d.year == year)
    runs: list[list[dt.date]] = []
    for day in days:
        if runs and (day - runs[-1][-1]).days == 1:
            runs[-1].append(day)
        else:
            runs.append([day])
    out: list[Occasion] = []
    for run in runs:
        names = dict.fromkeys(_KEY_OF.get(str(chinese_calendar.holidays[d]), "") for d in run)
        for key in names:
            if key:  # one-off holidays (2015's Victory Day) have no recurring key
                out.append(Occasion(key, OFFICIAL[key][0], run[0], run[-1], True))
    return tuple(out)


@lru_cache(maxsize=64)
def adjusted_workdays(year: int) -> tuple[dt.date, ...]:
    """The 调休 weekend days that are working days in ``year``."""
    _check_year(year)
    return tuple(sorted(d for d in chinese_calendar.workdays if d.year == year))


def is_workday(day: dt.date) -> bool:
    """A working day officially (weekdays in a break are not; 调休 weekends are)."""
    _check_year(day.year)
    return bool(chinese_calendar.is_workday(day))


@lru_cache(maxsize=64)
def lunar_festivals(year: int) -> tuple[Occasion, ...]:
    """Lantern, Qixi and Double Ninth of the lunar year that starts in ``year``."""
    out = []
    for key, (name_zh, month, day) in LUNAR.items():
        solar = solar_of_lunar(year, month, day)
        out.append(Occasion(key, name_zh, solar, solar, False))
    return tuple(out)


def occasions(year: int, keys: frozenset[str] | None = None) -> tuple[Occasion, ...]:
    """Every occasion of ``year`` (or of the chosen keys), ordered by day.

    Lunar festivals need no published calendar; official ones raise ``CalendarUnknown`` for a
    year the data does not have yet.
    """
    wanted = frozenset(OCCASIONS) if keys is None else keys
    found: list[Occasion] = [o for o in lunar_festivals(year) if o.key in wanted]
    if wanted & set(OFFICIAL):
        found += [o for o in official_breaks(year) if o.key in wanted]
    return tuple(sorted(found, key=lambda o: (o.day, o.key)))


def occasions_on(day: dt.date, keys: frozenset[str] | None = None) -> tuple[Occasion, ...]:
    """The occasions whose day is ``day``."""
    return tuple(o for o in occasions(day.year, keys) if o.day == day)
