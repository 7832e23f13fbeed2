"""A whole year of days through the scheduler with an injected clock (no sleeping), on a
generated member base, with real Redis and the real launch path onto the Dramatiq queue.

Checked against independent sources: lunar birthdays with ``sxtwl`` (寿星天文历, an astronomical
computation in C++; the scheduler reads ``lunar-python``'s tables), holidays with the State
Council's notices for 2025 and 2026 written out below, dormancy from the raw transactions.
"""

from __future__ import annotations

import calendar
import datetime as dt
import itertools
from collections import Counter, defaultdict

import pandas as pd
import pytest
import redis
import sxtwl

from dispatcher.scheduler.starter import RecordingStarter
from segmentation.synthetic import GeneratedData
from tests.dispatcher.scheduler_support import (
    Copy,
    add,
    at,
    days,
    definition,
    member_base,
    scheduler_copy,
    taken,
)

# First days of the official breaks (国办发明电〔2024〕12号, 国办发明电〔2025〕7号) and the lunar
# festivals (元宵, 七夕, 重阳) of each year.
OFFICIAL_2025 = ["2025-01-01", "2025-01-28", "2025-04-04", "2025-05-01", "2025-05-31",
                 "2025-10-01"]
LUNAR_2025 = ["2025-02-12", "2025-08-29", "2025-10-29"]
OFFICIAL_2026 = ["2026-01-01", "2026-02-15", "2026-04-04", "2026-05-01", "2026-06-19",
                 "2026-09-25", "2026-10-01"]
LUNAR_2026 = ["2026-03-03", "2026-08-19", "2026-10-18"]
YEAR = days(dt.date(2025, 1, 1), dt.date(2025, 12, 31))


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> GeneratedData:
    return member_base(tmp_path_factory.mktemp("members"), members=2000)


def _solar(day: sxtwl.Day) -> dt.date:
    return dt.date(day.getSolarYear(), day.getSolarMonth(), day.getSolarDay())


def _celebration(year: int, month: int, day: int) -> dt.date:
    """The solar date of lunar (year, ordinary month, day); day 30 of a 29-day month -> 29."""
    first = _solar(sxtwl.fromLunar(year, month, 1, False))
    thirtieth = first + dt.timedelta(days=29)
    length = 30 if sxtwl.fromSolar(thirtieth.year, thirtieth.month,
                                   thirtieth.day).getLunarDay() == 30 else 29
    return first + dt.timedelta(days=min(day, length) - 1)


def expected_birthdays(members: pd.DataFrame) -> dict[str, set[dt.date]]:
    """Celebration dates in 2025 by an independent conversion (sxtwl's astronomical one)."""
    out: dict[str, set[dt.date]] = defaultdict(set)
    for row in members.itertuples():
        if row.birthday is None or pd.isna(row.birthday):
            continue
        born = pd.Timestamp(row.birthday).date()
        if not row.birthday_is_lunar:
            day = 28 if (born.month, born.day) == (2, 29) else born.day
            out[str(row.member_id)].add(dt.date(2025, born.month, day))
            continue
        lunar = sxtwl.fromSolar(born.year, born.month, born.day)
        for year in (2024, 2025):  # a leap-month birth is celebrated in the ordinary month
            when = _celebration(year, lunar.getLunarMonth(), lunar.getLunarDay())
            if when.year == 2025:
                out[str(row.member_id)].add(when)
    return out


def born_in_leap_month(members: pd.DataFrame) -> list[str]:
    """Lunar-birthday members born in a leap month (闰月)."""
    return [str(r.member_id) for r in members.itertuples()
            if r.birthday_is_lunar and r.birthday is not None
            and sxtwl.fromSolar(r.birthday.year, r.birthday.month, r.birthday.day).isLunarLeap()]


def run_year(redis_url: str, base: GeneratedData) -> Copy:
    copy = scheduler_copy(redis_url, starter=RecordingStarter())
    added = dt.date(2025, 1, 1)
    add(copy.store, definition("bday", {"type": "birthday"}, base, holdout_permille=50),
        added=added)
    add(copy.store, definition("wake", {"type": "wake_up", "inactive_days": 60,
                                        "cooldown_days": 90}, base), added=added)
    add(copy.store, definition("hol", {"type": "holiday", "days_before": 3}, base),
        added=added)
    add(copy.store, definition("mday", {"type": "member_day", "monthly": [8]}, base,
                               audience={"where": {"tier": ["gold", "platinum"]}}),
        added=added)
    for day in YEAR:
        report = copy.scheduler.tick(at(day))
        assert report.leader and not report.skipped
    return copy


def test_a_year_of_days(redis_url: str, redis_client: redis.Redis, base: GeneratedData) -> None:
    copy = run_year(redis_url, base)
    store = copy.store
    assert isinstance(copy.starter, RecordingStarter)
    members = pd.read_parquet(base.members)

    # Birthdays: every celebration of 2025 on its day, exactly once; lunar ones by lunar-python.
    runs = taken(store, "bday")
    got: dict[str, list[dt.date]] = defaultdict(list)
    for run_id, served in runs.items():
        day = dt.date.fromisoformat(run_id.removeprefix("bday-"))
        for member in served:
            got[member].append(day)
    expected = expected_birthdays(members)
    assert {m: sorted(d) for m, d in got.items()} == {m: sorted(d) for m, d in expected.items()}
    lunar_ids = set(members.member_id[members.birthday_is_lunar].astype(str))
    assert len(lunar_ids & set(got)) > 200
    born_leap = born_in_leap_month(members)
    assert born_leap and all(len(expected[m]) == len(got[m]) for m in born_leap)
    # 2025 has a leap sixth month: members born in the sixth month celebrate once, in the
    # ordinary one (2025-06-25 .. 07-24), none in the leap one (07-25 .. 08-22).
    leap_days = {d for d in YEAR if dt.date(2025, 7, 25) <= d <= dt.date(2025, 8, 22)}
    assert not any(set(got[m]) & leap_days for m in lunar_ids)

    # What was started: each run's campaign once, to exactly the members the run took.
    started = copy.starter.started
    assert len(copy.starter.starts) == len(set(copy.starter.starts))
    assert {r: sorted(m) for r, m in started.items() if r.startswith("bday-")} == {
        r: s for r, s in runs.items() if s}
    assert sum(int(store.run(r)["held_out"]) for r in started if r.startswith("bday-")) > 0

    # Wake-up: never within the 90-day cooldown, and only members 60 days without a purchase.
    tx = pd.read_parquet(base.transactions, columns=["member_id", "ts"])
    tx["day"] = tx.ts.dt.tz_convert("Asia/Shanghai").dt.date
    woken: dict[str, list[dt.date]] = defaultdict(list)
    for run_id, served in taken(store, "wake").items():
        day = dt.date.fromisoformat(run_id.removeprefix("wake-"))
        for member in served:
            woken[member].append(day)
    assert len(woken) > 500
    assert max(len(v) for v in woken.values()) >= 3  # some were woken again after cooldowns
    for member, when in woken.items():
        when.sort()
        assert all((b - a).days >= 90 for a, b in itertools.pairwise(when)), member
    sample = list(woken.items())[:200]
    by_member = tx.groupby(tx.member_id.astype(str)).day.apply(list).to_dict()
    registered = dict(zip(members.member_id.astype(str),
                          members.registered_at.dt.tz_convert("Asia/Shanghai").dt.date,
                          strict=True))
    for member, when in sample:
        for day in when:
            before = [d for d in by_member.get(member, []) if d <= day]
            since = max(before) if before else registered[member]
            assert (day - since).days >= 60

    # Holidays: three days before each official break and lunar festival of 2025.
    holiday_days = sorted(r.removeprefix("hol-") for r in store.run_ids("hol"))
    wanted = sorted({(dt.date.fromisoformat(d) - dt.timedelta(days=3)).isoformat()
                     for d in OFFICIAL_2025 + LUNAR_2025 + ["2026-01-01"]
                     if YEAR[0] <= dt.date.fromisoformat(d) - dt.timedelta(days=3) <= YEAR[-1]})
    assert holiday_days == wanted
    everyone = len(members)
    assert all(len(store.run_members(r)) == everyone for r in store.run_ids("hol"))

    # Member day: the 8th of every month, gold and platinum members only.
    assert [r.removeprefix("mday-") for r in store.run_ids("mday")] == [
        f"2025-{m:02d}-08" for m in range(1, 13)]
    gold = set(members.member_id[members.tier.isin(["gold", "platinum"])].astype(str))
    assert all(set(store.run_members(r)) == gold for r in store.run_ids("mday"))

    # Replaying days with a second copy, cursors forgotten, starts nothing and takes no one.
    copy.lease.release()
    redis_client.delete("{sched:demo}:cursor")
    again = scheduler_copy(redis_url, holder="b", starter=RecordingStarter())
    served_before = {r: sorted(store.run_members(r)) for r in store.run_ids()}
    for day in YEAR[:40]:
        again.scheduler.tick(at(day))
    assert {r: sorted(store.run_members(r)) for r in store.run_ids()} == served_before
    assert isinstance(again.starter, RecordingStarter) and not again.starter.starts


def test_holiday_runs_follow_the_official_2026_calendar(
    redis_url: str, redis_client: redis.Redis, base: GeneratedData
) -> None:
    copy = scheduler_copy(redis_url, starter=RecordingStarter())
    add(copy.store, definition("h26", {"type": "holiday", "days_before": 0,
                                       "occasions": ["spring_festival", "national_day",
                                                     "mid_autumn", "labour_day", "qingming",
                                                     "dragon_boat", "new_year", "lantern",
                                                     "qixi", "double_ninth"]}, base),
        added=dt.date(2026, 1, 1))
    for day in days(dt.date(2026, 1, 1), dt.date(2026, 12, 31)):
        copy.scheduler.tick(at(day))
    assert sorted(r.removeprefix("h26-") for r in copy.store.run_ids("h26")) == sorted(
        OFFICIAL_2026 + LUNAR_2026)
    # Mid-Autumn and National Day have separate breaks in 2026; Spring Festival's 调休 Saturdays.
    assert calendar.weekday(2026, 2, 14) == calendar.SATURDAY


def test_each_birthday_period_is_served_once(redis_url: str, redis_client: redis.Redis,
                                             base: GeneratedData) -> None:
    """Birthday 3 days ahead across a new year: periods by celebration year, no repeats."""
    copy = scheduler_copy(redis_url, starter=RecordingStarter())
    add(copy.store, definition("b3", {"type": "birthday", "days_before": 3}, base),
        added=dt.date(2025, 12, 1))
    for day in days(dt.date(2025, 12, 1), dt.date(2026, 1, 31)):
        copy.scheduler.tick(at(day))
    counts = Counter(m for served in taken(copy.store, "b3").values() for m in served)
    assert counts and max(counts.values()) == 1
