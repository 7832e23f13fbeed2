"""A per-batch lease, so two workers never work on one batch at the same time.

The broker hands a batch to another worker when its holder's heartbeat is older than the
heartbeat timeout. A holder that is alive but silent that long (a stalled host) would then
work the batch concurrently with the new one, and both could send to the same members. The
lease (``{cmp:<id>}:lease:<batch>``, a random token with the heartbeat timeout as its time to
live) is taken before the batch starts and renewed before every provider request; a worker that
finds it held puts the batch back for a second, and a holder that lost it stops sending.
"""

from __future__ import annotations

import secrets

import redis

_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


class BatchLease:
    def __init__(self, *, client: redis.Redis, campaign_id: str, batch_no: int,
                 ttl_ms: int) -> None:
        self._client = client
        self._key = f"{{cmp:{campaign_id}}}:lease:{batch_no}"
        self._token = secrets.token_hex(8)
        self._ttl_ms = ttl_ms
        self._renew = client.register_script(_RENEW)
        self._release = client.register_script(_RELEASE)

    def acquire(self) -> bool:
        """Take the lease; False while another worker holds it."""
        return bool(self._client.set(self._key, self._token, nx=True, px=self._ttl_ms))

    def renew(self) -> bool:
        """Extend the lease; False when it was lost (expired and taken by another worker)."""
        return bool(self._renew(keys=[self._key], args=[self._token, self._ttl_ms]))

    def release(self) -> None:
        self._release(keys=[self._key], args=[self._token])
