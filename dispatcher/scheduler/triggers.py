"""Which members a trigger picks on one day, for the whole member base at once (numpy).

Each trigger returns groups: a served-record period and a mask of members. A member is served
at most once per (definition, period) — or, for wake-up, at most once per cooldown — and the
store enforces that across runs (``store.py``); here only the calendar is decided.

| trigger | fires on day D for | period |
|---|---|---|
| birthday | birthday celebrated on D + days_before | year of that day (lunar year if lunar) |
| first_purchase_anniversary | first purchase on that month and day, earlier year | that year |
| wake_up | no purchase for inactive_days (never bought: since registering) | cooldown |
| holiday | everyone, when an occasion starts on D + days_before | the occasion's first day |
| member_day | everyone, on the chosen weekdays or days of the month | D |

Dates: a 29 February birthday or anniversary falls on 28 February in common years; a monthly
member day past a month's end (the 31st in April) falls on its last day; lunar rules are in
``lunar.py``.
"""

from __future__ import annotations

import calendar
import datetime as dt
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import numpy.typing as npt

from dispatcher.scheduler.bgnbd import fit
from dispatcher.scheduler.definitions import Trigger
from dispatcher.scheduler.holidays import occasions_on
from segmentation.local_dates import day_number
from segmentation.lunar import lunar_birth_keys, lunar_of_day

Mask = npt.NDArray[np.bool_]
NO_DAY = np.iinfo(np.int64).min  # no such date (no birthday, never bought)


@dataclass(frozen=True)
class MemberDays:
    """The dates triggers need, one entry per member (day numbers; ``NO_DAY`` where unknown)."""

    member_id: npt.NDArray[np.str_]
    birth_day: npt.NDArray[np.int64]
    birth_lunar: Mask
    first_day: npt.NDArray[np.int64]  # first purchase
    last_day: npt.NDArray[np.int64]  # last purchase on or before the run's day
    repeat_days: npt.NDArray[np.int64]  # distinct purchase days - 1
    registered_day: npt.NDArray[np.int64]

    def __len__(self) -> int:
        return len(self.member_id)


@dataclass(frozen=True)
class Group:
    """Members due for one served-record period."""

    period: str
    mask: Mask


@dataclass(frozen=True)
class Due:
    """What a trigger picks on one day; ``cooldown_days`` > 0 replaces once-per-period."""

    groups: tuple[Group, ...]
    cooldown_days: int = 0
    occasions: tuple[str, ...] = ()

    def count(self) -> int:
        """Members picked over every group."""
        return int(sum(int(g.mask.sum()) for g in self.groups))


@lru_cache(maxsize=1)
def _month_day_table() -> tuple[int, npt.NDArray[np.int16]]:
    """month * 100 + day of every day of 1900-2100: a lookup is one numpy indexing."""
    start, end = day_number(dt.date(1900, 1, 1)), day_number(dt.date(2100, 12, 31))
    dates = np.arange(start, end + 1).astype("datetime64[D]")
    months = dates.astype("datetime64[M]")
    keys = ((months.astype(np.int64) % 12 + 1) * 100
            + (dates - months.astype("datetime64[D]")).astype(np.int64) + 1)
    return start, keys.astype(np.int16)


def _same_solar_day(days: npt.NDArray[np.int64], target: dt.date) -> Mask:
    start, keys = _month_day_table()
    offset = days - start
    inside = (days != NO_DAY) & (offset >= 0) & (offset < len(keys))
    key = keys[np.clip(offset, 0, len(keys) - 1)]
    hit = key == target.month * 100 + target.day
    if (target.month, target.day) == (2, 28) and not calendar.isleap(target.year):
        hit |= key == 229
    return np.asarray(hit & inside)


def birthday(members: MemberDays, day: dt.date, days_before: int) -> Due:
    """Members whose birthday (solar or lunar, per member) is celebrated ``days_before`` after
    ``day``; periods are the celebration's year (lunar year for lunar birthdays)."""
    target = day + dt.timedelta(days=days_before)
    known = members.birth_day != NO_DAY
    solar = _same_solar_day(members.birth_day, target) & ~members.birth_lunar
    groups = [Group(str(target.year), solar)]
    lunar_year, month, lunar_day, leap, month_days = lunar_of_day(target)
    lunar = np.zeros(len(members), bool)
    if not leap:  # nobody celebrates in a leap month
        b_month, b_day = lunar_birth_keys(np.where(known, members.birth_day, 0))
        lunar = (b_month == month) & (b_day == lunar_day)
        if lunar_day == 29 and month_days == 29:
            lunar |= (b_month == month) & (b_day == 30)
        lunar &= known & members.birth_lunar
    groups.append(Group(f"lunar-{lunar_year}", np.asarray(lunar)))
    return Due(tuple(groups))


def anniversary(members: MemberDays, day: dt.date, days_before: int) -> Due:
    """Members whose first purchase was on this month and day of an earlier year."""
    target = day + dt.timedelta(days=days_before)
    hit = _same_solar_day(members.first_day, target)
    hit &= members.first_day < day_number(dt.date(target.year, 1, 1))
    return Due((Group(str(target.year), hit),))


def wake_up(members: MemberDays, day: dt.date, trigger: Trigger) -> Due:
    """Members without a purchase for ``inactive_days`` (optionally only those the BG/NBD model
    gives less than ``max_p_alive`` of still being active)."""
    today = day_number(day)
    bought = members.last_day != NO_DAY
    since = np.where(bought, members.last_day, members.registered_day)
    dormant = (since != NO_DAY) & (today - since >= trigger.inactive_days)
    if trigger.max_p_alive is not None:
        # The model describes buyers; a member who never bought has no purchase rate to judge.
        x = members.repeat_days[bought].astype(np.float64)
        t_x = (members.last_day[bought] - members.first_day[bought]).astype(np.float64)
        big_t = (today - members.first_day[bought]).astype(np.float64)
        model = fit(x, t_x, big_t)
        alive = np.ones(len(members), np.float64)
        alive[bought] = model.p_alive(x, t_x, big_t)
        dormant &= bought & (alive < trigger.max_p_alive)
    return Due((Group("wake", np.asarray(dormant)),), cooldown_days=trigger.cooldown_days)


def member_day_due(day: dt.date, trigger: Trigger) -> bool:
    """Is ``day`` a member day?"""
    if trigger.weekdays:
        return day.weekday() in trigger.weekdays
    last = calendar.monthrange(day.year, day.month)[1]
    return any(min(d, last) == day.day for d in trigger.month_days)


def evaluate(trigger: Trigger, members: MemberDays, day: dt.date) -> Due:
    """The members ``trigger`` picks on ``day`` (empty groups when it does not fire)."""
    everyone = np.ones(len(members), bool)
    if trigger.type == "birthday":
        return birthday(members, day, trigger.days_before)
    if trigger.type == "first_purchase_anniversary":
        return anniversary(members, day, trigger.days_before)
    if trigger.type == "wake_up":
        return wake_up(members, day, trigger)
    if trigger.type == "holiday":
        target = day + dt.timedelta(days=trigger.days_before)
        found = occasions_on(target, trigger.occasions)
        if not found:
            return Due(())
        return Due((Group(target.isoformat(), everyone),), occasions=tuple(o.key for o in found))
    if member_day_due(day, trigger):
        return Due((Group(day.isoformat(), everyone),))
    return Due(())


def fires_on(trigger: Trigger, day: dt.date) -> bool:
    """Whether ``trigger`` can pick anyone on ``day`` at all (holidays, member days); member
    triggers (birthday, wake-up, anniversary) are looked at every day."""
    if trigger.type == "holiday":
        return bool(occasions_on(day + dt.timedelta(days=trigger.days_before), trigger.occasions))
    if trigger.type == "member_day":
        return member_day_due(day, trigger)
    return True
