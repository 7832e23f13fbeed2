"""The naive way to run a campaign, kept in the benchmarks to compare the engine against.

One Dramatiq message per member, and for each: one catalog issuance call, one provider request
with that member alone, its events, and a counter the launcher watches. It uses the project's
own catalog, channel clients, events and broker, only without batches (so WeChat goes out as one
template message per member, since a card mass send needs at least two openids), without the
send ledger and without fallback between channels. It is not a way to run campaigns: it has none
of the engine's crash guarantees.

    python -m bench.naive --threads 8     # a worker for the naive queue (settings from env)
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import aiohttp
import dramatiq
import pandas as pd
import redis
from dramatiq.brokers.redis import RedisBroker

from analytics.events import Event
from analytics.stream import RedisStreamSink
from catalog.issuance import issue_batch
from catalog.templates import save_template
from channels.base import Channel, Message
from channels.factory import build_channels
from dispatcher.actors import WorkerDeps
from dispatcher.async_runner import AsyncRunner
from dispatcher.broker import make_broker
from dispatcher.campaigns import Campaign, CampaignStore
from dispatcher.definition import parse_definition
from dispatcher.launch import prepare
from dispatcher.operations import build_launch_deps
from dispatcher.planner import plan
from dispatcher.variables import message_variables
from infra.redis_client import make_async_redis, make_redis
from infra.services import resolve_broker_url, resolve_redis_url
from infra.settings import Settings, load_settings

QUEUE = "bench-naive"
# per member, the channel of its one request and the row field holding its address there
CHANNEL_OF = {"wechat_mass": ("wechat", 2), "wechat": ("wechat", 2), "alipay": ("alipay", 3),
              "sms": ("sms", 4)}


def done_key(campaign_id: str) -> str:
    return f"bench:naive:{{cmp:{campaign_id}}}:done"


class NaiveSender:
    """The worker side: one member per call, with the engine's worker dependencies."""

    def __init__(self, *, deps: WorkerDeps) -> None:
        self._deps = deps
        self._known: dict[str, Campaign] = {}

    def __call__(self, campaign_id: str, row: Sequence[str]) -> None:
        deps = self._deps
        campaign = self._known.get(campaign_id)
        if campaign is None:
            campaign = self._known[campaign_id] = deps.campaigns.get(campaign_id)
        member_id, name, primary = row[0], row[1], row[5]
        now = datetime.now(UTC)
        [coupon] = issue_batch(deps.redis, merchant_id=campaign.merchant_id,
                               campaign_id=campaign_id, template_id=campaign.template_id,
                               member_ids=[member_id], now=now, secret=deps.secret,
                               tz=deps.timezone)
        events = [self._event("issued" if coupon.code else "failed", campaign, member_id, now,
                              code=coupon.code)]
        if coupon.code and primary in CHANNEL_OF:
            channel, field = CHANNEL_OF[primary]
            message = Message(
                member_id=member_id, address=row[field], coupon_code=coupon.code,
                idempotency_key=f"{campaign_id}:{member_id}", campaign_id=campaign_id,
                variables=message_variables(campaign, channel=channel, name=name,
                                            code=coupon.code))
            [result] = deps.runner.run(deps.channels[channel].send([message]))
            events.append(self._event("sent" if result.status == "sent" else "failed",
                                      campaign, member_id, now, code=coupon.code,
                                      channel=channel, reason=result.code))
        deps.events.emit(events)
        deps.redis.incr(done_key(campaign_id))

    @staticmethod
    def _event(kind: str, campaign: Campaign, member_id: str, now: datetime, *, code: str,
               channel: str = "", reason: str = "") -> Event:
        return Event(event_id=f"{kind}:{campaign.campaign_id}:{member_id}", event_type=kind,
                     merchant_id=campaign.merchant_id, campaign_id=campaign.campaign_id,
                     member_id=member_id, coupon_code=code, channel=channel, reason=reason,
                     ts=now)


def declare(broker: RedisBroker, *, sender: NaiveSender | None) -> dramatiq.Actor[Any, Any]:
    """The per-member actor on ``broker``; enqueue-only callers pass ``sender=None``."""

    def naive_send(campaign_id: str, row: list[str]) -> None:
        if sender is None:
            raise RuntimeError("this process only enqueues; run `python -m bench.naive`")
        sender(campaign_id, row)

    actor: dramatiq.Actor[Any, Any] = dramatiq.actor(
        broker=broker, actor_name="bench_naive_send", queue_name=QUEUE, max_retries=3,
    )(naive_send)
    return actor


def launch(snapshot: pd.DataFrame, *, settings: Settings, channels: tuple[str, ...]
           ) -> tuple[str, int]:
    """Create a campaign (checked by the engine's own ``prepare``) and enqueue one message per
    member; returns (campaign id, members enqueued)."""
    deps = build_launch_deps(settings)
    definition = parse_definition({"name": "naive", "channels": list(channels),
                                   "audience": {"snapshot": "-"}})
    now = datetime.now(UTC)
    prepared = prepare(definition, snapshot, deps=deps, now=now)
    assert prepared.template is not None  # the definition names no existing template
    campaign = replace(prepared.campaign, status="running",
                       template_id=save_template(deps.client, prepared.template))
    rows = [r for batch in plan(prepared.members, campaign=campaign, batch_size=1000).batches
            for r in batch]
    campaign = replace(campaign, total_members=len(rows))
    deps.store.save(campaign)
    actor = declare(make_broker(resolve_broker_url(settings,
                                                   redis_url=resolve_redis_url(settings))),
                    sender=None)
    for row in rows:
        actor.send(campaign.campaign_id, list(row))
    return campaign.campaign_id, len(rows)


def wait_sent(client: redis.Redis, *, campaign_id: str, members: int, timeout: float) -> bool:
    """Wait until the workers have handled ``members`` messages of ``campaign_id``."""
    deadline = time.monotonic() + timeout
    while int(client.get(done_key(campaign_id)) or 0) < members:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def run_worker(settings: Settings, *, threads: int) -> None:
    """Consume the naive queue until SIGTERM or SIGINT."""
    redis_url = resolve_redis_url(settings)
    client = make_redis(redis_url)
    runner = AsyncRunner()

    async def open_clients() -> tuple[aiohttp.ClientSession, dict[str, Channel]]:
        session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=200))
        return session, build_channels(settings, session=session,
                                       redis=make_async_redis(redis_url))

    session, channels = runner.run(open_clients())
    sender = NaiveSender(deps=WorkerDeps(
        redis=client, campaigns=CampaignStore(client=client),
        events=RedisStreamSink(client=client, stream=settings.events_stream), channels=channels,
        runner=runner, secret=settings.secret_key.encode(), timezone=settings.timezone))
    broker = make_broker(resolve_broker_url(settings, redis_url=redis_url))
    declare(broker, sender=sender)
    broker.emit_after("process_boot")
    worker = dramatiq.Worker(broker, worker_threads=threads, worker_timeout=500)
    worker.start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    print("naive worker ready", flush=True)
    stop.wait()
    worker.stop(timeout=30_000)
    runner.run(session.close())
    runner.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.naive")
    parser.add_argument("--threads", type=int, default=8)
    args = parser.parse_args(argv)
    run_worker(load_settings(), threads=args.threads)
    return 0


if __name__ == "__main__":
    sys.exit(main())
