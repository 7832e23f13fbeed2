"""Compact store: Redis bytes per issued coupon and issuance throughput (1M coupons in full)."""

from __future__ import annotations

import tempfile
import time
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import redis

from bench.report import Result
from catalog.issuance import issue_batch
from catalog.templates import CouponTemplate, save_template
from infra.redis_server import RedisServer

SIZES = {"quick": 100_000, "full": 1_000_000}
BATCH = 1000


def _per_hash_baseline(client: redis.Redis, count: int) -> float:
    """Bytes per coupon when each coupon is its own hash (the layout the store replaces)."""
    before = int(client.info("memory")["used_memory"])
    pipe = client.pipeline(transaction=False)
    for i in range(count):
        pipe.hset(f"cp:{i:012d}", mapping={"m": f"M{i:08d}", "s": "a", "d": "2518", "c": "1"})
        if i % 1000 == 999:
            pipe.execute()
    pipe.execute()
    return (int(client.info("memory")["used_memory"]) - before) / count


def run(*, size: str) -> list[Result]:
    count = SIZES[size]
    now = datetime(2026, 11, 23, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
    with tempfile.TemporaryDirectory() as tmp:
        server = RedisServer(directory=Path(tmp), appendonly=False)
        server.start()
        client = redis.Redis.from_url(server.url)
        try:
            tid = save_template(client, CouponTemplate(
                merchant_id="bench", kind="threshold", name="满100减20", total_stock=count,
                threshold_fen=10000, discount_fen=2000, valid_days=30,
            ))
            before = int(client.info("memory")["used_memory"])
            started = time.perf_counter()
            for start in range(0, count, BATCH):
                members = [f"M{i:08d}" for i in range(start, start + BATCH)]
                got = issue_batch(client, merchant_id="bench", campaign_id="c1", template_id=tid,
                                  member_ids=members, now=now, secret=b"bench")
                assert got[-1].status == "new", got[-1]
            elapsed = time.perf_counter() - started
            stats = client.info("commandstats").get("cmdstat_evalsha", {})
            lua_usec = float(stats.get("usec_per_call", 0.0))
            per_coupon = (int(client.info("memory")["used_memory"]) - before) / count
            baseline = _per_hash_baseline(client, min(count, 200_000))
        finally:
            client.close()
            server.stop()
    return [
        # the target is stated at 1M: fixed per-key costs weigh more on a smaller quick run
        Result("catalog_store", f"redis bytes per issued coupon ({count:,})", round(per_coupon, 1),
               "B", target=32 if count >= 1_000_000 else None, better="lower"),
        Result("catalog_store", "redis bytes per coupon, one hash per coupon (baseline)",
               round(baseline, 1), "B"),
        Result("catalog_store", f"issue_batch throughput (batches of {BATCH}, end to end)",
               round(count / elapsed), "coupons/s", better="higher"),
        Result("catalog_store", "issuance script time inside Redis",
               round(BATCH / lua_usec * 1e6) if lua_usec else 0, "coupons/s", better="higher"),
    ]
