"""Which member a provider receipt is about, shared by all workers through Redis.

Receipts name the provider's id (Aliyun ``biz_id``, WeChat ``MsgID``, Alipay ``voucher_id``)
and an address, never our member, so a client records ``(provider id, address) -> member,
campaign, coupon`` when a send is accepted. The callback side *takes* the entry: a receipt
pushed twice finds nothing the second time and is dropped, which is how repeated receipts are
deduplicated.

Recording is on the send path (a million rows a minute), so it costs one ``APPEND`` of a
packed blob per provider id, not one hash field per row: packing 1,000 hash fields in the
Redis client costs more CPU than the SMS request itself. The first ``take`` unpacks the blob
into a hash inside Redis (one Lua call), then takes fields from the hash.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from redis.exceptions import RedisError

from channels.base import Message, RedisClient

log = logging.getLogger(__name__)
FIELD = "\x1f"
RECORD = "\x1e"

# KEYS: hash, blob. ARGV: ttl, then the addresses to take (none: take all).
_TAKE = """
local blob = redis.call('GET', KEYS[2])
if blob then
  for addr, rest in string.gmatch(blob, '([^\\30\\31]+)\\31([^\\30]*)') do
    redis.call('HSETNX', KEYS[1], addr, rest)
  end
  redis.call('DEL', KEYS[2])
  redis.call('EXPIRE', KEYS[1], tonumber(ARGV[1]))
end
if #ARGV == 1 then
  local all = redis.call('HGETALL', KEYS[1])
  redis.call('DEL', KEYS[1])
  return all
end
local out = {}
for i = 2, #ARGV do
  local v = redis.call('HGET', KEYS[1], ARGV[i])
  if v then redis.call('HDEL', KEYS[1], ARGV[i]); out[i - 1] = v else out[i - 1] = '' end
end
return out
"""


def voucher_bucket(voucher_id: str) -> str:
    """Index key for an Alipay voucher id: ids issued together share a prefix."""
    return f"v:{voucher_id[:-3] or voucher_id}"


@dataclass(frozen=True, slots=True)
class Recipient:
    """What an event about one delivered or failed message needs to say."""

    member_id: str
    campaign_id: str
    coupon_code: str


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _recipient(packed: str) -> Recipient:
    member, campaign, coupon = packed.split(FIELD)
    return Recipient(member, campaign, coupon)


class ReceiptIndex:
    """``ch:rcpt:{<channel>:<provider id>}`` (hash) and ``...:b`` (packed blob), kept
    ``ttl_s``."""

    def __init__(self, *, redis: RedisClient, channel: str,
                 ttl_s: int = 3 * 86_400) -> None:
        self._redis = redis
        self._channel = channel
        self._ttl_s = ttl_s

    def _key(self, provider_id: str) -> str:
        # The hash tag keeps a hash and its blob in one Redis Cluster slot (one Lua call).
        return f"ch:rcpt:{{{self._channel}:{provider_id}}}"

    @staticmethod
    def pack(address: str, member_id: str, campaign_id: str, coupon_code: str) -> str:
        """One record of a blob (addresses and ids never contain the separators)."""
        return f"{address}{FIELD}{member_id}{FIELD}{campaign_id}{FIELD}{coupon_code}{RECORD}"

    async def remember_packed(self, blobs: dict[str, str]) -> bool:
        """Append packed records (``pack``) per provider id, in one round trip. False when
        Redis failed: the sends stand, only their receipts will not become events (a send
        must not be reported failed, and repeated, because its bookkeeping failed)."""
        if not blobs:
            return True
        pipe = self._redis.pipeline(transaction=False)
        for provider_id, blob in blobs.items():
            key = self._key(provider_id) + ":b"
            pipe.append(key, blob)
            pipe.expire(key, self._ttl_s)
        try:
            await pipe.execute()
        except RedisError as exc:
            log.warning("receipt index %s: %d ids not recorded: %s", self._channel,
                        len(blobs), exc)
            return False
        return True

    async def remember(self, provider_id: str,
                       rows: Sequence[tuple[str, Recipient]]) -> bool:
        """Record ``(address, recipient)`` pairs sent under ``provider_id``."""
        return await self.remember_packed({provider_id: "".join(
            self.pack(a, r.member_id, r.campaign_id, r.coupon_code) for a, r in rows)})

    async def remember_rows(self, rows: Iterable[tuple[str, str, Message]]) -> bool:
        """Record each ``(index id, provider id, message)``: the message's member, campaign
        and coupon under the provider id (the field a receipt names) of that index id's blob.
        Packed straight from the messages: this runs once per sent message."""
        blobs: dict[str, list[str]] = {}
        pack = self.pack
        for index_id, provider_id, m in rows:
            records = blobs.get(index_id)
            if records is None:
                records = blobs[index_id] = []
            records.append(pack(provider_id, m.member_id, m.campaign_id, m.coupon_code))
        return await self.remember_packed({k: "".join(v) for k, v in blobs.items()})

    async def take(self, provider_id: str, addresses: Sequence[str]) -> list[Recipient | None]:
        """The recipients for ``addresses``, removing them; ``None`` where already taken or
        unknown (a repeated receipt, or one for a send this index never saw)."""
        if not addresses:
            return []
        key = self._key(provider_id)
        values = await self._redis.eval(  # type: ignore[misc]
            _TAKE, 2, key, key + ":b", self._ttl_s, *addresses)
        return [_recipient(_text(v)) if v else None for v in values]

    async def take_all(self, provider_id: str) -> list[tuple[str, Recipient]]:
        """Every remaining ``(address, recipient)`` under ``provider_id`` (mass-send jobs)."""
        key = self._key(provider_id)
        flat = await self._redis.eval(_TAKE, 2, key, key + ":b", self._ttl_s)  # type: ignore[misc]
        return [(_text(flat[i]), _recipient(_text(flat[i + 1])))
                for i in range(0, len(flat), 2)]
