"""Routing over the real WeChat and SMS clients and simulators: first reachable channel,
automatic order, fallback on permanent failures and on exhausted quota."""

from __future__ import annotations

from types import SimpleNamespace

import aiohttp
import pytest
import redis.asyncio

from channels.base import Message, SendResult
from channels.errors import ChannelConfigError
from channels.routing import Member, Router, address
from channels.simulators import sms as sms_sim
from channels.simulators import wechat as wechat_sim
from channels.simulators.common import Faults
from channels.sms import AliyunSmsChannel
from channels.wechat import WeChatConfig, WeChatTemplateChannel
from channels.wechat_token import TokenConfig, TokenManager
from tests.channels import test_sms, test_wechat
from tests.channels.support import run, serving


def make(member: Member, channel: str, addr: str) -> Message:
    variables = dict(test_wechat.VARS) if channel == "wechat" else dict(test_sms.VARS)
    return Message(member_id=member.member_id, address=addr, coupon_code="C",
                   idempotency_key=f"camp:{member.member_id}", variables=variables)


def members() -> list[Member]:
    return [
        Member("both", openid="oUser000001abcdef", subscribed=True, phone="13800000001",
               sms_consent=True),
        Member("sms_only", phone="13800000002", sms_consent=True),
        Member("no_consent", phone="13800000003"),
        Member("not_following", openid="oUser000004abcdef", phone="13800000004",
               sms_consent=True),
    ]


def test_addresses_need_consent_and_following() -> None:
    m = members()
    assert address(m[0], "wechat") == "oUser000001abcdef"
    assert address(m[2], "sms") is None
    assert address(m[3], "wechat") is None
    assert address(Member("a", alipay_user_id="2088000000000001"), "alipay_cash") == \
        "2088000000000001"


def test_fallback_to_sms_on_unsubscribed_and_on_quota(redis_url: str) -> None:
    async def scenario() -> None:
        client = redis.asyncio.Redis.from_url(redis_url)
        wx_faults = Faults(unsubscribed_share=1.0)  # every WeChat send answers 43004
        async with serving(wechat_sim.make_app(test_wechat.sim_config(faults=wx_faults))) as wx, \
                serving(sms_sim.make_app(test_sms.sim_config())) as sms, \
                aiohttp.ClientSession() as s:
            tokens = TokenManager(config=TokenConfig(base_url=wx, appid=test_wechat.APPID,
                                                     secret=test_wechat.SECRET),
                                  session=s, redis=client)
            router = Router(channels={
                "wechat": WeChatTemplateChannel(config=WeChatConfig(base_url=wx), session=s,
                                                tokens=tokens),
                "sms": AliyunSmsChannel(config=test_sms.client_config(sms), session=s)})
            assert router.order == ("wechat", "sms")
            out = {d.member_id: d for d in await router.deliver(members(), make)}
            assert out["both"].tried == ("wechat", "sms")
            assert (out["both"].channel, out["both"].result.status) == ("sms", "sent")
            assert out["sms_only"].tried == ("sms",)
            assert out["no_consent"].result.code == "unreachable"
            assert out["not_following"].channel == "sms"
        quota = Faults(quota_share=1.0)
        async with serving(wechat_sim.make_app(test_wechat.sim_config(faults=quota))) as wx, \
                serving(sms_sim.make_app(test_sms.sim_config())) as sms, \
                aiohttp.ClientSession() as s:
            await client.flushdb()
            tokens = TokenManager(config=TokenConfig(base_url=wx, appid=test_wechat.APPID,
                                                     secret=test_wechat.SECRET),
                                  session=s, redis=client)
            router = Router(channels={
                "wechat": WeChatTemplateChannel(config=WeChatConfig(base_url=wx), session=s,
                                                tokens=tokens),
                "sms": AliyunSmsChannel(config=test_sms.client_config(sms), session=s)})
            wx_only = Member("wx_only", openid="oUser000009abcdef", subscribed=True)
            out = {d.member_id: d for d in await router.deliver([wx_only, members()[0]], make)}
            assert (out["wx_only"].channel, out["wx_only"].result.status) == (
                "wechat", "quota_exhausted")
            assert out["both"].tried == ("wechat", "sms")
            assert (out["both"].channel, out["both"].result.status) == ("sms", "sent")
            # The campaign's own order wins over the automatic one.
            sms_first = Router(order=["sms", "wechat"], channels=router._channels)
            again = await sms_first.deliver([members()[0]], make)
            assert again[0].tried == ("sms",)
        await client.aclose()
    run(scenario)


class Recorder:
    """SendHooks that keep what the router reports around each request."""

    def __init__(self) -> None:
        self.before: list[tuple[str, list[str]]] = []
        self.after: list[tuple[str, list[str]]] = []

    async def before_send(self, channel: str, messages: list[Message]) -> bool:
        self.before.append((channel, [m.member_id for m in messages]))
        return True

    async def after_send(self, channel: str, messages: list[Message],
                         results: list[SendResult]) -> None:
        self.after.append((channel, [f"{r.member_id}:{r.status}" for r in results]))


def test_one_channel_raising_keeps_the_other_channels_results(redis_url: str) -> None:
    async def scenario() -> None:
        client = redis.asyncio.Redis.from_url(redis_url)
        async with serving(wechat_sim.make_app(test_wechat.sim_config())) as wx, \
                serving(sms_sim.make_app(test_sms.sim_config())) as sms, \
                aiohttp.ClientSession() as s:
            tokens = TokenManager(config=TokenConfig(base_url=wx, appid=test_wechat.APPID,
                                                     secret=test_wechat.SECRET),
                                  session=s, redis=client)
            broken_sms = AliyunSmsChannel(
                config=test_sms.client_config(sms, access_key_secret="wrong"), session=s)
            router = Router(channels={
                "wechat": WeChatTemplateChannel(config=WeChatConfig(base_url=wx), session=s,
                                                tokens=tokens),
                "sms": broken_sms}, order=("wechat", "sms"))
            recorder = Recorder()
            hooks = SimpleNamespace(before=recorder.before_send, after=recorder.after_send)
            group = [Member("wx", openid="oUser000009abcdef", subscribed=True),
                     Member("sms", phone="13800000009", sms_consent=True)]
            with pytest.raises(ChannelConfigError):
                await router.deliver(group, make, hooks)  # type: ignore[arg-type]
            # WeChat's request ran to the end and its outcome was handed to the hooks.
            assert recorder.after == [("wechat", ["wx:sent"])]
            assert sorted(recorder.before) == [("sms", ["sms"]), ("wechat", ["wx"])]
        await client.aclose()
    run(scenario)
