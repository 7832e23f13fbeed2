"""Per-process caches on the quote path stay correct: an unchanged template set keeps its
objects, a new template shows up, and a wallet read after a change sees the change."""

from __future__ import annotations

import asyncio
from datetime import datetime
from zoneinfo import ZoneInfo

import redis
import redis.asyncio

from analytics.stream import RedisStreamSink
from catalog.context import Catalog
from catalog.issuance import issue_batch
from catalog.templates import CouponTemplate, save_template
from catalog.wallet import read_wallet

from .conftest import SECRET

TZ = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 11, 23, 10, 0, tzinfo=TZ)


def _save(client: redis.Redis, name: str, discount: int) -> str:
    return save_template(client, CouponTemplate(
        merchant_id="m1", kind="cash", name=name, total_stock=10, discount_fen=discount,
        valid_days=30))


def test_template_refresh_and_wallet_reads_follow_changes(
    redis_client: redis.Redis, redis_url: str,
) -> None:
    first = _save(redis_client, "五元券", 500)
    issue_batch(redis_client, merchant_id="m1", campaign_id="c1", template_id=first,
                member_ids=["u1"], now=NOW, secret=SECRET)

    async def scenario() -> None:
        client = redis.asyncio.Redis.from_url(redis_url)
        catalog = Catalog(client=client, secret=SECRET, tz=TZ, template_ttl=0.0,
                          sink=RedisStreamSink(client=redis_client, stream="quanpai:events"))
        try:
            before = await catalog.templates("m1")
            assert await catalog.templates("m1") is before  # unchanged set, same objects
            coupons, _ = await read_wallet(catalog, "m1", "u1")
            assert [c.template.discount_fen for c in coupons] == [500]
            assert (await read_wallet(catalog, "m1", "u1"))[0] == coupons

            second = _save(redis_client, "八元券", 800)
            issue_batch(redis_client, merchant_id="m1", campaign_id="c2", template_id=second,
                        member_ids=["u1"], now=NOW, secret=SECRET)
            after = await catalog.templates("m1")
            assert after is not before and set(after) == {first, second}
            coupons, _ = await read_wallet(catalog, "m1", "u1")
            assert sorted(c.template.discount_fen for c in coupons) == [500, 800]
            assert {c.state for c in coupons} == {"active"}
        finally:
            await client.aclose()

    asyncio.run(scenario())
