"""Delivery receipts counted per campaign and channel (``campaign status``'s delivered column):
in the same transaction as their events, each receipt once, even when a provider pushes it
twice."""

from __future__ import annotations

from datetime import UTC, datetime

import aiohttp
import redis
import redis.asyncio

from analytics.events import Event
from analytics.stream import RedisStreamSink
from channels import callbacks
from channels.receipts import ReceiptIndex
from channels.simulators import sms as sms_sim
from channels.simulators.common import Faults
from channels.sms import AliyunSmsChannel
from dispatcher.campaigns import CampaignStore, receipts_key
from dispatcher.receipt_counts import ReceiptCountingSink
from tests.channels import test_alipay, test_sms
from tests.channels.support import run, serving, sim_stats, wait_for

STREAM = "receipts-test:events"


def _event(kind: str, campaign: str, member: str, channel: str) -> Event:
    return Event(event_id=f"{kind}:{campaign}:{member}:{channel}", event_type=kind,
                 merchant_id="shop1", campaign_id=campaign, member_id=member, channel=channel,
                 ts=datetime.now(UTC))


def test_receipts_are_counted_with_their_events(redis_client: redis.Redis) -> None:
    redis_client.delete(STREAM)
    sink = ReceiptCountingSink(client=redis_client,
                               events=RedisStreamSink(client=redis_client, stream=STREAM))
    sink.emit([_event("delivered", "c1", "m1", "sms"), _event("delivered", "c1", "m2", "sms"),
               _event("failed", "c1", "m3", "sms"), _event("delivered", "c1", "m4", "wechat_mass"),
               _event("delivered", "c2", "m1", "alipay")])
    sink.emit([_event("delivered", "c1", "m5", "sms")])
    sink.emit([])
    store = CampaignStore(client=redis_client)
    assert store.progress("c1").receipts == {"delivered:sms": 3, "undelivered:sms": 1,
                                             "delivered:wechat_mass": 1}
    assert store.progress("c2").receipts == {"delivered:alipay": 1}
    assert store.progress("c1").counts == {}  # sends are counted by the ledger, apart
    assert redis_client.xlen(STREAM) == 2


def test_a_receipt_pushed_twice_is_counted_once(redis_client: redis.Redis,
                                               redis_url: str) -> None:
    redis_client.delete(STREAM)
    redis_client.delete(receipts_key("camp1"))  # the campaign of test_sms.msg

    async def scenario() -> None:
        client = redis.asyncio.Redis.from_url(redis_url)
        sink = ReceiptCountingSink(client=redis_client,
                                   events=RedisStreamSink(client=redis_client, stream=STREAM))
        receiver = callbacks.CallbackReceiver(
            sink=sink, merchant_id="shop1", sms_index=ReceiptIndex(redis=client, channel="sms"),
            wechat_index=ReceiptIndex(redis=client, channel="wechat"),
            alipay_index=ReceiptIndex(redis=client, channel="alipay"),
            wechat_token="cb-token", alipay_public=test_alipay.keys().alipay_public)
        faults = Faults(invalid_share=0.3, duplicate_callback_share=1.0)
        async with serving(callbacks.make_app(receiver)) as rx_url, \
                aiohttp.ClientSession() as session:
            config = test_sms.sim_config(callback_url=rx_url + "/callbacks/sms", faults=faults)
            async with serving(sms_sim.make_app(config)) as url:
                channel = AliyunSmsChannel(config=test_sms.client_config(url), session=session,
                                           receipts=ReceiptIndex(redis=client, channel="sms"))
                sent = await channel.send([test_sms.msg(i) for i in range(500, 530)])
                assert {r.status for r in sent} == {"sent"}

                async def pushed_twice() -> bool:  # every report push arrived twice
                    counts = (await sim_stats(session, url))["counts"]
                    pushes = int(counts.get("receipt_batches_duplicated", 0))
                    return pushes > 0 and int(counts.get("callbacks_delivered", 0)) >= 2 * (
                        pushes) and _stored(redis_client) == 30

                await wait_for(pushed_twice)
                stats = await sim_stats(session, url)
        await client.aclose()
        receipts = CampaignStore(client=redis_client).progress("camp1").receipts
        assert receipts == {"delivered:sms": stats["counts"]["receipts_ok"],
                            "undelivered:sms": stats["counts"]["receipts_failed"]}
        assert sum(receipts.values()) == 30 == _stored(redis_client)

    run(scenario)


def _stored(client: redis.Redis) -> int:
    return sum(int(fields[b"n"]) for _, fields in client.xrange(STREAM))
