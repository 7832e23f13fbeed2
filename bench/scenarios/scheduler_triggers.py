"""One day's scheduler triggers over the whole member base (quick: 50k members; full: 1M).

What the scheduler computes every day for each definition, on a member base held in memory:
birthdays (solar and lunar, 15 % lunar), first-purchase anniversaries, wake-up (60 days without
a purchase), a holiday and a member day; the figure is all five for one day, the slowest of 3
days (target 2 s at 1M). Beside it: BG/NBD P(alive) for wake-up with a fitted model, the fit
itself (once per run, over every buyer), and the one-off lunar table build of a new process.
"""

from __future__ import annotations

import datetime as dt
import time
from typing import TYPE_CHECKING

import numpy as np

from bench.report import Result

if TYPE_CHECKING:
    from dispatcher.scheduler.triggers import MemberDays

SIZES = {"quick": 50_000, "full": 1_000_000}
NAME = "scheduler_triggers"
DAYS = (dt.date(2026, 1, 29), dt.date(2026, 2, 12), dt.date(2026, 10, 1))


def _members(n: int) -> MemberDays:
    from dispatcher.scheduler.triggers import NO_DAY, MemberDays
    from segmentation.local_dates import day_number

    rng = np.random.default_rng(3)
    birth = rng.integers(day_number(dt.date(1950, 1, 1)), day_number(dt.date(2006, 12, 31)), n)
    birth[rng.random(n) < 0.05] = NO_DAY  # birthday unknown
    first = rng.integers(day_number(dt.date(2022, 1, 1)), day_number(dt.date(2026, 1, 1)), n)
    bought = rng.random(n) < 0.85
    last = np.minimum(first + rng.integers(0, 900, n), day_number(dt.date(2026, 1, 28)))
    return MemberDays(
        member_id=np.char.add("m", np.arange(n).astype(str)),
        birth_day=birth.astype(np.int64), birth_lunar=rng.random(n) < 0.15,
        first_day=np.where(bought, first, NO_DAY).astype(np.int64),
        last_day=np.where(bought, last, NO_DAY).astype(np.int64),
        repeat_days=np.where(bought, rng.poisson(4, n), 0).astype(np.int64),
        registered_day=(first - rng.integers(0, 60, n)).astype(np.int64),
    )


def run(*, size: str) -> list[Result]:
    from dispatcher.scheduler.bgnbd import fit
    from dispatcher.scheduler.definitions import Trigger
    from dispatcher.scheduler.triggers import NO_DAY, evaluate
    from segmentation.local_dates import day_number
    from segmentation.lunar import lunar_table

    n = SIZES[size]
    started = time.perf_counter()
    lunar_table()
    table_s = time.perf_counter() - started
    members = _members(n)
    triggers = [
        Trigger("birthday", days_before=3),
        Trigger("first_purchase_anniversary"),
        Trigger("wake_up", inactive_days=60, cooldown_days=90),
        Trigger("holiday", days_before=3, occasions=frozenset({"spring_festival", "lantern",
                                                               "national_day"})),
        Trigger("member_day", month_days=frozenset({8})),
    ]
    slowest, picked = 0.0, 0
    for day in DAYS:
        started = time.perf_counter()
        picked = sum(evaluate(t, members, day).count() for t in triggers)
        slowest = max(slowest, time.perf_counter() - started)
    today = day_number(DAYS[0])
    bought = members.last_day != NO_DAY
    x = members.repeat_days[bought].astype(np.float64)
    t_x = (members.last_day[bought] - members.first_day[bought]).astype(np.float64)
    big_t = (today - members.first_day[bought]).astype(np.float64)
    started = time.perf_counter()
    model = fit(x, t_x, big_t)
    fit_s = time.perf_counter() - started
    started = time.perf_counter()
    model.p_alive(x, t_x, big_t)
    alive_s = time.perf_counter() - started
    return [
        Result(NAME, f"one day's triggers (birthday, anniversary, wake-up, holiday, member day) "
               f"over {n:,} members, slowest of 3 days", slowest, "s",
               target=2.0 if size == "full" else None),
        Result(NAME, "members picked that day (all five triggers)", picked, "members"),
        Result(NAME, f"BG/NBD P(alive) for {int(bought.sum()):,} buyers, fitted model",
               alive_s, "s"),
        Result(NAME, "BG/NBD fit over every buyer (once per wake-up run)", fit_s, "s"),
        Result(NAME, "lunar table of 1900-2098 (once per process)", table_s, "s"),
    ]
