"""Shared pieces of the scheduler tests: a generated member base, definitions, and a scheduler
copy wired to the test Redis and the real Dramatiq broker (no workers unless a test starts one)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import redis

from analytics.stream import RedisStreamSink
from dispatcher.actors import register_actors
from dispatcher.broker import make_broker
from dispatcher.campaigns import CampaignStore
from dispatcher.definition import CHANNELS
from dispatcher.launch import LaunchDeps
from dispatcher.scheduler.audience import AudienceLoader
from dispatcher.scheduler.definitions import parse_definition
from dispatcher.scheduler.lease import Lease
from dispatcher.scheduler.runner import Scheduler
from dispatcher.scheduler.starter import CampaignStarter, LaunchStarter
from dispatcher.scheduler.store import ScheduleStore, StoredSchedule
from segmentation.synthetic import GeneratedData, generate

SHANGHAI = ZoneInfo("Asia/Shanghai")
MERCHANT = "demo"


def member_base(directory: Path, *, members: int, seed: int = 7) -> GeneratedData:
    """Members with birthdays (15 % lunar) and two years of purchases up to 2025-12-31."""
    return generate(members=members, out_dir=directory, seed=seed, end=dt.date(2025, 12, 31),
                    days=730)


def definition(schedule_id: str, trigger: dict[str, Any], data: GeneratedData,
               **extra: Any) -> dict[str, Any]:
    """A definition mapping over the generated files."""
    return {
        "id": schedule_id, "trigger": trigger,
        "audience": {"transactions": {"path": str(data.transactions)},
                     "members": {"path": str(data.members)}, **extra.pop("audience", {})},
        "coupon": {"title": "测试券", "threshold_fen": 5000, "discount_fen": 1000},
        "send_at": "10:00", "lateness": "6h", **extra,
    }


def add(store: ScheduleStore, source: dict[str, Any], *, added: dt.date) -> None:
    """Validate and store a definition as ``quanpai schedule add`` does."""
    parsed = parse_definition(source, base=Path("/"))
    store.put(StoredSchedule(parsed.id, parsed.source, False, added))


def at(day: dt.date, hour: int = 10, minute: int = 30) -> dt.datetime:
    """A Shanghai wall-clock moment."""
    return dt.datetime(day.year, day.month, day.day, hour, minute, tzinfo=SHANGHAI)


def days(first: dt.date, last: dt.date) -> list[dt.date]:
    """Every day from ``first`` to ``last``."""
    return [first + dt.timedelta(days=i) for i in range((last - first).days + 1)]


@dataclass
class Copy:
    """One scheduler copy and what it is made of."""

    scheduler: Scheduler
    store: ScheduleStore
    lease: Lease
    starter: CampaignStarter
    client: redis.Redis


def scheduler_copy(redis_url: str, *, holder: str = "a", ttl: float = 10.0,
                   actor: Any = None, starter: CampaignStarter | None = None,
                   batch_size: int = 500) -> Copy:
    """A scheduler copy with its own clients, as a separate process would have."""
    client = redis.Redis.from_url(redis_url)
    store = ScheduleStore(client=client, merchant_id=MERCHANT)
    lease = Lease(client=client, merchant_id=MERCHANT, holder=holder, ttl=ttl)
    if actor is None:
        actor = register_actors(make_broker(redis_url), processor=None)
    if starter is None:
        starter = LaunchStarter(deps=LaunchDeps(
            client=client, store=CampaignStore(client=client), actor=actor,
            events=RedisStreamSink(client=client, stream="quanpai:events"),
            merchant_id=MERCHANT, timezone=SHANGHAI, batch_size=batch_size, channels=CHANNELS))
    scheduler = Scheduler(store=store, lease=lease, starter=starter, loader=AudienceLoader())
    return Copy(scheduler, store, lease, starter, client)


def taken(store: ScheduleStore, schedule_id: str) -> dict[str, list[str]]:
    """Run id -> members the run took, for one definition."""
    return {run: sorted(store.run_members(run)) for run in store.run_ids(schedule_id)}
