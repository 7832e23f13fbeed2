"""A per-member cap on coupon messages across campaigns (``frequency_cap`` of a definition:
at most ``messages`` in any ``days`` days).

Each member has a sorted set of the campaigns that messaged them, scored by time. Admission is
one script per batch: a campaign already in the set is admitted again (a redelivered batch), a
new one only while the member has fewer than ``messages`` campaigns inside the window. The
place is taken before the message is sent, so two campaigns racing cannot both pass a cap of 1.
Keys share the merchant's hash tag (one Redis Cluster slot per merchant).
"""

from __future__ import annotations

from collections.abc import Sequence

import redis

# KEYS: one sorted set per member. ARGV: campaign id, now (s), window (s), limit.
_ADMIT = """
local out = {}
local now, window, limit = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
for i, key in ipairs(KEYS) do
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
  if redis.call('ZSCORE', key, ARGV[1]) then
    out[i] = 1
  elseif redis.call('ZCARD', key) < limit then
    redis.call('ZADD', key, now, ARGV[1])
    redis.call('EXPIRE', key, math.ceil(window))
    out[i] = 1
  else
    out[i] = 0
  end
end
return out
"""


class CampaignFrequencyCap:
    """At most ``messages`` campaigns message a member in ``days`` days."""

    def __init__(self, *, client: redis.Redis, merchant_id: str, messages: int,
                 days: int) -> None:
        self._client = client
        self._prefix = f"{{fcap:{merchant_id}}}:"
        self._limit = messages
        self._window_s = days * 86_400
        self._admit = client.register_script(_ADMIT)

    def admit(self, campaign_id: str, member_ids: Sequence[str], *, now: float) -> list[bool]:
        """For each member, whether this campaign may message them (and take the place)."""
        if not member_ids:
            return []
        keys = [self._prefix + m for m in member_ids]
        reply = self._admit(keys=keys, args=[campaign_id, now, self._window_s, self._limit])
        return [bool(int(x)) for x in reply]
