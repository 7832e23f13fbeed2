"""The write-ahead ledger's decisions for calls a crash left open, on a real Redis: WeChat and
Alipay resend with the same key only inside their dedupe window, else ``in_doubt``; a channel
that cannot be asked is ``in_doubt``; outcome counts stay exact when a member's outcome is
recorded again."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any

import redis

from analytics.events import Event
from analytics.stream import RedisStreamSink
from channels.base import Message
from dispatcher.campaigns import counts_key
from dispatcher.ledger import BatchLedger, Resolution, resolve_open_calls


class Answers:
    """A resolver answering from a table (the SMS one is tested against the simulator)."""

    def __init__(self, answers: dict[str, Resolution]) -> None:
        self.answers = answers

    async def resolve(self, messages: Sequence[Message]) -> list[Resolution]:
        return [self.answers[m.member_id] for m in messages]


def make_ledger(client: redis.Redis) -> BatchLedger:
    def event(kind: str, member: str, channel: str, reason: str) -> Event:
        return Event(event_id=f"{kind}:c:{member}", event_type=kind, merchant_id="demo",
                     campaign_id="c", member_id=member, channel=channel, reason=reason)

    return BatchLedger(client=client, events=RedisStreamSink(client=client, stream="ev"),
                       campaign_id="c", batch_no=0, make_event=event)


def message(member: str) -> Message:
    return Message(member_id=member, address="13900000000", coupon_code="C",
                   idempotency_key=f"c:{member}", campaign_id="c")


def test_open_calls_resolve_by_channel(redis_client: redis.Redis) -> None:
    ledger = make_ledger(redis_client)
    now = time.time()
    asyncio.run(ledger.before("wechat", [message("fresh")]))
    open_calls = {
        "fresh": ledger.open_calls()["fresh"],  # a second ago: resend with the same key
        "stale": {"wechat": now - 11 * 60},  # past WeChat's 10 minutes: in doubt
        "mass": {"wechat_mass": now - 3600},  # clientmsgid holds 24 h
        "left": {"sms": now - 5}, "never": {"sms": now - 5}, "lost": {"sms": now - 5},
        "nobody": {"fax": now},  # nothing can answer for it
    }
    redis_client.hset("{cmp:c}:wal:0", mapping={"never|sms": now - 5})
    messages = {m: {next(iter(calls)): message(m)} for m, calls in open_calls.items()}
    sms = Answers({"left": "sent", "never": "not_sent", "lost": "unknown"})
    sent, doubt = asyncio.run(resolve_open_calls(ledger, open_calls, messages,
                                                 resolvers={"sms": sms}, now=now))
    assert sent == {"left": "sms"}
    assert doubt == {"stale": "wechat", "lost": "sms", "nobody": "fax"}
    assert "never" not in ledger.open_calls()  # certainly not sent: its record is closed


def test_counts_follow_the_latest_outcome(redis_client: redis.Redis) -> None:
    ledger = make_ledger(redis_client)
    ledger.settle({"a": "sms", "b": "x:sms:isv.BLACK_KEY_CONTROL_LIMIT"}, [])
    ledger.settle({"a": "sms", "b": "wechat", "c": "?:alipay", "d": "-:frequency_cap"}, [])
    raw: Any = redis_client.hgetall(counts_key("c"))
    counts = {k.decode(): int(v) for k, v in raw.items()}
    assert counts == {"sent:sms": 1, "failed:sms": 0, "sent:wechat": 1, "in_doubt:alipay": 1,
                      "skipped:frequency_cap": 1}
    assert ledger.settled(["a", "b", "z"]) == {"a": "sms", "b": "wechat"}


def test_counts_stay_exact_for_a_whole_batch_settled_again(redis_client: redis.Redis) -> None:
    ledger = make_ledger(redis_client)
    members = [f"m{i}" for i in range(500)]
    ledger.settle(dict.fromkeys(members, "wechat_mass"), [])
    ledger.settle(dict.fromkeys(members, "wechat_mass"), [])  # a redelivered batch
    changed = {m: ("?:wechat_mass" if i % 2 else "sms") for i, m in enumerate(members[:200])}
    ledger.settle({**changed, "new": "alipay"}, [])
    raw: Any = redis_client.hgetall(counts_key("c"))
    counts = {k.decode(): int(v) for k, v in raw.items() if int(v)}
    assert counts == {"sent:wechat_mass": 300, "in_doubt:wechat_mass": 100, "sent:sms": 100,
                      "sent:alipay": 1}
    assert ledger.settled(["m0", "m1", "m499"]) == {
        "m0": "sms", "m1": "?:wechat_mass", "m499": "wechat_mass"}


def test_a_batch_lease_has_one_holder(redis_client: redis.Redis) -> None:
    from dispatcher.lease import BatchLease

    first = BatchLease(client=redis_client, campaign_id="c", batch_no=3, ttl_ms=300)
    second = BatchLease(client=redis_client, campaign_id="c", batch_no=3, ttl_ms=300)
    assert first.acquire() and not second.acquire()
    assert first.renew()
    time.sleep(0.4)  # the holder went silent: the lease lapses and another worker takes it
    assert second.acquire()
    assert not first.renew()  # the old holder learns it lost the batch and stops sending
    first.release()  # releasing a lease it no longer holds leaves the new holder's alone
    assert not BatchLease(client=redis_client, campaign_id="c", batch_no=3,
                          ttl_ms=300).acquire()
    second.release()
    assert first.acquire()


def test_a_batch_counts_whole_and_the_last_one_completes(redis_client: redis.Redis) -> None:
    from datetime import UTC, datetime

    from dispatcher.campaigns import Campaign, CampaignStore

    store = CampaignStore(client=redis_client)
    for cid, failures in (("ok", {}), ("bad", {"x1": "x:sms:isv.BLACK_KEY_CONTROL_LIMIT"})):
        store.save(Campaign(campaign_id=cid, merchant_id="demo", name="n", template_id="1",
                            coupon_title="券", status="running", total_batches=2))
        store.save_sizes(cid, [10, 7])
        # Batch 0: part sent, the rest deferred to the SMS window, then finished by the
        # delayed message carrying only the 3 deferred members: the batch counts 10.
        store.mark_batch_deferred(cid, 0, until=datetime.now(UTC), reason="quiet_hours")
        assert store.progress(cid).batches_deferred == 1
        assert store.mark_batch_done(cid, 0, 3, 2) == 10
        assert store.mark_batch_done(cid, 0, 3, 2) == 10  # redelivered: counted once
        assert store.status(cid) == "running"
        if failures:
            BatchLedger(client=redis_client, events=RedisStreamSink(client=redis_client,
                                                                   stream="ev"),
                        campaign_id=cid, batch_no=1,
                        make_event=lambda *a: None).settle(failures, [])  # type: ignore
        assert store.mark_batch_done(cid, 1, 7, 2) == 17
        assert store.progress(cid).batches_deferred == 0
    assert store.status("ok") == "completed"
    assert store.status("bad") == "completed_with_failures"
