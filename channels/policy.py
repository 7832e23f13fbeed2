"""``LimitedChannel``: the shared limits a campaign's sends obey, wrapped around any channel.

Checked in this order, so a member refused early costs nothing later: quiet hours (merchant's
night, SMS), the per-member daily frequency cap (all channels), the per-address rolling limit
(Aliyun: same sign + template + number within 24 h), then the account's daily quota. Members
held back get a ``SendResult`` saying why and when to retry; the rest go to the inner channel.
When the provider itself reports its quota exhausted, the shared counter is filled so every
other worker stops asking for the rest of the day.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from redis.exceptions import RedisError

from channels.base import Channel, Message, SendResult
from channels.errors import ChannelUnavailable
from channels.ratelimit import DailyQuota, FrequencyCap, QuietHours, RollingLimit
from infra.metrics import metrics

log = logging.getLogger(__name__)
SHANGHAI = ZoneInfo("Asia/Shanghai")


def _next_midnight(now: datetime, tz: ZoneInfo) -> datetime:
    local = now.astimezone(tz)
    return datetime.combine(local.date() + timedelta(days=1), time(), tzinfo=tz)


class LimitedChannel:
    """A ``Channel`` that applies shared limits before delegating to ``inner``."""

    def __init__(self, inner: Channel, *, quota: DailyQuota | None = None,
                 quiet: QuietHours | None = None, frequency: FrequencyCap | None = None,
                 per_address: RollingLimit | None = None, per_address_retry_s: float = 3600,
                 tz: ZoneInfo = SHANGHAI,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.inner = inner
        self.name = inner.name
        self.max_batch = inner.max_batch
        self._quota = quota
        self._quiet = quiet
        self._frequency = frequency
        self._per_address = per_address
        self._per_address_retry_s = per_address_retry_s
        self._clock = clock
        self._tz = tz

    async def send(self, messages: Sequence[Message]) -> list[SendResult]:
        """Hold back what the limits refuse; send the rest through the inner channel.
        Raises ``ChannelUnavailable`` when the limits cannot be read (nothing was sent)."""
        try:
            return await self._send(messages)
        except RedisError as exc:
            raise ChannelUnavailable(f"shared limits unavailable in Redis: {exc}; nothing "
                                     "was sent, retry the batch") from exc

    async def _send(self, messages: Sequence[Message]) -> list[SendResult]:
        now = self._clock()
        results: list[SendResult | None] = [None] * len(messages)
        if self._quiet is not None:
            resume = self._quiet.resume_at(now)
            if resume is not None:
                return [SendResult(m.member_id, "failed_retryable", code="quiet_hours",
                                   retry_at=resume) for m in messages]
        pending = list(range(len(messages)))
        tomorrow = _next_midnight(now, self._tz)
        if self._frequency is not None:
            admitted = await self._frequency.admit([messages[i].member_id for i in pending],
                                                   now=now)
            for i, ok in zip(pending, admitted, strict=True):
                if not ok:
                    results[i] = SendResult(messages[i].member_id, "failed_retryable",
                                            code="frequency_cap", retry_at=tomorrow)
            pending = [i for i, ok in zip(pending, admitted, strict=True) if ok]
        if self._per_address is not None:
            admitted = await self._per_address.admit([messages[i].address for i in pending])
            retry = now + timedelta(seconds=self._per_address_retry_s)
            for i, ok in zip(pending, admitted, strict=True):
                if not ok:
                    results[i] = SendResult(messages[i].member_id, "failed_retryable",
                                            code="per_address_limit", retry_at=retry)
            pending = [i for i, ok in zip(pending, admitted, strict=True) if ok]
        if self._quota is not None and pending:
            granted = await self._quota.reserve(len(pending), now=now)
            for i in pending[granted:]:
                results[i] = SendResult(messages[i].member_id, "quota_exhausted",
                                        code="daily_quota")
            pending = pending[:granted]
        if pending:
            sent = await self.inner.send([messages[i] for i in pending])
            for i, result in zip(pending, sent, strict=True):
                results[i] = result
            if self._quota is not None:
                await self._settle(self._quota, sent, now)
        return [r for r in results if r is not None]

    @staticmethod
    async def _settle(quota: DailyQuota, sent: Sequence[SendResult], now: datetime) -> None:
        """Give back what the provider did not take, after the sends (failures only logged:
        the sends happened and must be reported as they are)."""
        try:
            if any(r.status == "quota_exhausted" for r in sent):
                # The provider says the day is over: make every worker see it.
                await quota.reserve(quota.limit, now=now)
            else:
                await quota.release(sum(1 for r in sent if r.status != "sent"), now=now)
            left = quota.limit - await quota.used(now=now)
            metrics().quota_remaining.labels(channel=quota.name).set(max(0, left))
        except RedisError as exc:
            log.warning("daily quota not settled after a send: %s", exc)
