"""Rate limits and quotas shared by every worker process and host, kept in Redis (keys ``ch:``).

- ``RateLimiter``: a token bucket per provider account (requests per second, with a burst).
  Callers reserve many tokens in one call and sleep for the deficit, so the cost is one round
  trip per chunk, not per message.
- ``DailyQuota``: a counter per merchant-local day; ``reserve`` grants what is left.
- ``RollingLimit``: at most ``limit`` sends per address in a rolling window (Aliyun counts
  same sign + template + number over 24 h), checked and recorded for a whole batch in one script.
- ``FrequencyCap``: at most ``limit`` messages per member per merchant-local day, all channels.
- ``QuietHours``: no SMS at night in the merchant's timezone.

All scripts read the clock with ``TIME`` on the server so hosts with skewed clocks agree.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from redis.exceptions import RedisError

from channels.base import RedisClient
from infra.metrics import metrics

log = logging.getLogger(__name__)
_BUCKET = """
local rate, burst, want = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens, at = tonumber(state[1]) or burst, tonumber(state[2]) or now
tokens = math.min(burst, tokens + (now - at) * rate / 1000)
tokens = tokens - want
redis.call('HSET', KEYS[1], 'tokens', tokens, 'at', now)
redis.call('PEXPIRE', KEYS[1], math.ceil((burst - tokens) * 1000 / rate) + 1000)
if tokens >= 0 then return 0 end
return math.ceil(-tokens * 1000 / rate)
"""

_QUOTA = """
local limit, want, ttl = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local used = tonumber(redis.call('GET', KEYS[1]) or '0')
local grant = math.max(0, math.min(want, limit - used))
if grant > 0 then
  redis.call('INCRBY', KEYS[1], grant)
  redis.call('EXPIRE', KEYS[1], ttl)
end
return grant
"""

_ROLLING = """
local limit, window = tonumber(ARGV[1]), tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local allowed = {}
for i, key in ipairs(KEYS) do
  redis.call('ZREMRANGEBYSCORE', key, 0, now - window)
  if redis.call('ZCARD', key) < limit then
    redis.call('ZADD', key, now, now .. ':' .. t[2] .. ':' .. i)
    redis.call('PEXPIRE', key, window)
    allowed[i] = 1
  else
    allowed[i] = 0
  end
end
return allowed
"""

_CAP = """
local limit, ttl = tonumber(ARGV[1]), tonumber(ARGV[2])
local allowed = {}
for i, key in ipairs(KEYS) do
  local n = redis.call('INCR', key)
  if n == 1 then redis.call('EXPIRE', key, ttl) end
  if n <= limit then allowed[i] = 1 else redis.call('DECR', key); allowed[i] = 0 end
end
return allowed
"""


class RateLimiter:
    """Token bucket ``ch:rate:<name>``: ``rate`` tokens per second, at most ``burst`` saved."""

    def __init__(self, *, redis: RedisClient, name: str, rate: float,
                 burst: float | None = None) -> None:
        self._redis = redis
        self._key = f"ch:rate:{name}"
        self._rate = rate
        self._burst = burst if burst is not None else rate

    async def acquire(self, n: int = 1) -> float:
        """Take ``n`` tokens, sleeping until the bucket covers them; returns seconds slept."""
        try:
            wait_ms = int(await self._redis.eval(  # type: ignore[misc]
                _BUCKET, 1, self._key, self._rate, self._burst, n))
        except RedisError as exc:
            # Pacing is a courtesy to the provider, whose own throttling codes still apply:
            # a send already under way must not fail half-done because Redis blinked.
            log.warning("rate limiter %s unavailable, not pacing: %s", self._key, exc)
            return 0.0
        if wait_ms > 0:
            metrics().ratelimit_wait_seconds.labels(limiter=self._key[8:]).observe(wait_ms / 1000)
            await asyncio.sleep(wait_ms / 1000)
        return wait_ms / 1000


def _local_day(tz: ZoneInfo, now: datetime | None) -> tuple[str, int]:
    """(YYYYMMDD of the merchant's day, seconds until a day after its end)."""
    moment = (now or datetime.now(tz)).astimezone(tz)
    tomorrow = datetime.combine(moment.date() + timedelta(days=1), time(), tzinfo=tz)
    return moment.strftime("%Y%m%d"), int((tomorrow - moment).total_seconds()) + 86_400


class DailyQuota:
    """``ch:quota:<name>:<day>``: at most ``limit`` per merchant-local day."""

    def __init__(self, *, redis: RedisClient, name: str, limit: int,
                 tz: ZoneInfo) -> None:
        self._redis = redis
        self._name = name
        self.name = name
        self.limit = limit
        self._tz = tz

    async def reserve(self, want: int, *, now: datetime | None = None) -> int:
        """Grant up to ``want`` of today's remaining quota (0 when it is used up)."""
        day, ttl = _local_day(self._tz, now)
        return int(await self._redis.eval(  # type: ignore[misc]
            _QUOTA, 1, f"ch:quota:{self._name}:{day}", self.limit, want, ttl))

    async def release(self, n: int, *, now: datetime | None = None) -> None:
        """Give back ``n`` reserved but unused (the provider refused before counting them)."""
        if n > 0:
            day, _ = _local_day(self._tz, now)
            await self._redis.decrby(f"ch:quota:{self._name}:{day}", n)

    async def used(self, *, now: datetime | None = None) -> int:
        day, _ = _local_day(self._tz, now)
        return int(await self._redis.get(f"ch:quota:{self._name}:{day}") or 0)


class RollingLimit:
    """``ch:roll:{<name>}:<address>``: at most ``limit`` per address within ``window_s``."""

    def __init__(self, *, redis: RedisClient, name: str, limit: int,
                 window_s: float = 86_400) -> None:
        self._redis = redis
        self._name = name
        self.limit = limit
        self.window_s = window_s

    async def admit(self, addresses: Sequence[str]) -> list[bool]:
        """Record a send for each admitted address; False where it is at its limit."""
        if not addresses:
            return []
        # One hash tag for the name: a batch's keys share a Redis Cluster slot (one script).
        keys = [f"ch:roll:{{{self._name}}}:{a}" for a in addresses]
        flags = await self._redis.eval(  # type: ignore[misc]
            _ROLLING, len(keys), *keys, self.limit, int(self.window_s * 1000))
        return [bool(f) for f in flags]


class FrequencyCap:
    """``ch:freq:{<day>}:<member>``: at most ``limit`` messages per member per local day."""

    def __init__(self, *, redis: RedisClient, limit: int, tz: ZoneInfo) -> None:
        self._redis = redis
        self.limit = limit
        self._tz = tz

    async def admit(self, member_ids: Sequence[str], *, now: datetime | None = None
                    ) -> list[bool]:
        if not member_ids:
            return []
        day, ttl = _local_day(self._tz, now)
        keys = [f"ch:freq:{{{day}}}:{m}" for m in member_ids]  # one cluster slot per day
        flags = await self._redis.eval(_CAP, len(keys), *keys, self.limit, ttl)  # type: ignore[misc]
        return [bool(f) for f in flags]


@dataclass(frozen=True)
class QuietHours:
    """No sends from ``start`` to ``end`` (merchant-local; may wrap past midnight)."""

    tz: ZoneInfo
    start: time = time(21, 0)
    end: time = time(8, 0)

    @classmethod
    def parse(cls, text: str, tz: ZoneInfo) -> QuietHours | None:
        """``"21:00-08:00"`` -> QuietHours; ``""``/``"off"`` -> None. ``ValueError`` if bad."""
        if text.strip().lower() in ("", "off"):
            return None
        start, sep, end = text.partition("-")
        try:
            if not sep:
                raise ValueError
            return cls(tz=tz, start=time.fromisoformat(start.strip()),
                       end=time.fromisoformat(end.strip()))
        except ValueError:
            raise ValueError(f"quiet hours {text!r}: expected HH:MM-HH:MM such as "
                             "21:00-08:00, or off") from None

    def resume_at(self, now: datetime) -> datetime | None:
        """When sending may resume, or None when ``now`` is outside quiet hours."""
        local = now.astimezone(self.tz)
        clock = local.time()
        if self.start <= self.end:
            quiet = self.start <= clock < self.end
        else:
            quiet = clock >= self.start or clock < self.end
        if not quiet:
            return None
        day = local.date() if clock < self.end else local.date() + timedelta(days=1)
        return datetime.combine(day, self.end, tzinfo=self.tz)
