"""Shared channel state on a real three-master Redis Cluster: every script's keys share a
slot, so limits, quotas, tokens and receipts work unchanged."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import aiohttp
from redis.asyncio.cluster import RedisCluster

from channels.base import Message
from channels.ratelimit import DailyQuota, FrequencyCap, RateLimiter, RollingLimit
from channels.receipts import ReceiptIndex, Recipient
from channels.simulators import wechat as wechat_sim
from channels.sms import TimeoutLedger
from channels.wechat_token import TokenConfig, TokenManager
from tests.channels import test_wechat
from tests.channels.support import run, serving

SH = ZoneInfo("Asia/Shanghai")


def test_limits_tokens_and_receipts_on_a_cluster(channel_cluster: int) -> None:
    async def scenario() -> None:
        client = RedisCluster(host="127.0.0.1", port=channel_cluster)
        await client.flushall(target_nodes=RedisCluster.PRIMARIES)
        assert await RateLimiter(redis=client, name="acct", rate=1000).acquire(5) == 0
        quota = DailyQuota(redis=client, name="wx", limit=3, tz=SH)
        assert await quota.reserve(5, now=datetime(2026, 11, 23, 4, tzinfo=UTC)) == 3
        rolling = RollingLimit(redis=client, name="sms:t", limit=1)
        # Addresses that hash to different slots without the tag.
        assert await rolling.admit(["13800000001", "13900000002", "13800000001"]) == [
            True, True, False]
        cap = FrequencyCap(redis=client, limit=1, tz=SH)
        assert await cap.admit(["m1", "m2", "m1"]) == [True, True, False]
        index = ReceiptIndex(redis=client, channel="sms")
        await index.remember("qp1", [("13800000001", Recipient("m1", "c1", "C1"))])
        await index.remember_rows([
            ("qp2", "13800000002", Message("m2", "13800000002", "C2", "k2", campaign_id="c1")),
            ("qp3", "13800000003", Message("m3", "13800000003", "C3", "k3", campaign_id="c1"))])
        assert (await index.take("qp1", ["13800000001"]))[0] == Recipient("m1", "c1", "C1")
        assert await index.take_all("qp3") == [("13800000003", Recipient("m3", "c1", "C3"))]
        ledger = TimeoutLedger(redis=client)
        await ledger.mark("qp9")
        assert await ledger.seen("qp9")
        async with serving(wechat_sim.make_app(test_wechat.sim_config())) as url, \
                aiohttp.ClientSession() as session:
            config = TokenConfig(base_url=url, appid=test_wechat.APPID,
                                 secret=test_wechat.SECRET)
            first = TokenManager(config=config, session=session, redis=client)
            second = TokenManager(config=config, session=session, redis=client)
            assert await first.get() == await second.get()
            assert first.fetches + second.fetches == 1
        await client.aclose()
    run(scenario)
