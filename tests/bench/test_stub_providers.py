"""The engine-only benchmark's stub providers answer what the real channel clients need: every
channel sends through its client over HTTP to the stubs, Alipay replies pass the client's
signature verification, and an SMS resolution query finds nothing to resolve."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import aiohttp
import pytest
import redis.asyncio

from bench.stub_providers import build_apps
from channels.alipay_keys import load_keys
from channels.base import Message
from channels.factory import build_channels, sms_config
from channels.sms import AliyunSmsChannel
from infra.ports import free_port, wait_port
from infra.settings import Settings
from tests.channels.support import run, serving

VARS = {"name": "赵六", "coupon": "满200减50券", "code": "QP7K2M9X4B6N8R3T", "value": "50元",
        "expiry": "2026-12-31", "store": "静安店"}
ADDRESSES = {"sms": "1390000{:04d}", "wechat": "oMember{:06d}xyz",
             "wechat_mass": "oMember{:06d}xyz", "alipay": "2088{:012d}",
             "alipay_cash": "2088{:012d}"}


def _batch(name: str, n: int) -> list[Message]:
    return [Message(member_id=f"m{i}", address=ADDRESSES[name].format(i), coupon_code=f"C{i}",
                    idempotency_key=f"{name}:m{i}", variables=VARS, campaign_id="c1")
            for i in range(n)]


@pytest.fixture(scope="module")
def stub_settings(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """Settings pointing at a ``python -m bench.stub_providers`` process on free ports."""
    var = tmp_path_factory.mktemp("stub-var")
    ports = {name: free_port() for name in ("wechat", "sms", "alipay")}
    process = subprocess.Popen(
        [sys.executable, "-m", "bench.stub_providers", "--wechat-port", str(ports["wechat"]),
         "--sms-port", str(ports["sms"]), "--alipay-port", str(ports["alipay"]),
         "--callback-url", "http://127.0.0.1:1"],
        env={**os.environ, "QUANPAI_VAR": str(var)}, stdout=subprocess.PIPE)
    try:
        assert all(wait_port("127.0.0.1", port, timeout=30) for port in ports.values())
        base = Settings(var_dir=var)
        host = "http://127.0.0.1"
        yield replace(
            base, wechat=replace(base.wechat, base_url=f"{host}:{ports['wechat']}"),
            sms=replace(base.sms, base_url=f"{host}:{ports['sms']}/", quiet_hours="off"),
            alipay=replace(base.alipay, base_url=f"{host}:{ports['alipay']}/gateway.do"))
    finally:
        process.terminate()
        assert process.wait(timeout=30) == 0


def test_every_channel_client_is_answered_by_the_stubs(stub_settings: Settings,
                                                       redis_url: str) -> None:
    async def scenario() -> None:
        client = redis.asyncio.Redis.from_url(redis_url)
        async with aiohttp.ClientSession() as session:
            channels = build_channels(stub_settings, session=session, redis=client)
            for name, channel in channels.items():
                # SMS: identical variables go in one SendSms, a lone message per number too
                results = await channel.send(_batch(name, 5))
                assert [r.status for r in results] == ["sent"] * 5, (name, results)
                assert all(r.provider_id for r in results), name
            sms = AliyunSmsChannel(config=sms_config(stub_settings), session=session)
            assert await sms.resolve(_batch("sms", 2)) == ["not_sent", "not_sent"]
        await client.aclose()
    run(scenario)


def test_alipay_replies_signed_with_another_key_are_refused(tmp_path: Path,
                                                            redis_url: str) -> None:
    """The client really verifies what the stub signs: a stub signing with a key that is not
    the development Alipay key gets no voucher believed."""
    async def scenario() -> None:
        base = Settings(var_dir=tmp_path)
        keys = load_keys(base)
        apps = build_apps(alipay_key=keys.app_private)  # the merchant's key, not Alipay's
        client = redis.asyncio.Redis.from_url(redis_url)
        async with serving(apps["alipay"]) as ali, aiohttp.ClientSession() as session:
            settings = replace(base, alipay=replace(base.alipay, base_url=ali + "/gateway.do"))
            results = await build_channels(settings, session=session,
                                           redis=client)["alipay"].send(_batch("alipay", 2))
            assert {(r.status, r.code) for r in results} == {
                ("failed_retryable", "response_sign_invalid")}
        await client.aclose()
    run(scenario)
