"""The worker side of a campaign: one Dramatiq message = one batch of members.

For a batch the worker (1) issues the coupons (atomic catalog scripts of up to 1,000 members),
(2) emits the ``issued`` events, (3) sends to the members not yet sent through the router, which
tries the campaign's channels in order and falls back on permanent failures and exhausted
quotas, and (4) records who was sent and marks the batch done. Every step tolerates
redelivery: issuance returns ``existing`` for members already issued, events carry
deterministic ids, and the per-batch ``sent`` hash keeps a redelivered batch from messaging
anyone twice. A retryable provider failure raises ``BatchRetryable`` after the successes are
recorded, so the retry only sends the rest.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, cast
from zoneinfo import ZoneInfo

import dramatiq
import redis
from dramatiq.brokers.redis import RedisBroker
from dramatiq.middleware import CurrentMessage

from analytics.events import Event
from analytics.stream import RedisStreamSink
from catalog.errors import InvalidInput, NotFound
from catalog.issuance import IssuedCoupon, issue_batch
from channels.base import Channel, Message, SendResult
from channels.routing import Member, Router
from dispatcher.async_runner import AsyncRunner
from dispatcher.broker import QUEUE
from dispatcher.campaigns import Campaign, CampaignStore, sent_key
from dispatcher.errors import BatchRetryable, CampaignError

PERMANENT = (CampaignError, NotFound, InvalidInput)
MAX_RETRIES = 10
DEFER_AFTER_S = 60.0  # waits longer than this become a delayed message, not a retry


@dataclass(frozen=True)
class Deferral:
    """Members of a batch to process again after ``delay_ms``."""

    members: list[list[str]]
    delay_ms: int


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class WorkerDeps:
    """Everything a worker process builds once in its composition root."""

    redis: redis.Redis
    campaigns: CampaignStore
    events: RedisStreamSink
    channels: Mapping[str, Channel]
    runner: AsyncRunner
    secret: bytes
    timezone: ZoneInfo
    clock: Callable[[], datetime] = field(default=_utcnow)


def message_variables(campaign: Campaign, *, channel: str, name: str, code: str) -> dict[str, str]:
    """Template variables per channel. SMS uses campaign-wide values only, so one SendSms
    request carries up to 1,000 numbers; WeChat template messages are per member anyway."""
    expiry = str(campaign.extra.get("expiry", ""))
    if channel == "sms":
        return {"name": "会员", "coupon": campaign.coupon_title, "expiry": expiry,
                "store": str(campaign.extra.get("stores", "全部门店"))}
    return {"name": name or "会员", "coupon": campaign.coupon_title, "code": code,
            "expiry": expiry}


ISSUE_CHUNK = 1000  # members per issuance script call: keeps Redis free for redemptions


class BatchProcessor:
    def __init__(self, *, deps: WorkerDeps) -> None:
        self._deps = deps

    def __call__(
        self, campaign_id: str, batch_no: int, members: Sequence[Sequence[str]], *,
        final_attempt: bool = False,
    ) -> Deferral | None:
        """Process one batch; returns a ``Deferral`` when part of it must wait a long time.
        On the ``final_attempt`` retryable failures are recorded as failures instead."""
        deps = self._deps
        campaign = deps.campaigns.get(campaign_id)
        if campaign.status == "cancelled":
            deps.campaigns.mark_batch_done(campaign_id, batch_no, len(members))
            return None
        now = deps.clock()
        rows = [[str(v) for v in row] for row in members]
        ids = [row[0] for row in rows]
        issued: list[IssuedCoupon] = []
        for start in range(0, len(ids), ISSUE_CHUNK):
            issued += issue_batch(
                deps.redis, merchant_id=campaign.merchant_id, campaign_id=campaign_id,
                template_id=campaign.template_id, member_ids=ids[start : start + ISSUE_CHUNK],
                now=now, secret=deps.secret, tz=deps.timezone,
            )
        deps.events.emit([self._issue_event(campaign, coupon, now) for coupon in issued])

        key = sent_key(campaign_id, batch_no)
        done: list[Any] = deps.redis.hmget(key, ids) if ids else []
        codes: dict[str, str] = {}
        to_send: list[Member] = []
        names: dict[str, str] = {}
        for row, coupon, already in zip(rows, issued, done, strict=True):
            if already is None and coupon.status in ("new", "existing"):
                member_id, name, openid, alipay, phone, _primary = row
                codes[member_id], names[member_id] = coupon.code, name
                to_send.append(Member(member_id=member_id, openid=openid,
                                      subscribed=bool(openid), alipay_user_id=alipay,
                                      phone=phone, sms_consent=bool(phone)))

        def make(member: Member, channel: str, address: str) -> Message:
            code = codes[member.member_id]
            return Message(
                member_id=member.member_id, address=address, coupon_code=code,
                idempotency_key=f"{campaign_id}:{member.member_id}", campaign_id=campaign_id,
                variables=message_variables(campaign, channel=channel,
                                            name=names[member.member_id], code=code),
            )

        router = Router(channels=deps.channels, order=campaign.channels)
        deliveries = deps.runner.run(router.deliver(to_send, make)) if to_send else []
        finished: dict[str, str] = {}
        outcome: list[Event] = []
        retry: list[SendResult] = []
        for delivery in deliveries:
            result, member_id = delivery.result, delivery.member_id
            if result.status == "sent":
                finished[member_id] = delivery.channel
                outcome.append(self._event("sent", campaign, member_id, now,
                                           code=codes[member_id], channel=delivery.channel))
            elif result.status in ("failed_permanent", "quota_exhausted") or final_attempt:
                finished[member_id] = f"x:{result.code}"
                outcome.append(self._event("failed", campaign, member_id, now,
                                           code=codes[member_id], channel=delivery.channel,
                                           reason=result.code or result.status))
            else:
                retry.append(result)
        pipe = deps.redis.pipeline(transaction=True)
        if finished:
            pipe.hset(key, mapping=cast("Mapping[Any, Any]", finished))
            pipe.expire(key, 14 * 86400)
        deps.events.emit_in(pipe, outcome)
        pipe.execute()
        if not retry:
            deps.campaigns.mark_batch_done(campaign_id, batch_no, len(members))
            return None
        wait = self._wait_seconds(retry, now)
        if wait is None or wait < DEFER_AFTER_S:
            raise BatchRetryable(f"{len(retry)} members of batch {batch_no} to retry later")
        # A long wait (SMS quiet hours, a daily quota): hand the rest of the batch to a delayed
        # message instead of burning retries; the batch counts as deferred until it finishes.
        deps.campaigns.mark_batch_deferred(campaign_id, batch_no)
        waiting = {r.member_id for r in retry}
        rest = [row for row in rows if row[0] in waiting]
        return Deferral(members=rest, delay_ms=int(wait * 1000))

    @staticmethod
    def _wait_seconds(retry: Sequence[SendResult], now: datetime) -> float | None:
        """Seconds until every retryable member may be retried; None if some gave no time."""
        if any(r.retry_at is None for r in retry):
            return None
        return max((r.retry_at - now).total_seconds() for r in retry if r.retry_at is not None)

    def _issue_event(self, campaign: Campaign, coupon: IssuedCoupon, now: datetime) -> Event:
        if coupon.status in ("new", "existing"):
            return self._event("issued", campaign, coupon.member_id, now, code=coupon.code)
        return self._event("failed", campaign, coupon.member_id, now, reason=coupon.status)

    @staticmethod
    def _event(kind: str, campaign: Campaign, member_id: str, now: datetime, *, code: str = "",
               channel: str = "", reason: str = "") -> Event:
        return Event(
            event_id=f"{kind}:{campaign.campaign_id}:{member_id}", event_type=kind,
            merchant_id=campaign.merchant_id, campaign_id=campaign.campaign_id,
            member_id=member_id, coupon_code=code, channel=channel, reason=reason, ts=now,
        )


def register_actors(
    broker: RedisBroker, *, processor: BatchProcessor | None
) -> dramatiq.Actor[Any, Any]:
    """Declare the batch actor on ``broker``. Enqueue-only callers pass ``processor=None``."""

    def process_batch(campaign_id: str, batch_no: int, members: list[list[str]]) -> None:
        if processor is None:
            raise RuntimeError("this process only enqueues batches; run `quanpai worker`")
        message = CurrentMessage.get_current_message()
        retries = int(message.options.get("retries", 0)) if message is not None else 0
        deferral = processor(campaign_id, batch_no, members, final_attempt=retries >= MAX_RETRIES)
        if deferral is not None:
            actor.send_with_options(args=(campaign_id, batch_no, deferral.members),
                                    delay=deferral.delay_ms)

    if not any(isinstance(m, CurrentMessage) for m in broker.middleware):
        broker.add_middleware(CurrentMessage())
    declare = dramatiq.actor(
        broker=broker, actor_name="process_batch", queue_name=QUEUE,
        max_retries=MAX_RETRIES, min_backoff=500, max_backoff=60_000, throws=PERMANENT,
    )
    actor: dramatiq.Actor[Any, Any] = declare(process_batch)
    return actor
