"""build_channels and the simulators built from the same Settings agree on every credential:
each channel sends through the real client to its simulator."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import aiohttp
import pytest
import redis.asyncio

from channels.base import Message
from channels.factory import build_callback_receiver, build_channels
from channels.simulators import build_apps
from channels.simulators.common import Faults
from infra.errors import SettingsError
from infra.settings import Settings
from tests.channels.support import run, serving, sim_stats

VARS = {"name": "赵六", "coupon": "满200减50券", "code": "QP7K2M9X4B6N8R3T", "value": "50元",
        "expiry": "2026-12-31",
        "store": "静安店"}


def test_every_channel_reaches_its_simulator(tmp_path: Path, redis_url: str) -> None:
    async def scenario() -> None:
        base = Settings(var_dir=tmp_path)
        base = replace(base, sms=replace(base.sms, quiet_hours="off"))
        apps = build_apps(base, faults=Faults())
        client = redis.asyncio.Redis.from_url(redis_url)
        async with serving(apps["wechat"]) as wx, serving(apps["sms"]) as sms, \
                serving(apps["alipay"]) as ali, aiohttp.ClientSession() as session:
            settings = replace(base, wechat=replace(base.wechat, base_url=wx),
                               sms=replace(base.sms, base_url=sms + "/"),
                               alipay=replace(base.alipay, base_url=ali + "/gateway.do"))
            channels = build_channels(settings, session=session, redis=client)
            assert set(channels) == {"sms", "wechat", "wechat_mass", "alipay", "alipay_cash"}
            addresses = {"sms": "1390000{:04d}", "wechat": "oMember{:06d}xyz",
                         "wechat_mass": "oMember{:06d}xyz", "alipay": "2088{:012d}",
                         "alipay_cash": "2088{:012d}"}
            for name, channel in channels.items():
                batch = [Message(member_id=f"m{i}", address=addresses[name].format(i),
                                 coupon_code=f"C{i}", idempotency_key=f"{name}:m{i}",
                                 variables=VARS, campaign_id="c1") for i in range(3)]
                results = await channel.send(batch)
                assert {r.status for r in results} == {"sent"}, (name, results)
            for url in (wx, sms, ali):
                assert (await sim_stats(session, url))["counts"]["recipients"] >= 3
            receiver = build_callback_receiver(settings, redis=client, sink=_Sink())
            assert receiver.wechat_token == settings.wechat.callback_token
        await client.aclose()
    run(scenario)


def test_bad_limit_settings_are_refused(tmp_path: Path, redis_url: str) -> None:
    async def scenario() -> None:
        base = Settings(var_dir=tmp_path)
        client = redis.asyncio.Redis.from_url(redis_url)
        async with aiohttp.ClientSession() as session:
            with pytest.raises(SettingsError, match="SMS_QUIET_HOURS"):
                build_channels(replace(base, sms=replace(base.sms, quiet_hours="late")),
                               session=session, redis=client)
        await client.aclose()
    run(scenario)


class _Sink:
    def emit(self, events: object) -> None:
        raise AssertionError("nothing is emitted here")
