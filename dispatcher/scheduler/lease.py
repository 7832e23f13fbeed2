"""Leadership among scheduler copies: a Redis lease with a fencing token.

The holder renews the lease every few seconds; a copy that finds it held stands by and tries
again. When the holder dies its lease expires (``ttl`` seconds, 10 by default) and the next try
takes it, so a standby takes over well within 30 s. Every take-over increments the fencing
token; each write the scheduler makes checks, inside the same Redis script, that the lease
still carries its token (``store.py``), so a holder that stalled past its lease (a long GC
pause, a frozen VM) and wakes up cannot write over its successor.
"""

from __future__ import annotations

import redis

from dispatcher.scheduler.store import text

# Take the lease if free (new token) or renew it if ours; 0 when another copy holds it.
_ACQUIRE = """
local current = redis.call('GET', KEYS[1])
if current then
  local token, holder = string.match(current, '^(%d+):(.*)$')
  if holder == ARGV[1] then
    redis.call('PEXPIRE', KEYS[1], ARGV[2])
    return tonumber(token)
  end
  return 0
end
local token = redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], token .. ':' .. ARGV[1], 'PX', ARGV[2])
return token
"""
_RELEASE = """
local current = redis.call('GET', KEYS[1])
if current and string.match(current, '^%d+:(.*)$') == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


def lease_key(merchant_id: str) -> str:
    """The lease of a merchant's schedulers (one hash tag with the scheduler's other keys)."""
    return f"{{sched:{merchant_id}}}:lease"


class Lease:
    """One scheduler copy's view of the lease; ``holder`` names the copy (host and pid)."""

    def __init__(self, *, client: redis.Redis, merchant_id: str, holder: str,
                 ttl: float = 10.0) -> None:
        self._client = client
        self._keys = [lease_key(merchant_id), f"{{sched:{merchant_id}}}:fence"]
        self.holder = holder
        self.ttl = ttl
        self.token: int | None = None
        self._acquire = client.register_script(_ACQUIRE)
        self._release = client.register_script(_RELEASE)

    def acquire(self) -> int | None:
        """Take or renew the lease; the fencing token while held, None while another holds it."""
        token = int(self._acquire(keys=self._keys, args=[self.holder, int(self.ttl * 1000)]))
        self.token = token or None
        return self.token

    def release(self) -> None:
        """Give the lease up (a clean stop), so a standby takes over at once."""
        self._release(keys=self._keys[:1], args=[self.holder])
        self.token = None

    def current_holder(self) -> str | None:
        """Who holds the lease now (``token:holder``), if anyone."""
        raw = self._client.get(self._keys[0])
        return None if raw is None else text(raw)
