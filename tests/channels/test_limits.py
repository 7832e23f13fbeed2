"""Shared limits on a real Redis: token bucket, daily quota, rolling per-address limit,
frequency cap, quiet hours, and LimitedChannel around the real SMS client and simulator."""

from __future__ import annotations

import time as clock
from datetime import UTC, datetime, time
from zoneinfo import ZoneInfo

import aiohttp
import pytest
import redis.asyncio

from channels.errors import ChannelUnavailable
from channels.policy import LimitedChannel
from channels.ratelimit import DailyQuota, FrequencyCap, QuietHours, RateLimiter, RollingLimit
from channels.receipts import ReceiptIndex
from channels.simulators import sms as sim
from channels.sms import AliyunSmsChannel, TimeoutLedger
from infra.ports import free_port
from tests.channels import test_sms
from tests.channels.support import run, serving, sim_stats

SH = ZoneInfo("Asia/Shanghai")


def test_token_bucket_is_shared_between_clients(redis_url: str) -> None:
    async def scenario() -> None:
        a = redis.asyncio.Redis.from_url(redis_url)
        b = redis.asyncio.Redis.from_url(redis_url)
        one = RateLimiter(redis=a, name="acct", rate=100, burst=10)
        two = RateLimiter(redis=b, name="acct", rate=100, burst=10)
        start = clock.monotonic()
        assert await one.acquire(10) == 0  # the burst is free
        waited = await two.acquire(20)  # the other "worker" pays for the deficit
        assert 0.15 <= waited <= 0.25
        assert clock.monotonic() - start >= 0.15
        await a.aclose()
        await b.aclose()
    run(scenario)


def test_daily_quota_is_per_merchant_day(redis_url: str) -> None:
    async def scenario() -> None:
        client = redis.asyncio.Redis.from_url(redis_url)
        quota = DailyQuota(redis=client, name="wx", limit=5, tz=SH)
        # 23:30 UTC is 07:30 the next day in Shanghai: a different quota day than 15:00 UTC.
        late = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)
        next_day = datetime(2026, 11, 23, 23, 30, tzinfo=UTC)
        assert await quota.reserve(3, now=late) == 3
        assert await quota.reserve(3, now=late) == 2
        assert await quota.reserve(1, now=late) == 0
        await quota.release(1, now=late)
        assert await quota.used(now=late) == 4
        assert await quota.reserve(5, now=next_day) == 5
        await client.aclose()
    run(scenario)


def test_rolling_limit_and_frequency_cap(redis_url: str) -> None:
    async def scenario() -> None:
        client = redis.asyncio.Redis.from_url(redis_url)
        limit = RollingLimit(redis=client, name="sms:t", limit=2, window_s=0.3)
        assert await limit.admit(["a", "a", "b"]) == [True, True, True]
        assert await limit.admit(["a", "b"]) == [False, True]
        clock.sleep(0.35)
        assert await limit.admit(["a"]) == [True]
        cap = FrequencyCap(redis=client, limit=1, tz=SH)
        assert await cap.admit(["m1", "m2", "m1"]) == [True, True, False]
        assert await cap.admit(["m1"]) == [False]
        await client.aclose()
    run(scenario)


def test_quiet_hours_wrap_midnight_in_merchant_time() -> None:
    quiet = QuietHours.parse("21:00-08:00", SH)
    assert quiet is not None
    assert quiet.resume_at(datetime(2026, 11, 23, 4, 0, tzinfo=UTC)) is None  # 12:00 local
    resume = quiet.resume_at(datetime(2026, 11, 23, 14, 30, tzinfo=UTC))  # 22:30 local
    assert resume == datetime(2026, 11, 24, 8, 0, tzinfo=SH)
    early = quiet.resume_at(datetime(2026, 11, 23, 22, 0, tzinfo=UTC))  # 06:00 local, 24th
    assert early == datetime(2026, 11, 24, 8, 0, tzinfo=SH)
    assert QuietHours.parse("off", SH) is None
    assert QuietHours(tz=SH, start=time(1), end=time(5)).resume_at(
        datetime(2026, 11, 23, 18, 0, tzinfo=UTC)) is not None  # 02:00 local
    with pytest.raises(ValueError, match="HH:MM"):
        QuietHours.parse("9pm", SH)


def test_limited_channel_holds_back_before_the_provider(redis_url: str) -> None:
    async def scenario() -> None:
        client = redis.asyncio.Redis.from_url(redis_url)
        async with serving(sim.make_app(test_sms.sim_config())) as url, \
                aiohttp.ClientSession() as s:
            inner = AliyunSmsChannel(config=test_sms.client_config(url), session=s)
            noon = datetime(2026, 11, 23, 4, 0, tzinfo=UTC)
            night = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)
            quiet = QuietHours.parse("21:00-08:00", SH)
            at_night = LimitedChannel(inner, quiet=quiet, clock=lambda: night)
            held = await at_night.send([test_sms.msg(1)])
            assert (held[0].status, held[0].code) == ("failed_retryable", "quiet_hours")
            assert held[0].retry_at == datetime(2026, 11, 24, 8, 0, tzinfo=SH)
            channel = LimitedChannel(
                inner, quiet=quiet, clock=lambda: noon,
                quota=DailyQuota(redis=client, name="sms", limit=3, tz=SH),
                frequency=FrequencyCap(redis=client, limit=1, tz=SH),
                per_address=RollingLimit(redis=client, name="sms", limit=5))
            messages = [test_sms.msg(i) for i in range(4)] + [test_sms.msg(0)]
            results = await channel.send(messages)
            assert [r.status for r in results] == [
                "sent", "sent", "sent", "quota_exhausted", "failed_retryable"]
            assert results[4].code == "frequency_cap"
            stats = await sim_stats(s, url)
            assert stats["counts"]["recipients"] == 3  # nothing held back reached Aliyun
        await client.aclose()
    run(scenario)


def test_redis_outage_never_turns_a_send_into_a_repeat() -> None:
    """Bookkeeping after a send fails soft (the send is reported as made); limits that must
    be read before a send fail the call before anything goes out."""
    async def scenario() -> None:
        dead = redis.asyncio.Redis(port=free_port(), socket_connect_timeout=0.2)
        async with serving(sim.make_app(test_sms.sim_config())) as url, \
                aiohttp.ClientSession() as s:
            inner = AliyunSmsChannel(
                config=test_sms.client_config(url), session=s,
                receipts=ReceiptIndex(redis=dead, channel="sms"),
                timeouts=TimeoutLedger(redis=dead),
                rate=RateLimiter(redis=dead, name="sms", rate=10))
            results = await inner.send([test_sms.msg(1), test_sms.msg(2)])
            assert {r.status for r in results} == {"sent"}
            limited = LimitedChannel(inner, quota=DailyQuota(redis=dead, name="sms", limit=9,
                                                             tz=SH))
            with pytest.raises(ChannelUnavailable, match="nothing was sent"):
                await limited.send([test_sms.msg(3)])
            assert (await sim_stats(s, url))["counts"]["recipients"] == 2
        await dead.aclose()
    run(scenario)
