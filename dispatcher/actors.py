"""The worker side of a campaign: one Dramatiq message = one batch of members.

For a batch the worker (1) issues the coupons (atomic catalog scripts of up to 1,000 members),
(2) emits the ``issued`` events, (3) resolves the provider calls a crash left open
(``dispatcher.ledger``), (4) sends to the members not yet settled through the router, recording
every request before it leaves and its outcome right after, and (5) marks the batch done, which
completes the campaign when it was the last. Every step tolerates redelivery: issuance returns
``existing`` for members already issued, events carry deterministic ids, and the ledger keeps a
redelivered batch from messaging anyone twice. A retryable provider failure raises
``BatchRetryable`` after the successes are recorded, so the retry only sends the rest. A batch
that fails permanently or exhausts its retries goes to the campaign's dead-letter set, its
unsettled members ``failed`` with the code; ``quanpai campaign requeue`` runs it again.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import dramatiq
import redis
from dramatiq.brokers.redis import RedisBroker
from dramatiq.middleware import CurrentMessage

from analytics.events import CampaignEventMaker, Event, campaign_event_maker
from analytics.stream import RedisStreamSink
from catalog.errors import InvalidInput, NotFound
from catalog.issuance import IssuedCoupon, issue_batch
from channels.base import Channel, Message, SendResult
from channels.errors import ChannelConfigError
from channels.routing import HELD, Member, Router, address
from dispatcher.async_runner import AsyncRunner
from dispatcher.broker import HEARTBEAT_TIMEOUT_MS, QUEUE
from dispatcher.campaigns import Campaign, CampaignStore
from dispatcher.errors import BatchRetryable, CampaignError, CampaignStateError
from dispatcher.frequency import CampaignFrequencyCap
from dispatcher.killpoints import KillPoints
from dispatcher.lease import BatchLease
from dispatcher.ledger import BatchLedger, Resolver, resolve_open_calls
from dispatcher.telemetry import count_issued
from dispatcher.variables import variables_filler

__all__ = ["BatchProcessor", "Deferral", "WorkerDeps", "register_actors"]

PERMANENT = (CampaignError, NotFound, InvalidInput, ChannelConfigError)
MAX_RETRIES = 10
DEFER_AFTER_S = 60.0  # waits longer than this become a delayed message, not a retry
PAUSED_RECHECK_MS = 1000  # a paused campaign's batches look again this often
STATUS_RECHECK_S = 0.5  # how stale a batch's view of pause/cancel may be
ISSUE_CHUNK = 1000  # members per issuance script call: keeps Redis free for redemptions


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
    kill: KillPoints = field(default_factory=KillPoints)
    lease_ms: int = HEARTBEAT_TIMEOUT_MS  # the broker's heartbeat timeout


def _resolvers(channels: Mapping[str, Channel]) -> dict[str, Resolver]:
    """Channels that can say whether an open call reached its member (SMS), unwrapped from
    their shared-limit wrapper."""
    out: dict[str, Resolver] = {}
    for name, channel in channels.items():
        inner: Any = getattr(channel, "inner", channel)
        if hasattr(inner, "resolve"):
            out[name] = inner
    return out


class BatchProcessor:
    def __init__(self, *, deps: WorkerDeps) -> None:
        self._deps = deps
        self._resolvers = _resolvers(deps.channels)

    def __call__(
        self, campaign_id: str, batch_no: int, members: Sequence[Sequence[str]], *,
        final_attempt: bool = False,
    ) -> Deferral | None:
        """Process one batch; returns a ``Deferral`` when part of it must wait (a later window,
        or a paused campaign). On the ``final_attempt`` retryable failures are recorded as
        failures instead."""
        deps = self._deps
        campaign = deps.campaigns.get(campaign_id)
        rows = [[str(v) for v in row] for row in members]
        if campaign.status == "cancelled":
            self._finish(campaign, batch_no, len(rows))
            return None
        if campaign.status == "paused":
            return Deferral(members=rows, delay_ms=PAUSED_RECHECK_MS)
        if campaign.status == "scheduled":
            # Another worker may have started it, or an operator paused it meanwhile.
            with contextlib.suppress(CampaignStateError):
                deps.campaigns.transition(campaign_id, "start")
        lease = BatchLease(client=deps.redis, campaign_id=campaign_id, batch_no=batch_no,
                           ttl_ms=deps.lease_ms)
        if not lease.acquire():  # another worker is on it (its holder looked dead)
            return Deferral(members=rows, delay_ms=PAUSED_RECHECK_MS)
        try:
            return self._process(campaign, batch_no, rows, lease, final_attempt=final_attempt)
        finally:
            lease.release()

    def _process(self, campaign: Campaign, batch_no: int, rows: list[list[str]],
                 lease: BatchLease, *, final_attempt: bool) -> Deferral | None:
        deps = self._deps
        campaign_id = campaign.campaign_id
        now = deps.clock()
        deps.kill.reached("before_issue")
        ids = [row[0] for row in rows]
        issued: list[IssuedCoupon] = []
        for start in range(0, len(ids), ISSUE_CHUNK):
            issued += issue_batch(
                deps.redis, merchant_id=campaign.merchant_id, campaign_id=campaign_id,
                template_id=campaign.template_id, member_ids=ids[start : start + ISSUE_CHUNK],
                now=now, secret=deps.secret, tz=deps.timezone,
            )
        make_event = self._event_maker(campaign, now)
        deps.events.emit([self._issue_event(make_event, coupon) for coupon in issued])
        count_issued(issued)
        deps.kill.reached("after_issue")

        codes: dict[str, str] = {c.member_id: c.code for c in issued if c.code}

        def event(kind: str, member_id: str, channel: str, reason: str) -> Event:
            return make_event(kind, member_id, codes.get(member_id, ""), channel, reason)

        ledger = BatchLedger(
            client=deps.redis, events=deps.events, campaign_id=campaign_id, batch_no=batch_no,
            make_event=event, gate=self._gate(campaign_id, lease),
            on_before=lambda channel: deps.kill.reached("in_flight", channel),
            on_after=lambda channel: deps.kill.reached("after_answer", channel),
            throttle=self._throttle(campaign),
        )
        settled = ledger.settled(ids)
        outcomes: dict[str, str] = {}
        outcome_events: list[Event] = []
        names: dict[str, str] = {}
        candidates: list[Member] = []
        for row, coupon in zip(rows, issued, strict=True):
            member_id, name, openid, alipay, phone, _primary = row
            if member_id in settled:
                continue
            if not coupon.code:  # out of stock or per-member limit: nothing to announce
                outcomes[member_id] = f"-:{coupon.status}"
                continue
            names[member_id] = name
            candidates.append(Member(member_id=member_id, openid=openid,
                                     subscribed=bool(openid), alipay_user_id=alipay,
                                     phone=phone, sms_consent=bool(phone)))

        fillers: dict[str, Callable[[str, str], dict[str, str]]] = {}

        def make(member: Member, channel: str, where: str) -> Message:
            code = codes[member.member_id]
            fill = fillers.get(channel)
            if fill is None:
                fill = fillers[channel] = variables_filler(campaign, channel=channel)
            return Message(
                member_id=member.member_id, address=where, coupon_code=code,
                idempotency_key=f"{campaign_id}:{member.member_id}", campaign_id=campaign_id,
                variables=fill(names[member.member_id], code),
            )

        to_send = self._resolve(ledger, candidates, make, outcomes, outcome_events, event)
        to_send = self._cap(campaign, to_send, outcomes)
        ledger.settle(outcomes, outcome_events)
        outcomes, outcome_events = {}, []

        router = Router(channels=deps.channels, order=campaign.channels)
        deliveries = (deps.runner.run(router.deliver(to_send, make, ledger))
                      if to_send else [])
        retry: list[SendResult] = []
        held = 0
        for delivery in deliveries:
            result, member_id, channel = delivery.result, delivery.member_id, delivery.channel
            if result.status == "sent":
                continue  # recorded by the ledger right after the provider answered
            if result.code == HELD:
                held += 1
            elif result.code == "unreachable":
                outcomes[member_id] = "-:unreachable"
                outcome_events.append(event("failed", member_id, "", "unreachable"))
            elif result.status in ("failed_permanent", "quota_exhausted") or final_attempt:
                outcomes[member_id] = f"x:{channel}:{result.code or result.status}"
                outcome_events.append(event("failed", member_id, channel,
                                            result.code or result.status))
            else:
                retry.append(result)
        ledger.settle(outcomes, outcome_events)
        if held:
            if deps.campaigns.status(campaign_id) == "cancelled":
                self._finish(campaign, batch_no, len(rows))
                return None
            waiting = {d.member_id for d in deliveries if d.result.code == HELD}
            waiting |= {r.member_id for r in retry}
            return Deferral(members=[r for r in rows if r[0] in waiting],
                            delay_ms=PAUSED_RECHECK_MS)
        if not retry:
            self._finish(campaign, batch_no, len(rows))
            return None
        wait = self._wait_seconds(retry, now)
        if wait is None or wait < DEFER_AFTER_S:
            raise BatchRetryable(f"{len(retry)} members of batch {batch_no} to retry later")
        # A long wait (SMS quiet hours, a daily quota): hand the rest of the batch to a delayed
        # message instead of burning retries; the batch counts as deferred until it finishes.
        until = max(r.retry_at for r in retry if r.retry_at is not None)
        deps.campaigns.mark_batch_deferred(campaign_id, batch_no, until=until,
                                           reason=retry[0].code or "later")
        waiting = {r.member_id for r in retry}
        return Deferral(members=[row for row in rows if row[0] in waiting],
                        delay_ms=int(wait * 1000))

    def _resolve(self, ledger: BatchLedger, candidates: list[Member],
                 make: Callable[[Member, str, str], Message], outcomes: dict[str, str],
                 outcome_events: list[Event], event: Callable[[str, str, str, str], Event],
                 ) -> list[Member]:
        """Settle the members whose call a crash left open; the rest may be sent."""
        open_calls = ledger.open_calls()
        pending = {m.member_id: m for m in candidates if m.member_id in open_calls}
        if not pending:
            return candidates
        messages: dict[str, dict[str, Message]] = {}
        for member_id, member in pending.items():
            for channel in open_calls[member_id]:
                where = address(member, channel)
                if where:
                    messages.setdefault(member_id, {})[channel] = make(member, channel, where)
        sent, doubt = self._deps.runner.run(resolve_open_calls(
            ledger, {m: open_calls[m] for m in pending}, messages,
            resolvers=self._resolvers, now=time.time()))
        for member_id, channel in sent.items():
            outcomes[member_id] = channel
            outcome_events.append(event("sent", member_id, channel, "resolved"))
        for member_id, channel in doubt.items():
            outcomes[member_id] = f"?:{channel}"
            outcome_events.append(event("in_doubt", member_id, channel, "unresolved"))
        return [m for m in candidates if m.member_id not in sent and m.member_id not in doubt]

    def _gate(self, campaign_id: str, lease: BatchLease) -> Callable[[], bool]:
        """Whether the batch may send its next request: the campaign is running (read at
        most every half second, so a pause or cancel holds the next request within that) and
        this worker still holds the batch's lease (renewed every third of its life)."""
        store, ttl_s = self._deps.campaigns, self._deps.lease_ms / 1000
        state = {"checked": 0.0, "running": False, "renewed": time.monotonic()}

        def gate() -> bool:
            now = time.monotonic()
            if now - state["checked"] >= STATUS_RECHECK_S:
                state["running"] = store.status(campaign_id) == "running"
                state["checked"] = now
            if not state["running"]:
                return False
            if now - state["renewed"] >= ttl_s / 3:
                if not lease.renew():
                    return False
                state["renewed"] = now
            return True

        return gate

    def _throttle(self, campaign: Campaign) -> Callable[[int], Awaitable[None]] | None:
        """The campaign's send-rate cap (messages a second, all workers together), or None."""
        rate = campaign.extra.get("send_rate_per_s")
        if not rate:
            return None
        client, prefix = self._deps.redis, f"{{cmp:{campaign.campaign_id}}}:rate:"

        async def wait_turn(n: int) -> None:
            # One counter per wall-clock second; a request larger than the rate goes alone in
            # its second. Sync Redis on the loop: one round trip per provider request.
            while True:
                second = int(time.time())
                used = int(client.incrby(prefix + str(second), n))
                if used == n:
                    client.expire(prefix + str(second), 5)
                if used <= int(rate) or used == n:
                    return
                client.decrby(prefix + str(second), n)
                await asyncio.sleep(max(0.0, second + 1 - time.time()))

        return wait_turn

    def _cap(self, campaign: Campaign, members: list[Member],
             outcomes: dict[str, str]) -> list[Member]:
        """Members the campaign's cross-campaign frequency cap admits (the rest skipped)."""
        spec = campaign.extra.get("frequency_cap")
        if not spec or not members:
            return members
        cap = CampaignFrequencyCap(client=self._deps.redis, merchant_id=campaign.merchant_id,
                                   messages=int(spec[0]), days=int(spec[1]))
        admitted = cap.admit(campaign.campaign_id, [m.member_id for m in members],
                             now=time.time())
        for member, ok in zip(members, admitted, strict=True):
            if not ok:
                outcomes[member.member_id] = "-:frequency_cap"
        return [m for m, ok in zip(members, admitted, strict=True) if ok]

    def _finish(self, campaign: Campaign, batch_no: int, size: int) -> None:
        self._deps.campaigns.mark_batch_done(campaign.campaign_id, batch_no, size,
                                             campaign.total_batches)
        self._deps.kill.reached("before_ack")

    def dead_letter(self, campaign_id: str, batch_no: int, members: Sequence[Sequence[str]],
                    reason: str) -> None:
        """Give up on a batch: dead-letter it, its unsettled members failed with ``reason``."""
        deps = self._deps
        campaign = deps.campaigns.get(campaign_id)
        rows = [[str(v) for v in row] for row in members]
        make_event = self._event_maker(campaign, deps.clock())

        def event(kind: str, member_id: str, channel: str, why: str) -> Event:
            return make_event(kind, member_id, "", channel, why)

        ledger = BatchLedger(client=deps.redis, events=deps.events, campaign_id=campaign_id,
                             batch_no=batch_no, make_event=event)
        settled = ledger.settled([r[0] for r in rows])
        code = reason.split(": ", 1)[0].strip().replace(" ", "_")[:64] or "error"
        outcomes, events = {}, []
        for row in rows:
            if row[0] not in settled:
                channel = row[5] or "none"
                outcomes[row[0]] = f"x:{channel}:{code}"
                events.append(event("failed", row[0], channel, code))
        ledger.settle(outcomes, events)
        deps.campaigns.dead_letter(campaign_id, batch_no, reason=reason, members=rows)
        self._finish(campaign, batch_no, len(rows))

    @staticmethod
    def _wait_seconds(retry: Sequence[SendResult], now: datetime) -> float | None:
        """Seconds until every retryable member may be retried; None if some gave no time."""
        if any(r.retry_at is None for r in retry):
            return None
        return max((r.retry_at - now).total_seconds() for r in retry if r.retry_at is not None)

    @staticmethod
    def _issue_event(make_event: CampaignEventMaker, coupon: IssuedCoupon) -> Event:
        if coupon.code:  # new, existing, or a duration card extended
            reason = "extended" if coupon.status == "extended" else ""
            return make_event("issued", coupon.member_id, coupon.code, "", reason)
        return make_event("failed", coupon.member_id, "", "", coupon.status)

    @staticmethod
    def _event_maker(campaign: Campaign, now: datetime) -> CampaignEventMaker:
        return campaign_event_maker(merchant_id=campaign.merchant_id,
                                    campaign_id=campaign.campaign_id, ts=now)


def _reason(exc: BaseException) -> str:
    """``<code>: <message>``: the provider's code where the error carries one."""
    code = getattr(exc, "code", "") or type(exc).__name__
    return f"{code}: {exc}"[:500]


def register_actors(
    broker: RedisBroker, *, processor: BatchProcessor | None, max_retries: int = MAX_RETRIES,
) -> dramatiq.Actor[Any, Any]:
    """Declare the batch actor on ``broker``. Enqueue-only callers pass ``processor=None``."""

    def process_batch(campaign_id: str, batch_no: int, members: list[list[str]]) -> None:
        if processor is None:
            raise RuntimeError("this process only enqueues batches; run `quanpai worker`")
        message = CurrentMessage.get_current_message()
        retries = int(message.options.get("retries", 0)) if message is not None else 0
        final = retries >= max_retries
        try:
            deferral = processor(campaign_id, batch_no, members, final_attempt=final)
        except PERMANENT as exc:
            processor.dead_letter(campaign_id, batch_no, members, _reason(exc))
            return
        except Exception as exc:
            if not final:
                raise
            processor.dead_letter(campaign_id, batch_no, members, _reason(exc))
            return
        if deferral is not None:
            actor.send_with_options(args=(campaign_id, batch_no, deferral.members),
                                    delay=deferral.delay_ms)

    if not any(isinstance(m, CurrentMessage) for m in broker.middleware):
        broker.add_middleware(CurrentMessage())
    declare = dramatiq.actor(
        broker=broker, actor_name="process_batch", queue_name=QUEUE,
        max_retries=max_retries + 1, min_backoff=500, max_backoff=60_000,
    )
    actor: dramatiq.Actor[Any, Any] = declare(process_batch)
    return actor
