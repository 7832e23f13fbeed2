"""Looking ahead without sending: who a definition would reach on a day, and its next runs."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np

from dispatcher.scheduler.audience import AudienceLoader
from dispatcher.scheduler.definitions import Definition
from dispatcher.scheduler.holidays import CalendarUnknown
from dispatcher.scheduler.store import ScheduleStore, StoredSchedule
from dispatcher.scheduler.triggers import evaluate, fires_on
from segmentation.local_dates import day_number


@dataclass(frozen=True)
class Preview:
    """A day's run of a definition, counted by reason; ``members`` are those it would reach."""

    day: dt.date
    in_data: int
    triggered: int
    filtered_out: int  # triggered but not in the audience condition
    already_served: int  # served this period or within the cooldown by another run
    would_send: int
    occasions: tuple[str, ...]
    members: list[str]


def preview(definition: Definition, day: dt.date, *, store: ScheduleStore,
            loader: AudienceLoader) -> Preview:
    """Who a run of ``definition`` on ``day`` would reach (reads only)."""
    audience = loader.load(definition, day)
    due = evaluate(definition.trigger, audience.members, day)
    run_id = f"{definition.id}-{day.isoformat()}"
    triggered = filtered = served = 0
    chosen: list[str] = []
    for group in due.groups:
        triggered += int(group.mask.sum())
        filtered += int((group.mask & ~audience.selected).sum())
        candidates = audience.members.member_id[group.mask & audience.selected].tolist()
        seen = store.served_already(schedule_id=definition.id, period=group.period,
                                    run_id=run_id, day_number=day_number(day),
                                    cooldown_days=due.cooldown_days, members=candidates)
        served += int(np.sum(seen))
        chosen += [m for m, s in zip(candidates, seen, strict=True) if not s]
    return Preview(day, len(audience.members), triggered, filtered, served, len(chosen),
                   due.occasions, chosen)


def next_runs(definition: Definition, stored: StoredSchedule, *, cursor: dt.date | None,
              now: dt.datetime, count: int = 3, horizon_days: int = 400) -> list[dt.datetime]:
    """The next ``count`` times this definition will run (within ``horizon_days``)."""
    local = now.astimezone(definition.timezone)
    first = definition.start or stored.added
    day = max(first, local.date() if cursor is None else cursor + dt.timedelta(days=1))
    found: list[dt.datetime] = []
    for _ in range(horizon_days):
        when = dt.datetime.combine(day, definition.send_at, tzinfo=definition.timezone)
        try:
            fires = fires_on(definition.trigger, day)
        except CalendarUnknown:
            break  # next year's official calendar is not published yet
        if when + definition.lateness >= local and fires:
            found.append(when)
            if len(found) == count:
                break
        day += dt.timedelta(days=1)
    return found
