"""The ``Channel`` protocol every provider adapter implements, and its value objects.

A channel takes a batch of messages and returns exactly one ``SendResult`` per message, in order.
Results are classified on provider codes, never on message text, so the dispatcher can decide:
``sent`` (provider id kept), ``failed_permanent`` (do not retry this member on this channel; the
router may fall back to the next channel), ``failed_retryable`` (retry after ``retry_at``), or
``quota_exhausted`` (the account's quota is used up; spill to the next channel or the next day).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Literal, Protocol, TypeAlias

import msgspec
import redis.asyncio

SendStatus = Literal["sent", "failed_permanent", "failed_retryable", "quota_exhausted"]

# Where channels keep shared state (tokens, limits, receipts): one server or a Redis Cluster;
# keys used together in one script carry a common hash tag.
RedisClient: TypeAlias = "redis.asyncio.Redis | redis.asyncio.RedisCluster"


class Message(msgspec.Struct, frozen=True, gc=False):
    """One member's message on one channel (a frozen ``msgspec.Struct``, like ``SendResult``:
    one is made per member and channel on the send path, at a tenth of a dataclass's cost).

    ``address`` is what the provider addresses (openid, phone number, Alipay user id);
    ``variables`` fill the channel's template (all strings, keys from ``channels.content``:
    name, coupon, value, expiry, store, link); ``idempotency_key`` becomes the provider's key
    where it has one (WeChat ``client_msg_id``, Alipay ``out_biz_no``, SMS ``OutId``).
    """

    member_id: str
    address: str
    coupon_code: str
    idempotency_key: str
    variables: Mapping[str, str] = msgspec.field(default_factory=dict)
    campaign_id: str = ""  # carried into delivery events; receipts name only provider ids


class SendResult(msgspec.Struct, frozen=True, gc=False):
    """One message's outcome. A frozen ``msgspec.Struct`` rather than a frozen dataclass:
    every channel builds one per message on its hot path, and this costs a tenth as much."""

    member_id: str
    status: SendStatus
    provider_id: str = ""  # the provider's message/biz id when sent
    code: str = ""  # the provider's error code when not sent
    retry_at: datetime | None = None  # when a retryable failure may be retried


class Channel(Protocol):
    """A provider adapter. ``max_batch`` is the most messages one ``send`` call should carry."""

    name: str
    max_batch: int

    async def send(self, messages: Sequence[Message]) -> list[SendResult]:
        """Send ``messages``; one result per message, in the same order. Never raises for a
        per-message failure; raises ``channels.errors`` only when the whole call cannot run."""
        ...
