"""The expiry sweep emits one ``expired`` event per lapsed unused coupon, once, through the
event stream the loader reads (real Redis)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import redis

from analytics.stream import RedisStreamSink, StreamReader
from catalog.expiry import sweep_expired
from catalog.issuance import issue_batch
from catalog.templates import CouponTemplate, save_template

TZ = ZoneInfo("Asia/Shanghai")


def test_lapsed_coupons_expire_once(redis_client: redis.Redis) -> None:
    short = save_template(redis_client, CouponTemplate(
        merchant_id="m1", kind="cash", name="三天券", discount_fen=500, total_stock=100,
        valid_days=3))
    long = save_template(redis_client, CouponTemplate(
        merchant_id="m1", kind="cash", name="长期券", discount_fen=500, total_stock=100,
        valid_days=300))
    issued_at = datetime(2026, 11, 1, 2, 0, tzinfo=UTC)
    for template in (short, long):
        issue_batch(redis_client, merchant_id="m1", campaign_id="c1", template_id=template,
                    member_ids=["a", "b", "c"], now=issued_at, secret=b"s", tz=TZ)
    sink = RedisStreamSink(client=redis_client, stream="ev")

    def sweep(today: date) -> int:
        return sweep_expired(client=redis_client, sink=sink, merchant_id="m1", today=today,
                             tz=TZ)

    assert sweep(date(2026, 11, 3)) == 0  # still valid on its last day
    assert sweep(date(2026, 11, 4)) == 3  # the three-day coupons lapsed on the 3rd
    assert sweep(date(2026, 11, 5)) == 0  # not again
    events = [e for _, batch in StreamReader(client=redis_client, stream="ev",
                                             consumer="t").read(block_ms=0) for e in batch]
    assert sorted(e.member_id for e in events) == ["a", "b", "c"]
    assert {(e.event_type, e.campaign_id, e.reason) for e in events} == {
        ("expired", "c1", short)}
    assert events[0].ts == datetime(2026, 11, 4, tzinfo=TZ)
