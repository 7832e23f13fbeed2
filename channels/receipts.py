"""Which member a provider receipt is about, shared by all workers through Redis.

Receipts name the provider's id (Aliyun ``biz_id``, WeChat ``MsgID``, Alipay ``voucher_id``)
and an address, never our member, so a client records ``(provider id, address) -> member,
campaign, coupon`` when a send is accepted. The callback side *takes* the entry, leaving an
empty value in its place (kept as long as the index): a receipt pushed twice finds that and is
dropped, which is how repeated receipts are deduplicated. A receipt that finds no entry at all
is ``UNKNOWN``: it may have overtaken the reply of its own send (WeChat and Alipay name ids the
reply brings, recorded once it is read), so the callback asks the provider to push it again
later instead of dropping it.

Recording is on the send path (a million rows a minute), so it costs one ``APPEND`` of a
packed blob per provider id, not one hash field per row: packing 1,000 hash fields in the
Redis client costs more CPU than the SMS request itself. The first ``take`` answers from the blob
and unpacks it into a hash inside Redis (one Lua call); later takes take fields from the hash.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final, Literal

from redis.exceptions import RedisError

from channels.base import Message, RedisClient

log = logging.getLogger(__name__)
FIELD = "\x1f"
RECORD = "\x1e"

# KEYS: hash, blob. ARGV: ttl, then the addresses to take (none: take all). A taken field
# keeps an empty value (``TAKEN``); an address never recorded answers ``?`` (``UNKNOWN``).
# Taking all leaves the one field ``*`` (no address is ``*``); an empty answer there means the
# hash is unknown. A record appended later is a newer send under the same id: it replaces
# what was there, taken or not.
_TAKE = """
local blob = redis.call('GET', KEYS[2])
if blob and #ARGV == 1 and redis.call('EXISTS', KEYS[1]) == 0 then
  -- take all of a blob never unpacked (a mass send's job): answer from the blob itself, a
  -- later record of an address replacing an earlier one as in the hash
  local out, at = {'*', ''}, {}
  for addr, rest in string.gmatch(blob, '([^\\30\\31]+)\\31([^\\30]*)') do
    if at[addr] then
      out[at[addr]] = rest
    else
      out[#out + 1] = addr; out[#out + 1] = rest; at[addr] = #out
    end
  end
  redis.call('DEL', KEYS[2])
  redis.call('HSET', KEYS[1], '*', '')
  redis.call('EXPIRE', KEYS[1], tonumber(ARGV[1]))
  return out
end
if blob and redis.call('EXISTS', KEYS[1]) == 0 then
  -- the first take of a blob (an SMS request's report push): answer from the blob and write
  -- the hash once, the taken addresses empty, in HSETs of 500 fields (Lua's unpack has a
  -- limit) instead of three calls a record
  local rec, order = {}, {}
  for addr, rest in string.gmatch(blob, '([^\\30\\31]+)\\31([^\\30]*)') do
    if rec[addr] == nil then order[#order + 1] = addr end
    rec[addr] = rest
  end
  local out = {}
  for i = 2, #ARGV do
    local v = rec[ARGV[i]]
    if v == nil then
      out[i - 1] = '?'
    else
      out[i - 1] = v
      rec[ARGV[i]] = ''
    end
  end
  local args = {}
  for _, addr in ipairs(order) do
    args[#args + 1] = addr; args[#args + 1] = rec[addr]
    if #args >= 1000 then redis.call('HSET', KEYS[1], unpack(args)); args = {} end
  end
  if #args > 0 then redis.call('HSET', KEYS[1], unpack(args)) end
  redis.call('DEL', KEYS[2])
  redis.call('EXPIRE', KEYS[1], tonumber(ARGV[1]))
  return out
end
if blob then
  for addr, rest in string.gmatch(blob, '([^\\30\\31]+)\\31([^\\30]*)') do
    redis.call('HSET', KEYS[1], addr, rest)
  end
  redis.call('DEL', KEYS[2])
  redis.call('EXPIRE', KEYS[1], tonumber(ARGV[1]))
end
if #ARGV == 1 then
  if redis.call('EXISTS', KEYS[1]) == 0 then return {} end
  local all = redis.call('HGETALL', KEYS[1])
  redis.call('DEL', KEYS[1])
  redis.call('HSET', KEYS[1], '*', '')
  redis.call('EXPIRE', KEYS[1], tonumber(ARGV[1]))
  local out = {'*', ''}
  for i = 1, #all, 2 do
    if all[i] ~= '*' and all[i + 1] ~= '' then
      out[#out + 1] = all[i]; out[#out + 1] = all[i + 1]
    end
  end
  return out
end
local out = {}
for i = 2, #ARGV do
  local v = redis.call('HGET', KEYS[1], ARGV[i])
  if v == false then
    out[i - 1] = '?'
  else
    if v ~= '' then redis.call('HSET', KEYS[1], ARGV[i], '') end
    out[i - 1] = v
  end
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


TAKEN: Final = "taken"  # the receipt of this send was taken before: a repeat
UNKNOWN: Final = "unknown"  # no record (yet): the send's reply may still be on its way
Taken = Recipient | Literal["taken", "unknown"]


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

    async def take(self, provider_id: str, addresses: Sequence[str]) -> list[Taken]:
        """The recipient for each of ``addresses``, taken (a second take finds ``TAKEN``);
        ``UNKNOWN`` where nothing was recorded under ``provider_id`` for it."""
        if not addresses:
            return []
        key = self._key(provider_id)
        values = await self._redis.eval(  # type: ignore[misc]
            _TAKE, 2, key, key + ":b", self._ttl_s, *addresses)
        return [UNKNOWN if v in (b"?", "?") else _recipient(_text(v)) if v else TAKEN
                for v in values]

    async def take_all(self, provider_id: str) -> list[tuple[str, Recipient]] | None:
        """Every remaining ``(address, recipient)`` under ``provider_id`` (mass-send jobs);
        ``[]`` when they were taken before, ``None`` when nothing was ever recorded."""
        key = self._key(provider_id)
        flat = await self._redis.eval(_TAKE, 2, key, key + ":b", self._ttl_s)  # type: ignore[misc]
        if not flat:
            return None
        return [(_text(flat[i]), _recipient(_text(flat[i + 1])))
                for i in range(2, len(flat), 2)]
