"""Issuing coupons in batches: one atomic Lua call per batch, exactly once per (campaign, member).

The campaign worker calls ``issue_batch`` with a batch of a few thousand members; a redelivered
batch gets the same codes back with status ``existing`` and consumes no stock or budget twice.
The worker emits the ``issued`` events itself, so nothing here writes to the event stream.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Any, Literal

import redis
import redis.asyncio

from catalog.codes import make_codes
from catalog.errors import InvalidInput, NotFound, StoreUnavailable
from catalog.store import flat_pairs, lua, member_hash
from catalog.templates import check_id, day_number, parse_template_id, tag

Status = Literal["new", "existing", "out_of_stock", "limit_reached", "extended"]
_STATUS: dict[int, Status] = {
    1: "new", 2: "existing", 3: "out_of_stock", 4: "limit_reached", 5: "extended"
}
MAX_BATCH = 5000  # one script call blocks Redis: ~30 ms at this size


@dataclass(frozen=True, slots=True)
class IssuedCoupon:
    """One member's outcome. ``code`` is empty when nothing was issued (out of stock, limit).

    ``extended``: the member already held this duration card and this campaign extended it
    (once: a redelivered batch answers ``extended`` again without extending twice).
    """

    member_id: str
    code: str
    status: Status


@dataclass(frozen=True, slots=True)
class _Call:
    keys: list[str]
    args: list[str | int]
    template_number: int


def _prepare(
    *, merchant_id: str, campaign_id: str, template_id: str, member_ids: Sequence[str],
    now: datetime, tz: tzinfo | None,
) -> _Call:
    check_id("merchant_id", merchant_id)
    if not campaign_id or len(campaign_id) > 64 or any(c in campaign_id for c in "\t\n"):
        raise InvalidInput("campaign_id", "expected 1-64 characters, no tabs or line breaks")
    number = parse_template_id(template_id)
    if now.tzinfo is None:
        raise InvalidInput("now", "must be timezone-aware")
    if len(member_ids) > MAX_BATCH:
        raise InvalidInput("member_ids", f"at most {MAX_BATCH} members per batch")
    args: list[str | int] = [tag(merchant_id, number), campaign_id,
                             day_number(now.astimezone(tz) if tz else now)]
    for member in member_ids:
        if not member or "|" in member or "," in member or len(member) > 40:
            raise InvalidInput("member_ids", f"bad member id {member[:12]!r}")
        args.extend((member, member_hash(member)))
    prefix = tag(merchant_id, number)
    return _Call(keys=[prefix + "meta", prefix + "camps"], args=args, template_number=number)


def _results(
    call: _Call, reply: Any, member_ids: Sequence[str], *, merchant_id: str, secret: bytes
) -> list[IssuedCoupon]:
    pairs = [(int(status), int(serial)) for status, serial in flat_pairs(reply)]
    codes = iter(make_codes(secret=secret, merchant_id=merchant_id,
                            template_number=call.template_number,
                            serials=[serial for _, serial in pairs if serial]))
    return [IssuedCoupon(member_id=member, code=next(codes) if serial else "",
                         status=_STATUS[status])
            for member, (status, serial) in zip(member_ids, pairs, strict=True)]


def _translate(exc: redis.RedisError, template_id: str) -> Exception:
    if isinstance(exc, redis.ResponseError) and "NOTEMPLATE" in str(exc):
        return NotFound(f"template {template_id} does not exist")
    return StoreUnavailable(f"Redis refused the issuance script: {exc}; retry the batch")


def issue_batch(
    client: redis.Redis, *, merchant_id: str, campaign_id: str, template_id: str,
    member_ids: Sequence[str], now: datetime, secret: bytes, tz: tzinfo | None = None,
) -> list[IssuedCoupon]:
    """Issue one coupon of ``template_id`` to each member, in one atomic script call.

    Idempotent per (campaign, member): members already issued in this campaign get their code
    back with status ``existing``. Stock and budget never go below zero; members past them get
    ``out_of_stock``, members at the template's per-member limit ``limit_reached``. ``now`` is
    timezone-aware; ``tz`` (the merchant's) decides the issue day when given.
    Raises ``InvalidInput``, ``NotFound`` (no such template) or ``StoreUnavailable`` (retryable).
    """
    call = _prepare(merchant_id=merchant_id, campaign_id=campaign_id, template_id=template_id,
                    member_ids=member_ids, now=now, tz=tz)
    if not member_ids:
        return []
    script = client.register_script(lua("issue"))
    try:
        reply = script(keys=call.keys, args=call.args)
    except redis.RedisError as exc:
        raise _translate(exc, template_id) from exc
    return _results(call, reply, member_ids, merchant_id=merchant_id, secret=secret)


async def issue_batch_async(
    client: redis.asyncio.Redis | redis.asyncio.RedisCluster, *, merchant_id: str,
    campaign_id: str, template_id: str, member_ids: Sequence[str], now: datetime,
    secret: bytes, tz: tzinfo | None = None,
) -> list[IssuedCoupon]:
    """``issue_batch`` for the asyncio client (the HTTP API)."""
    call = _prepare(merchant_id=merchant_id, campaign_id=campaign_id, template_id=template_id,
                    member_ids=member_ids, now=now, tz=tz)
    if not member_ids:
        return []
    script = client.register_script(lua("issue"))
    try:
        reply = await script(keys=call.keys, args=call.args)
    except redis.RedisError as exc:
        raise _translate(exc, template_id) from exc
    return _results(call, reply, member_ids, merchant_id=merchant_id, secret=secret)
