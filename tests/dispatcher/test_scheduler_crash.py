"""Scheduler copies that die in the middle of a run, and copies that start together, through the
real launch path (catalog templates, plan, Dramatiq queue on Redis) and, for the crash test, a
real worker sending to the SMS simulator: nothing is sent twice, each period runs once."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import threading
import time
from collections import Counter
from dataclasses import replace
from typing import Any

import pandas as pd
import pytest
import redis

from catalog.issuance import issue_batch
from dispatcher.actors import register_actors
from dispatcher.broker import make_broker
from dispatcher.campaigns import CampaignStore
from dispatcher.launch import wait_done
from dispatcher.scheduler.definitions import Definition
from dispatcher.scheduler.errors import Fenced
from dispatcher.scheduler.starter import CampaignStarter, Started
from dispatcher.worker import start_worker
from segmentation.synthetic import GeneratedData
from tests.dispatcher.conftest import Simulators, flow_settings
from tests.dispatcher.scheduler_support import (
    add,
    at,
    days,
    definition,
    member_base,
    scheduler_copy,
)
from tests.dispatcher.test_exactly_once import sms_recipients

EVERY_DAY = {"type": "member_day", "weekly": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]}


LEASE = 2.0  # seconds: short, so the tests wait little for a take-over


class Killed(BaseException):
    """Stands for SIGKILL: nothing after it runs, nothing catches it."""


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> GeneratedData:
    return member_base(tmp_path_factory.mktemp("crash"), members=300, seed=11)


class DiesWhen:
    """A starter that dies at one point: before the template, after the campaign launched."""

    def __init__(self, inner: CampaignStarter, point: str) -> None:
        self._inner = inner
        self._point = point

    def prepare(self, definition: Definition, *, snapshot: pd.DataFrame,
                now: dt.datetime) -> str:
        if self._point == "prepare":
            raise Killed
        return self._inner.prepare(definition, snapshot=snapshot, now=now)

    def start(self, definition: Definition, *, campaign_id: str, template_id: str,
              snapshot: pd.DataFrame, now: dt.datetime) -> Started:
        started = self._inner.start(definition, campaign_id=campaign_id,
                                    template_id=template_id, snapshot=snapshot, now=now)
        if self._point == "launched":
            raise Killed
        return started


class DiesAfterSends:
    """A Dramatiq actor handle that dies after ``n`` messages (mid-enqueue)."""

    def __init__(self, actor: Any, n: int) -> None:
        self._actor = actor
        self._left = n

    def send(self, *args: Any) -> Any:
        if self._left == 0:
            raise Killed
        self._left -= 1
        return self._actor.send(*args)


def take_over(redis_url: str, holder: str, day: dt.date) -> None:
    """A fresh copy waits for the dead one's lease to lapse, then finishes the day."""
    copy = scheduler_copy(redis_url, holder=holder, ttl=LEASE, batch_size=50)
    deadline = time.monotonic() + 30
    while True:
        assert time.monotonic() < deadline, "the standby never took over"
        try:
            if copy.scheduler.tick(at(day)).leader:
                break
        except Fenced:
            pass  # lost the lease half way (a very busy machine): try again
        time.sleep(0.1)
    copy.lease.release()


def test_killed_mid_run_and_restarted_sends_nothing_twice(
    redis_url: str, redis_client: redis.Redis, simulators: Simulators, base: GeneratedData,
) -> None:
    first_day = dt.date(2026, 3, 2)
    setup = scheduler_copy(redis_url, holder="setup")
    add(setup.store, definition("daily", EVERY_DAY, base, channels=["sms"],
                                audience={"where": {"reachable": ["sms"]}}),
        added=first_day)
    broker_actor = register_actors(make_broker(redis_url), processor=None)
    points = ["prepare", "enqueue", "launched"]
    for offset, point in enumerate(points):
        day = first_day + dt.timedelta(days=offset)
        if point == "enqueue":
            dying = scheduler_copy(redis_url, holder=f"dies-{point}", ttl=LEASE, batch_size=50,
                                   actor=DiesAfterSends(broker_actor, 2))
        else:
            plain = scheduler_copy(redis_url, holder=f"dies-{point}", ttl=LEASE, batch_size=50)
            dying = scheduler_copy(redis_url, holder=f"dies-{point}", ttl=LEASE,
                                   starter=DiesWhen(plain.starter, point))
        with pytest.raises(Killed):
            dying.scheduler.tick(at(day))
        take_over(redis_url, f"after-{point}", day)

    run_ids = [f"daily-{first_day + dt.timedelta(days=i)}" for i in range(len(points))]
    assert setup.store.run_ids("daily") == run_ids
    campaigns = CampaignStore(client=redis_client)
    reachable = pd.read_parquet(base.members).query("consent_sms and phone.notna()")
    for run_id in run_ids:
        assert setup.store.run(run_id)["status"] == "launched"
        assert setup.store.run_members(run_id) == set(reachable.member_id.astype(str))
    settings = replace(flow_settings(redis_url, simulators), batch_size=500)
    worker = start_worker(settings, threads=4)
    try:
        for run_id in run_ids:
            assert wait_done(store=campaigns, campaign=campaigns.get(run_id), timeout=120)
    finally:
        worker.stop()
    # Every member of every run got exactly one SMS and one coupon.
    assert sms_recipients(simulators) == len(run_ids) * len(reachable)
    for run_id in run_ids:
        campaign = campaigns.get(run_id)
        again = issue_batch(redis_client, merchant_id=campaign.merchant_id,
                            campaign_id=run_id, template_id=campaign.template_id,
                            member_ids=reachable.member_id.astype(str).tolist(),
                            now=dt.datetime.now(dt.UTC), secret=settings.secret_key.encode())
        assert {c.status for c in again} == {"existing"}


class Counting:
    """Counts every campaign start across the copies that share it."""

    def __init__(self, inner: CampaignStarter, starts: list[str], lock: threading.Lock) -> None:
        self._inner = inner
        self._starts = starts
        self._lock = lock

    def prepare(self, definition: Definition, *, snapshot: pd.DataFrame,
                now: dt.datetime) -> str:
        return self._inner.prepare(definition, snapshot=snapshot, now=now)

    def start(self, definition: Definition, *, campaign_id: str, template_id: str,
              snapshot: pd.DataFrame, now: dt.datetime) -> Started:
        with self._lock:
            self._starts.append(campaign_id)
        return self._inner.start(definition, campaign_id=campaign_id,
                                 template_id=template_id, snapshot=snapshot, now=now)


def test_two_schedulers_started_together_run_each_period_once(
    redis_url: str, redis_client: redis.Redis, base: GeneratedData,
) -> None:
    first_day = dt.date(2026, 5, 1)
    span = days(first_day, first_day + dt.timedelta(days=9))
    starts: list[str] = []
    lock = threading.Lock()
    copies = []
    for holder in ("a", "b"):
        plain = scheduler_copy(redis_url, holder=holder, ttl=LEASE)
        copies.append(scheduler_copy(redis_url, holder=holder, ttl=LEASE,
                                     starter=Counting(plain.starter, starts, lock)))
    # A day on which neither led (the hand-over) is caught up the next day, within 2 days.
    add(copies[0].store, definition("daily", EVERY_DAY, base, lateness="2d"), added=first_day)
    add(copies[0].store, definition("bday", {"type": "birthday"}, base, lateness="2d"),
        added=first_day)
    barrier = threading.Barrier(2)
    leaders: Counter[str] = Counter()
    errors: list[BaseException] = []

    def drive(index: int) -> None:
        copy = copies[index]
        stalled = False
        try:
            for day in span:
                barrier.wait(timeout=60)
                if stalled:
                    time.sleep(1.0)  # back from the stall, the other copy asks first
                    stalled = False
                led = False
                with contextlib.suppress(Fenced):  # lost the lease half way: stands by
                    led = copy.scheduler.tick(at(day)).leader
                if led:
                    leaders[copy.lease.holder] += 1
                    if day == span[4]:
                        time.sleep(LEASE + 0.5)  # the leader stalls past its lease
                        stalled = True
        except BaseException as exc:
            errors.append(exc)
            barrier.abort()

    threads = [threading.Thread(target=drive, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert not errors, errors
    assert len(leaders) == 2  # both led at some point
    assert len(starts) == len(set(starts))  # no campaign started twice
    store = copies[0].store
    assert [r for r in store.run_ids("daily")] == [f"daily-{d}" for d in span]
    # What is on the queue: each campaign's batches exactly once.
    campaigns = CampaignStore(client=redis_client)
    queued: Counter[tuple[str, int]] = Counter()
    for raw in redis_client.hvals("quanpai-dq:campaigns.msgs"):
        message = json.loads(raw)
        queued[(message["args"][0], message["args"][1])] += 1
    assert queued and max(queued.values()) == 1
    for run_id in set(starts):
        assert sum(1 for c, _b in queued if c == run_id) == campaigns.get(run_id).total_batches
    served = Counter(m for r in store.run_ids("bday") for m in store.run_members(r))
    assert served and max(served.values()) == 1
