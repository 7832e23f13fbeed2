"""WeChat template and mass-send channels against the strict simulator, real HTTP, real Redis."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace

import aiohttp
import pytest
import redis.asyncio
from msgspec import structs

from channels.base import Message
from channels.errors import ChannelConfigError, ChannelUnavailable
from channels.simulators import wechat as sim
from channels.simulators.common import Faults
from channels.wechat import WeChatConfig, WeChatMassCardChannel, WeChatTemplateChannel
from channels.wechat_token import TokenConfig, TokenManager
from tests.channels.support import run, serving, sim_stats

APPID, SECRET, CARD = "wxtest000000001", "test-secret", "pCard0001"
VARS = {"name": "王五", "coupon": "满100减20券", "value": "20元", "code": "QP7K2M9X4B6N8R3T",
        "expiry": "2026-12-31",
        "store": "徐家汇店", "link": "https://m.example.cn/c/1"}


def sim_config(**overrides: object) -> sim.WeChatSimConfig:
    base = sim.WeChatSimConfig(appid=APPID, secret=SECRET, templates=sim.default_templates(),
                               card_ids=frozenset({CARD}))
    return replace(base, **overrides)  # type: ignore[arg-type]


def msg(i: int, **variables: str) -> Message:
    return Message(member_id=f"m{i}", address=f"oUser{i:06d}abcdef", coupon_code=f"C{i}",
                   idempotency_key=f"camp1:m{i}", variables={**VARS, **variables},
                   campaign_id="camp1")


@dataclass
class World:
    url: str
    session: aiohttp.ClientSession
    redis: redis.asyncio.Redis

    def tokens(self, **overrides: object) -> TokenManager:
        config = replace(TokenConfig(base_url=self.url, appid=APPID, secret=SECRET),
                         **overrides)  # type: ignore[arg-type]
        return TokenManager(config=config, session=self.session, redis=self.redis)

    def template(self, tokens: TokenManager | None = None, **overrides: object
                 ) -> WeChatTemplateChannel:
        config = replace(WeChatConfig(base_url=self.url, card_id=CARD), **overrides)  # type: ignore[arg-type]
        return WeChatTemplateChannel(config=config, session=self.session,
                                     tokens=tokens or self.tokens())

    def mass(self) -> WeChatMassCardChannel:
        return WeChatMassCardChannel(config=WeChatConfig(base_url=self.url, card_id=CARD),
                                     session=self.session, tokens=self.tokens())

    async def issued(self) -> int:
        async with self.session.get(self.url + "/_sim/tokens") as resp:
            return int((await resp.json())["issued"])


@asynccontextmanager
async def world(redis_url: str, **overrides: object) -> AsyncIterator[World]:
    client = redis.asyncio.Redis.from_url(redis_url)
    async with serving(sim.make_app(sim_config(**overrides))) as url, \
            aiohttp.ClientSession() as session:
        yield World(url, session, client)
    await client.aclose()


def test_template_send_and_one_token_for_many_workers(redis_url: str) -> None:
    async def scenario() -> None:
        async with world(redis_url) as w:
            # Three "workers" with their own managers share the Redis-cached token.
            channels = [w.template() for _ in range(3)]
            batches = [[msg(k * 100 + i) for i in range(40)] for k in range(3)]
            results = await asyncio.gather(*(c.send(b) for c, b in zip(channels, batches,
                                                                         strict=True)))
            flat = [r for rs in results for r in rs]
            assert {r.status for r in flat} == {"sent"}
            assert len({r.provider_id for r in flat}) == 120
            assert await w.issued() == 1
            stats = await sim_stats(w.session, w.url)
            assert stats["counts"]["template_sent"] == 120
    run(scenario)


def test_token_expiry_mid_batch_refreshes_once_and_retries(redis_url: str) -> None:
    async def scenario() -> None:
        async with world(redis_url) as w:
            channel = w.template(chunk=10)
            assert {r.status for r in await channel.send([msg(i) for i in range(10)])} == {"sent"}
            async with w.session.post(w.url + "/_sim/expire_tokens") as resp:
                assert resp.status == 200
            results = await channel.send([msg(100 + i) for i in range(30)])
            assert {r.status for r in results} == {"sent"}
            assert await w.issued() == 2  # one refresh for the 30 in-flight 42001 answers
            stats = await sim_stats(w.session, w.url)
            assert stats["errors"]["42001"] >= 1
            assert stats["counts"]["template_sent"] == 40
    run(scenario)


def test_superseded_token_past_grace_gets_40001_then_works(redis_url: str) -> None:
    async def scenario() -> None:
        async with world(redis_url, grace_s=0.0) as w:
            channel = w.template()
            await channel.send([msg(1)])
            # Someone calls /cgi-bin/token directly: the cached token is superseded at once.
            params = {"grant_type": "client_credential", "appid": APPID, "secret": SECRET}
            async with w.session.get(w.url + "/cgi-bin/token", params=params) as resp:
                assert "access_token" in await resp.json()
            results = await channel.send([msg(2)])
            assert results[0].status == "sent"
            assert (await sim_stats(w.session, w.url))["errors"]["40001"] == 1
    run(scenario)


def test_error_classes_on_codes(redis_url: str) -> None:
    async def scenario() -> None:
        async with world(redis_url, per_openid_per_minute=1) as w:
            channel = w.template()
            too_long = msg(1, coupon="上海市徐汇区漕溪北路某某购物中心旗舰店满100减20券")
            first, second, bad = await channel.send([msg(2), msg(2, name="x"), too_long])
            assert first.status == "sent"
            # Same openid and client_msg_id within 10 minutes: one message, the same msgid.
            assert second.status == "sent"
            assert second.provider_id == first.provider_id
            assert (bad.status, bad.code) == ("failed_permanent", "47003")
            again = await channel.send([structs.replace(msg(2), idempotency_key="camp2:m2")])
            assert (again[0].status, again[0].code) == ("failed_retryable", "43117")
            assert again[0].retry_at is not None
        async with world(redis_url, faults=Faults(unsubscribed_share=1.0)) as w:
            results = await w.template().send([msg(1), msg(2)])
            assert {(r.status, r.code) for r in results} == {("failed_permanent", "43004")}
        async with world(redis_url, faults=Faults(quota_share=1.0)) as w:
            results = await w.template().send([msg(1)])
            assert (results[0].status, results[0].code) == ("quota_exhausted", "45009")
        async with world(redis_url, template_daily=2) as w:
            results = await w.template(concurrency=1).send([msg(i) for i in range(3)])
            assert [r.status for r in results] == ["sent", "sent", "quota_exhausted"]
    run(scenario)


def test_config_errors_and_unreachable(redis_url: str) -> None:
    async def scenario() -> None:
        async with world(redis_url) as w:
            with pytest.raises(ChannelConfigError, match="WECHAT_SECRET"):
                await w.template(tokens=w.tokens(secret="wrong")).send([msg(1)])
            bad_template = replace(WeChatConfig(base_url=w.url).template, template_id="nope")
            with pytest.raises(ChannelConfigError, match="40037"):
                await w.template(template=bad_template).send([msg(1)])
        async with world(redis_url, faults=Faults(error_share=1.0)) as w:
            await w.redis.flushdb()
            with pytest.raises(ChannelUnavailable):
                await w.template().send([msg(1)])
    run(scenario)


def test_mass_send_card_with_clientmsgid(redis_url: str) -> None:
    async def scenario() -> None:
        async with world(redis_url, clientmsgid_retry_fast_s=0.0, mass_per_user_month=1) as w:
            channel = w.mass()
            batch = [msg(i) for i in range(5)]
            results = await channel.send(batch)
            assert {r.status for r in results} == {"sent"}
            assert len({r.provider_id for r in results}) == 1
            retried = await channel.send(batch)  # same batch again: 45065, same job
            assert [r.provider_id for r in retried] == [r.provider_id for r in results]
            stats = await sim_stats(w.session, w.url)
            assert stats["counts"]["mass_jobs"] == 1
            assert stats["errors"]["45065"] == 1
            alone = await channel.send([msg(9)])
            assert (alone[0].status, alone[0].code) == ("failed_permanent", "40130")
            # A new job to the same users: they are over the monthly mass quota -> filtered.
            await channel.send([structs.replace(m, idempotency_key="camp2:" + m.member_id)
                                for m in batch])
            stats = await sim_stats(w.session, w.url)
            assert stats["counts"]["mass_filtered"] == 5
    run(scenario)


def test_system_error_is_retried_later_and_plain_token_api_works(redis_url: str) -> None:
    async def scenario() -> None:
        async with world(redis_url, faults=Faults(system_error_share=1.0)) as w:
            results = await w.template(tokens=w.tokens(use_stable_token=False)).send([msg(1)])
            assert (results[0].status, results[0].code) == ("failed_retryable", "-1")
            assert results[0].retry_at is not None
            assert await w.issued() == 1  # through /cgi-bin/token
    run(scenario)


def test_token_expiring_while_a_batch_is_in_flight(redis_url: str) -> None:
    async def scenario() -> None:
        # 120 calls of 20 ms, four at a time, take at least 0.6 s; the token expires once a
        # few have been answered, so the expiry lands mid-batch however busy the machine is.
        async with world(redis_url, faults=Faults(latency_ms=20)) as w:
            channel = w.template(concurrency=4)

            async def expire_soon() -> None:
                while (await sim_stats(w.session, w.url))["counts"].get("template_sent", 0) < 8:
                    await asyncio.sleep(0.005)
                async with w.session.post(w.url + "/_sim/expire_tokens") as resp:
                    assert resp.status == 200

            results, _ = await asyncio.gather(channel.send([msg(i) for i in range(120)]),
                                              expire_soon())
            assert {r.status for r in results} == {"sent"}
            assert await w.issued() == 2
            stats = await sim_stats(w.session, w.url)
            assert 1 <= stats["errors"]["42001"] <= 4  # only the calls in flight at expiry
            assert stats["counts"]["template_sent"] == 120
    run(scenario)
