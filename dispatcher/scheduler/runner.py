"""The scheduler's work: each tick, every active definition's due days, once each.

A day D of a definition is due at D's send time in the definition's timezone. A tick deals with
every day after the definition's cursor up to now: a day missed by more than ``lateness`` is
skipped and recorded (catch-up after downtime reports it), a due day whose trigger fires becomes
a run, and the cursor moves past it. The clock is injected: tests drive a year of days with no
sleeping.

A run (id ``<definition>-<day>``, the campaign id too):
1. evaluate the audience as of D and the trigger's groups (``triggers.py``);
2. check the campaign and create its coupon template once, keeping its id in the run record
   (a campaign refused here serves nobody and is reported as skipped);
3. take the members through the served records (``store.take``: once per period or cooldown,
   atomic, fenced), which also freezes the run's member set;
4. launch the campaign to the run's members; the record says ``launched``.
Killed anywhere in between, the next holder redoes the run from its record: step 2 reuses the
template, step 3 keeps the members the run had already taken, step 4 plans the same batches.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from dispatcher.errors import CampaignError
from dispatcher.scheduler.audience import AudienceLoader
from dispatcher.scheduler.definitions import Definition, parse_definition
from dispatcher.scheduler.errors import Fenced, RunSkipped, ScheduleError
from dispatcher.scheduler.lease import Lease
from dispatcher.scheduler.starter import CampaignStarter
from dispatcher.scheduler.store import ScheduleStore, StoredSchedule
from dispatcher.scheduler.triggers import evaluate, fires_on
from segmentation.errors import SegmentationError
from segmentation.local_dates import day_number

Clock = Callable[[], dt.datetime]
# What a campaign's plan reads of a member (addresses, consent, the name for greetings).
SNAPSHOT_COLUMNS = ("member_id", "name", "phone", "consent_sms", "wechat_openid",
                    "wechat_subscribed", "consent_wechat", "alipay_user_id", "consent_alipay")


@dataclass
class TickReport:
    """What one tick did."""

    leader: bool
    runs: list[str] = field(default_factory=list)  # run ids launched (or found empty)
    skipped: list[tuple[str, dt.date, str]] = field(default_factory=list)


def due_at(definition: Definition, day: dt.date) -> dt.datetime:
    """When the run of ``day`` is due (aware, the definition's timezone)."""
    return dt.datetime.combine(day, definition.send_at, tzinfo=definition.timezone)


def definition_of(stored: StoredSchedule) -> Definition:
    """Parse a stored definition (its paths are already absolute)."""
    return parse_definition(stored.source, base=Path("/"),
                            default_timezone=str(stored.source.get("timezone")))


class Scheduler:
    """One scheduler copy: runs due work while it holds the lease."""

    def __init__(self, *, store: ScheduleStore, lease: Lease, starter: CampaignStarter,
                 loader: AudienceLoader, log: Callable[[str], None] = lambda _line: None
                 ) -> None:
        self._store = store
        self._lease = lease
        self._starter = starter
        self._loader = loader
        self._log = log
        self._parsed: dict[str, tuple[str, Definition]] = {}

    def _definition(self, stored: StoredSchedule) -> Definition:
        text = json.dumps(stored.source, sort_keys=True, default=str)
        cached = self._parsed.get(stored.id)
        if cached is None or cached[0] != text:
            cached = (text, definition_of(stored))
            self._parsed[stored.id] = cached
        return cached[1]

    def tick(self, now: dt.datetime) -> TickReport:
        """Do every due run of every active definition, if this copy holds the lease."""
        token = self._lease.acquire()
        if token is None:
            return TickReport(leader=False)
        report = TickReport(leader=True)
        with self._renewing():
            cursors = self._store.cursors()
            for stored in self._store.all():
                if stored.paused:
                    continue
                try:
                    definition = self._definition(stored)
                except ScheduleError as exc:
                    self._log(f"{stored.id}: {exc}")
                    continue
                self._catch_up(definition, stored, cursors.get(stored.id), now, report)
        return report

    @contextlib.contextmanager
    def _renewing(self) -> Iterator[None]:
        """Renew the lease from a thread every third of its life while a tick works, so a long
        run (a million members to plan and enqueue) does not lose it half way; a copy that is
        stalled as a whole (a frozen VM) stops renewing too, and fencing refuses its writes."""
        done = threading.Event()

        def renew() -> None:
            while not done.wait(self._lease.ttl / 3):
                self._lease.acquire()

        renewer = threading.Thread(target=renew, name="lease-renewal", daemon=True)
        renewer.start()
        try:
            yield
        finally:
            done.set()
            renewer.join()

    def _token(self) -> int:
        token = self._lease.token  # kept fresh by the renewal thread of the tick
        if token is None:
            raise Fenced("the scheduler lease moved to another copy; standing by")
        return token

    def _catch_up(self, definition: Definition, stored: StoredSchedule,
                  cursor: dt.date | None, now: dt.datetime, report: TickReport) -> None:
        local_now = now.astimezone(definition.timezone)
        first = definition.start or stored.added
        day = max(first, cursor + dt.timedelta(days=1)) if cursor else first
        dealt: dt.date | None = None  # the last day dealt with, not yet recorded as the cursor
        while day <= local_now.date():
            when = due_at(definition, day)
            if when > local_now:
                break
            token = self._token()
            late = local_now - when
            dealt = day
            try:
                if not fires_on(definition.trigger, day):
                    day += dt.timedelta(days=1)
                    continue  # nothing to record: the cursor moves with the next run or below
                if late > definition.lateness:
                    raise RunSkipped(f"missed by {late}, more than the lateness limit "
                                     f"{definition.lateness}")
                else:
                    report.runs.append(self.run(definition, day, now=now, token=token))
            except Fenced:
                raise
            except (ScheduleError, SegmentationError, CampaignError) as exc:
                self._store.record_skip(definition.id, day, str(exc))
                report.skipped.append((definition.id, day, str(exc)))
                self._log(f"{definition.id} {day}: skipped, {exc}")
            day += dt.timedelta(days=1)
        # Recorded once per tick: a copy killed before this walks those days again, and their
        # runs, recorded as launched, are not made twice.
        if dealt is not None:
            self._store.set_cursor(self._token(), definition.id, dealt)

    def run(self, definition: Definition, day: dt.date, *, now: dt.datetime,
            token: int) -> str:
        """Make (or finish) the run of ``definition`` for ``day``; returns the run id."""
        run_id = f"{definition.id}-{day.isoformat()}"
        record = self._store.run(run_id)
        if record.get("status") in ("launched", "empty"):
            return run_id
        audience = self._loader.load(definition, day)
        due = evaluate(definition.trigger, audience.members, day)
        frame = audience.frame
        columns = [c for c in SNAPSHOT_COLUMNS if c in frame.columns]
        template_id = record.get("template_id", "")
        if record.get("status") != "taken":
            chosen = [audience.members.member_id[g.mask & audience.selected] for g in due.groups]
            candidates = np.concatenate(chosen) if chosen else np.array([], dtype=str)
            if not template_id and len(candidates):
                # The campaign is checked (content, channels, coupon) and its template made
                # before anyone is taken: a run refused here serves nobody, and is reported.
                template_id = self._starter.prepare(
                    definition, snapshot=frame.loc[frame["member_id"].isin(candidates), columns],
                    now=now)
                self._store.update_run(token, run_id, template_id=template_id)
            # A run killed half way through taking finds its members again: each served
            # record names the run that took it.
            for group, members_of_group in zip(due.groups, chosen, strict=True):
                self._store.take(token, schedule_id=definition.id, period=group.period,
                                 run_id=run_id, day_number=day_number(day),
                                 cooldown_days=due.cooldown_days,
                                 members=members_of_group.tolist())
            self._store.update_run(token, run_id, status="taken", day=day.isoformat())
        members = self._store.run_members(run_id)
        if not members:
            self._store.update_run(token, run_id, status="empty", members="0")
            return run_id
        snapshot = frame.loc[frame["member_id"].isin(members), columns]
        if not template_id:  # taken by an earlier version of this run without a template
            template_id = self._starter.prepare(definition, snapshot=snapshot, now=now)
            self._store.update_run(token, run_id, template_id=template_id)
        started = self._starter.start(definition, campaign_id=run_id, template_id=template_id,
                                      snapshot=snapshot, now=now)
        self._store.update_run(
            token, run_id, status="launched", campaign_id=started.campaign_id,
            members=str(len(snapshot)), treated=str(started.treated),
            held_out=str(started.held_out), occasions=",".join(due.occasions),
        )
        self._log(f"{run_id}: {started.treated} members, {started.held_out} held out")
        return run_id

    def serve(self, clock: Clock, *, interval: float, stop: Callable[[], bool],
              sleep: Callable[[float], object]) -> None:
        """Tick until ``stop()``; a copy that loses the lease stands by and tries again. The
        ``interval`` must be shorter than the lease: between ticks nothing renews it."""
        try:
            self._serve(clock, interval=interval, stop=stop, sleep=sleep)
        finally:
            self._lease.release()

    def _serve(self, clock: Clock, *, interval: float, stop: Callable[[], bool],
               sleep: Callable[[float], object]) -> None:
        leader = False
        while not stop():
            try:
                report = self.tick(clock())
            except Fenced:
                report = TickReport(leader=False)
            if report.leader != leader:
                leader = report.leader
                self._log("holding the lease: running due work" if leader
                          else "another scheduler holds the lease: standing by")
            sleep(interval)
