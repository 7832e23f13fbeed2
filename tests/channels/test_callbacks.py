"""Simulators push delivery callbacks to the receiver over real HTTP; the receiver verifies
signatures, deduplicates repeats through Redis and emits delivered/failed events."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from urllib.parse import urlencode

import aiohttp
import redis.asyncio

from analytics.events import Event, MemorySink
from channels import callbacks
from channels.alipay import AlipayConfig, AlipayVoucherChannel
from channels.alipay_signature import rsa2_sign, sign_content
from channels.callbacks import build_event, push_signature
from channels.receipts import TAKEN, UNKNOWN, ReceiptIndex, Recipient, Taken, voucher_bucket
from channels.simulators import alipay as alipay_sim
from channels.simulators import sms as sms_sim
from channels.simulators import wechat as wechat_sim
from channels.simulators.common import Faults
from channels.sms import AliyunSmsChannel
from channels.wechat import (
    TEMPLATE_BUCKET,
    WeChatConfig,
    WeChatMassCardChannel,
    WeChatTemplateChannel,
)
from channels.wechat_token import TokenConfig, TokenManager
from tests.channels import test_alipay, test_sms, test_wechat
from tests.channels.support import run, serving, sim_stats, wait_for

FAULTS = Faults(invalid_share=0.3, duplicate_callback_share=1.0)


@dataclass
class Receiving:
    url: str
    sink: MemorySink
    redis: redis.asyncio.Redis
    session: aiohttp.ClientSession
    receiver: callbacks.CallbackReceiver

    def index(self, channel: str) -> ReceiptIndex:
        return ReceiptIndex(redis=self.redis, channel=channel)


@asynccontextmanager
async def receiving(redis_url: str) -> AsyncIterator[Receiving]:
    client = redis.asyncio.Redis.from_url(redis_url)
    sink = MemorySink()
    keys = test_alipay.keys()
    receiver = callbacks.CallbackReceiver(
        sink=sink, merchant_id="shop1", sms_index=ReceiptIndex(redis=client, channel="sms"),
        wechat_index=ReceiptIndex(redis=client, channel="wechat"),
        alipay_index=ReceiptIndex(redis=client, channel="alipay"),
        wechat_token="cb-token", alipay_public=keys.alipay_public)
    async with serving(callbacks.make_app(receiver)) as url, aiohttp.ClientSession() as s:
        yield Receiving(url, sink, client, s, receiver)
    await client.aclose()


def test_sms_receipts_become_events_once(redis_url: str) -> None:
    async def scenario() -> None:
        async with receiving(redis_url) as rx:
            config = test_sms.sim_config(callback_url=rx.url + "/callbacks/sms", faults=FAULTS)
            async with serving(sms_sim.make_app(config)) as url:
                channel = AliyunSmsChannel(config=test_sms.client_config(url),
                                           session=rx.session, receipts=rx.index("sms"))
                messages = [test_sms.msg(i) for i in range(40)]
                assert {r.status for r in await channel.send(messages)} == {"sent"}
                await wait_for(lambda: _count(rx, 40))
                stats = await sim_stats(rx.session, url)
                await wait_for(lambda: _delivered(rx.session, url, 2))
            kinds = Counter(e.event_type for e in rx.sink.events)
            assert kinds["delivered"] == stats["counts"]["receipts_ok"]
            assert kinds["failed"] == stats["counts"].get("receipts_failed", 0) > 0
            assert len({e.event_id for e in rx.sink.events}) == 40  # duplicates dropped
            failed = next(e for e in rx.sink.events if e.event_type == "failed")
            assert failed.reason == "UNDELIV" and failed.channel == "sms"
            assert failed.campaign_id == "camp1" and failed.ts.tzinfo is not None
    run(scenario)


def test_wechat_template_and_mass_events(redis_url: str) -> None:
    async def scenario() -> None:
        async with receiving(redis_url) as rx:
            config = test_wechat.sim_config(callback_url=rx.url + "/callbacks/wechat",
                                            callback_token="cb-token", faults=FAULTS)
            async with serving(wechat_sim.make_app(config)) as url:
                tokens = TokenManager(config=TokenConfig(base_url=url, appid=test_wechat.APPID,
                                                         secret=test_wechat.SECRET),
                                      session=rx.session, redis=rx.redis)
                wx = WeChatConfig(base_url=url, card_id=test_wechat.CARD)
                template = WeChatTemplateChannel(config=wx, session=rx.session, tokens=tokens,
                                                 receipts=rx.index("wechat"))
                mass = WeChatMassCardChannel(config=wx, session=rx.session, tokens=tokens,
                                             receipts=rx.index("wechat"))
                sent = await template.send([test_wechat.msg(i) for i in range(20)])
                assert {r.status for r in sent} == {"sent"}
                await mass.send([test_wechat.msg(100 + i) for i in range(5)])
                await wait_for(lambda: _count(rx, 25))
            by_channel = Counter((e.channel, e.event_type) for e in rx.sink.events)
            assert by_channel[("wechat_mass", "delivered")] == 5
            assert by_channel[("wechat", "failed")] > 0
            assert by_channel[("wechat", "delivered")] + by_channel[("wechat", "failed")] == 20
            blocked = next(e for e in rx.sink.events if e.event_type == "failed")
            assert blocked.reason == "failed:user block"
            assert len({e.event_id for e in rx.sink.events}) == 25
    run(scenario)


def test_alipay_notify_becomes_event_once(redis_url: str) -> None:
    async def scenario() -> None:
        async with receiving(redis_url) as rx:
            config = test_alipay.sim_config(callback_url=rx.url + "/callbacks/alipay",
                                            faults=Faults(duplicate_callback_share=1.0))
            async with serving(alipay_sim.make_app(config)) as url:
                channel = AlipayVoucherChannel(
                    config=AlipayConfig(base_url=url + "/gateway.do", app_id=test_alipay.APP_ID,
                                        voucher_template_id=test_alipay.TEMPLATE),
                    keys=test_alipay.keys(), session=rx.session, receipts=rx.index("alipay"))
                results = await channel.send([test_alipay.msg(i) for i in range(6)])
                assert {r.status for r in results} == {"sent"}
                await wait_for(lambda: _count(rx, 6))
                await wait_for(lambda: _delivered(rx.session, url, 12))
            assert {e.event_type for e in rx.sink.events} == {"delivered"}
            assert sorted(e.member_id for e in rx.sink.events) == [f"m{i}" for i in range(6)]
    run(scenario)


def test_forged_callbacks_are_refused(redis_url: str) -> None:
    async def scenario() -> None:
        async with receiving(redis_url) as rx:
            body = build_event({"Event": "TEMPLATESENDJOBFINISH", "MsgID": 1,
                                "Status": "success"})
            query = {"timestamp": "1700000000", "nonce": "abc",
                     "signature": push_signature("cb-token", "1700000000", "abc")}
            async with rx.session.post(f"{rx.url}/callbacks/wechat?{urlencode(query)}",
                                       data=body) as resp:
                assert resp.status == 503  # genuine, but for a send not recorded: later
            forged = {**query, "nonce": "abd"}
            async with rx.session.post(f"{rx.url}/callbacks/wechat?{urlencode(forged)}",
                                       data=body) as resp:
                assert resp.status == 403
                assert (await resp.json())["field"] == "signature"
            async with rx.session.get(f"{rx.url}/callbacks/wechat",
                                      params={**query, "echostr": "hello"}) as resp:
                assert await resp.text() == "hello"
            keys = test_alipay.keys()
            assert keys.alipay_private is not None
            notify = {"notify_id": "n1", "notify_type": "voucher_send_notify",
                      "voucher_id": "123456", "status": "SUCCESS", "app_id": "x"}
            notify["sign"] = rsa2_sign(keys.alipay_private, sign_content(notify))
            notify["sign_type"] = "RSA2"
            async with rx.session.post(rx.url + "/callbacks/alipay", data=notify) as resp:
                assert resp.status == 503
            async with rx.session.post(rx.url + "/callbacks/alipay",
                                       data={**notify, "voucher_id": "123457"}) as resp:
                assert resp.status == 400
            async with rx.session.post(rx.url + "/callbacks/sms",
                                       json=[{"biz_id": "1^0", "success": True}]) as resp:
                assert resp.status == 400
                assert (await resp.json())["field"] == "[0].phone_number"
            assert rx.sink.events == []  # nothing known was delivered
    run(scenario)


def test_a_receipt_ahead_of_its_sends_record_is_pushed_again_not_lost(redis_url: str) -> None:
    """WeChat and Alipay receipts name ids their send's reply brings: one can arrive before
    the worker has recorded it. It is refused (503, the provider pushes it again), becomes one
    event once the record exists, and a repeat after that is answered but emits nothing."""
    async def scenario() -> None:
        async with receiving(redis_url) as rx:
            query = {"timestamp": "1700000000", "nonce": "n",
                     "signature": push_signature("cb-token", "1700000000", "n")}
            template = build_event({"Event": "TEMPLATESENDJOBFINISH", "MsgID": 7000007,
                                    "Status": "success"})
            mass = build_event({"Event": "MASSSENDJOBFINISH", "MsgID": 88, "Status":
                                "send success", "ErrorCount": 0})

            async def push(body: bytes) -> int:
                async with rx.session.post(f"{rx.url}/callbacks/wechat?{urlencode(query)}",
                                           data=body) as resp:
                    return resp.status

            assert [await push(template), await push(mass)] == [503, 503]
            assert rx.sink.events == []
            index = rx.index("wechat")
            await index.remember(f"tpl:{7000007 // TEMPLATE_BUCKET}",
                                 [("7000007", Recipient("m1", "c1", "C1"))])
            await index.remember("mass:88", [("o2", Recipient("m2", "c1", "C2")),
                                             ("o3", Recipient("m3", "c1", "C3"))])
            assert [await push(template), await push(mass)] == [200, 200]
            assert [await push(template), await push(mass)] == [200, 200]  # repeats
            assert sorted((e.member_id, e.channel) for e in rx.sink.events) == [
                ("m1", "wechat"), ("m2", "wechat_mass"), ("m3", "wechat_mass")]
            # the index itself: taken, unknown, and a recipient
            sms = rx.index("sms")
            await sms.remember("out1", [("13800000001", Recipient("m4", "c1", "C4"))])
            assert await sms.take("out1", ["13800000001", "13800000009"]) == [
                Recipient("m4", "c1", "C4"), UNKNOWN]
            assert await sms.take("out1", ["13800000001"]) == [TAKEN]
            assert await sms.take_all("never") is None
            # taking all of a job: a resend under the same id (appended later) replaces the
            # address's first record, whether the records were unpacked before or not
            for unpacked_first in (False, True):
                job = f"job{unpacked_first}"
                await sms.remember(job, [("13800000002", Recipient("m5", "c1", "C5")),
                                         ("13800000003", Recipient("m6", "c1", "C6"))])
                if unpacked_first:
                    assert await sms.take(job, ["13800000009"]) == [UNKNOWN]
                await sms.remember(job, [("13800000002", Recipient("m5", "c1", "C5b"))])
                assert sorted(await sms.take_all(job) or []) == [
                    ("13800000002", Recipient("m5", "c1", "C5b")),
                    ("13800000003", Recipient("m6", "c1", "C6"))]
                assert await sms.take_all(job) == []
                assert await sms.take(job, ["13800000003"]) == [UNKNOWN]
    run(scenario)


async def _count(rx: Receiving, n: int) -> bool:
    return len(rx.sink.events) >= n


async def _delivered(session: aiohttp.ClientSession, url: str, n: int) -> bool:
    stats = await sim_stats(session, url)
    return int(stats["counts"].get("callbacks_delivered", 0)) >= n





class _CountingSink(MemorySink):
    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def emit(self, events: Sequence[Event]) -> None:
        self.calls += 1
        super().emit(events)


class _CountingIndex(ReceiptIndex):
    def __init__(self, *, redis: redis.asyncio.Redis, channel: str) -> None:
        super().__init__(redis=redis, channel=channel)
        self.calls = 0

    async def take(self, provider_id: str, addresses: Sequence[str]) -> list[Taken]:
        self.calls += 1
        return await super().take(provider_id, addresses)


def test_notifies_arriving_together_share_a_stream_entry(redis_url: str) -> None:
    """Each request is answered after its event is stored; the receipts of notifies that
    arrive together are taken in one call per bucket and their events stored in one append,
    not one of each per voucher; a repeat among them still finds nothing."""
    async def scenario() -> None:
        async with receiving(redis_url) as rx:
            counting = _CountingSink()
            rx.receiver.sink = counting
            index = _CountingIndex(redis=rx.redis, channel="alipay")
            rx.receiver.alipay_index = index
            private = test_alipay.keys().alipay_private
            assert private is not None
            await rx.index("alipay").remember(voucher_bucket("900100"), [
                (f"900{i:03d}", Recipient(f"m{i}", "c1", f"CODE{i}")) for i in range(60)])

            async def notify(i: int, repeat: bool = False) -> int:
                fields = {"notify_id": f"n{i}", "notify_type": "voucher_send_notify",
                          "voucher_id": f"900{i:03d}", "status": "SUCCESS", "app_id": "x"}
                fields["sign"] = rsa2_sign(private, sign_content(fields))
                fields["sign_type"] = "RSA2"
                async with rx.session.post(rx.url + "/callbacks/alipay", data=fields) as resp:
                    assert await resp.text() == "success"
                    # answered only once the event is stored (a repeat has none)
                    assert repeat or any(e.member_id == f"m{i}" for e in counting.events)
                    return resp.status

            statuses = await asyncio.gather(*(notify(i) for i in range(60)), notify(7, True))
            assert set(statuses) == {200}
            assert sorted(e.member_id for e in counting.events) == sorted(
                f"m{i}" for i in range(60))  # voucher 7's repeat made no second event
            assert counting.calls < 60  # 61 notifies, fewer appends
            assert index.calls < 60  # and fewer takes
    run(scenario)


def test_a_failed_append_fails_every_request_waiting_on_it(redis_url: str) -> None:
    class Broken(MemorySink):
        def emit(self, events: Sequence[Event]) -> None:
            raise ConnectionError("stream unavailable")

    async def scenario() -> None:
        async with receiving(redis_url) as rx:
            rx.receiver.sink = Broken()
            event = Event(event_id="delivered:c:m:sms", event_type="delivered",
                          merchant_id="shop1")
            outcomes = await asyncio.gather(*(rx.receiver.publish([event]) for _ in range(3)),
                                            return_exceptions=True)
            assert [type(o) for o in outcomes] == [ConnectionError] * 3
            rx.receiver.sink = rx.sink
            await rx.receiver.publish([event])  # the next request is stored again
            assert rx.sink.events == [event]
    run(scenario)
