"""Which member a provider receipt is about, shared by all workers through Redis.

Receipts name the provider's id (Aliyun ``biz_id``, WeChat ``MsgID``) and an address, never our
member, so a client records ``(provider id, address) -> member, campaign, coupon`` when a send is
accepted. The callback side *takes* the entry (``HDEL``): a receipt pushed twice finds nothing the
second time and is dropped, which is how repeated receipts are deduplicated.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import redis.asyncio

SEPARATOR = "\x1f"


def voucher_bucket(voucher_id: str) -> str:
    """Index key for an Alipay voucher id: ids issued together share a prefix."""
    return f"v:{voucher_id[:-3] or voucher_id}"


@dataclass(frozen=True, slots=True)
class Recipient:
    """What an event about one delivered or failed message needs to say."""

    member_id: str
    campaign_id: str
    coupon_code: str


class ReceiptIndex:
    """``ch:rcpt:<channel>:<provider id>`` hashes of address -> recipient, kept ``ttl_s``."""

    def __init__(self, *, redis: redis.asyncio.Redis, channel: str,
                 ttl_s: int = 3 * 86_400) -> None:
        self._redis = redis
        self._channel = channel
        self._ttl_s = ttl_s

    def _key(self, provider_id: str) -> str:
        return f"ch:rcpt:{self._channel}:{provider_id}"

    async def remember(self, provider_id: str,
                       rows: Sequence[tuple[str, Recipient]]) -> None:
        """Record ``(address, recipient)`` pairs sent under ``provider_id`` (one round trip)."""
        if not rows:
            return
        mapping = {address: SEPARATOR.join((r.member_id, r.campaign_id, r.coupon_code))
                   for address, r in rows}
        key = self._key(provider_id)
        pipe = self._redis.pipeline(transaction=False)
        pipe.hset(key, mapping=mapping)  # type: ignore[arg-type]
        pipe.expire(key, self._ttl_s)
        await pipe.execute()

    async def remember_rows(self, rows: Sequence[tuple[str, str, Recipient]]) -> None:
        """Record ``(provider id, address, recipient)`` rows under many ids (one round trip)."""
        if not rows:
            return
        grouped: dict[str, dict[str, str]] = {}
        for provider_id, address, r in rows:
            grouped.setdefault(provider_id, {})[address] = SEPARATOR.join(
                (r.member_id, r.campaign_id, r.coupon_code))
        pipe = self._redis.pipeline(transaction=False)
        for provider_id, mapping in grouped.items():
            pipe.hset(self._key(provider_id), mapping=mapping)  # type: ignore[arg-type]
            pipe.expire(self._key(provider_id), self._ttl_s)
        await pipe.execute()

    async def take(self, provider_id: str, addresses: Sequence[str]) -> list[Recipient | None]:
        """The recipients for ``addresses``, removing them; ``None`` where already taken or
        unknown (a repeated receipt, or one for a send this index never saw)."""
        if not addresses:
            return []
        key = self._key(provider_id)
        pipe = self._redis.pipeline(transaction=True)
        pipe.hmget(key, list(addresses))
        pipe.hdel(key, *addresses)
        values, _ = await pipe.execute()
        found: list[Recipient | None] = []
        for value in values:
            if value is None:
                found.append(None)
                continue
            text = value.decode() if isinstance(value, bytes) else str(value)
            member, campaign, coupon = text.split(SEPARATOR)
            found.append(Recipient(member, campaign, coupon))
        return found

    async def take_all(self, provider_id: str) -> list[tuple[str, Recipient]]:
        """Every remaining ``(address, recipient)`` under ``provider_id`` (mass-send jobs)."""
        key = self._key(provider_id)
        pipe = self._redis.pipeline(transaction=True)
        pipe.hgetall(key)
        pipe.delete(key)
        values, _ = await pipe.execute()
        rows = []
        for address, value in values.items():
            addr = address.decode() if isinstance(address, bytes) else str(address)
            text = value.decode() if isinstance(value, bytes) else str(value)
            member, campaign, coupon = text.split(SEPARATOR)
            rows.append((addr, Recipient(member, campaign, coupon)))
        return rows
