"""Segment rules an operator writes, on 1M members / ~10M transactions (quick: 50k members).

The rule has two windowed aggregates (spent >= 200 yuan in the last 90 days; at least two
orders 90-180 days ago), a category condition (bought 咖啡 in the last 30 days) and a coupon
condition (holds an unused coupon expiring within 3 days). Categories are derived from the order
id (the generator has none); coupon facts are generated in the catalog export's columns (one
coupon for 30% of members), not read from Redis, so the figure is segmentation's own.

Measured, each in a fresh child process:
- the whole rule from Parquet, cold (read, RFM, aggregates, coupon columns, masks): slowest of 3;
- the console's count path on a warm ``FeatureCache``: the same rule with a changed threshold
  and a new window (one new filter computed), slowest of 3;
- the same rule with transactions in chDB (one GROUP BY member query), and whether its members
  equal the Parquet path's.
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from bench.report import Result

SIZES = {"quick": 50_000, "full": 1_000_000}
NAME = "segmentation_rules"
AS_OF = dt.date(2026, 10, 31)
CATEGORIES = np.array(["咖啡", "面包", "甜品", "茶饮", "礼盒"])


def _where(gte: str = "200元", far: str = "180d") -> dict[str, Any]:
    return {"spend": {"last": "90d", "gte": gte},
            "orders": {"between": ["90d", far], "gte": 2},
            "any": [{"bought": {"category": "咖啡", "last": "30d"}},
                    {"holds_coupon": {"expires_within_days": 3}}]}


def _rules(directory: Path, transactions: dict[str, Any], where: dict[str, Any]) -> Any:
    from segmentation.rules import parse_rules

    return parse_rules({"name": "bench", "transactions": transactions,
                        "members": {"path": "members.parquet"},
                        "segments": [{"name": "target", "where": where}]}, base=directory)


def _facts(directory: Path) -> Any:
    import pandas as pd

    return pd.read_parquet(directory / "coupons.parquet")


def _prepare(directory: Path, members: int) -> int:
    from segmentation.synthetic import generate

    data = generate(members=members, seed=2026, out_dir=directory, end=AS_OF)
    table = pq.read_table(data.transactions)
    order = table.column("order_id").to_numpy()
    table = table.append_column("category", pa.array(CATEGORIES[(order * 7919) % 5]))
    pq.write_table(table, directory / "tx.parquet")
    rng = np.random.default_rng(7)
    ids = pq.read_table(data.members, columns=["member_id"]).column("member_id").to_numpy()
    holders = ids[rng.random(len(ids)) < 0.3]
    issued = np.datetime64(AS_OF) - rng.integers(0, 30, len(holders)).astype("timedelta64[D]")
    pq.write_table(pa.table({
        "member_id": holders.astype(str), "template_id": np.full(len(holders), "t1"),
        "campaign_id": np.full(len(holders), "autumn"),
        "state": np.where(rng.random(len(holders)) < 0.8, "active", "used"),
        "issued": issued, "valid_from": issued,
        "expires": issued + np.timedelta64(30, "D"), "redeemed": np.full(len(holders), None),
    }), directory / "coupons.parquet")
    return int(table.num_rows)


def _cold(directory: Path) -> None:
    from segmentation.audience import evaluate_rules

    facts = _facts(directory)
    times, count = [], 0
    for _ in range(3):
        start = time.perf_counter()
        got = evaluate_rules(_rules(directory, {"path": "tx.parquet"}, _where()), as_of=AS_OF,
                             coupon_facts=lambda: facts)
        times.append(time.perf_counter() - start)
        count = got.counts()["target"]
    print(json.dumps({"times": times, "count": count}))


def _warm(directory: Path) -> None:
    from segmentation.audience import evaluate_conditions
    from segmentation.feature_cache import FeatureCache

    facts = _facts(directory)
    cache = FeatureCache()
    rules = _rules(directory, {"path": "tx.parquet"}, _where())
    evaluate_conditions(rules, [rules.segments[0].where], as_of=AS_OF, cache=cache,
                        coupon_facts=lambda: facts)  # the first count of the day
    times = []
    for gte, far in (("300元", "200d"), ("250元", "210d"), ("150元", "220d")):
        edited = _rules(directory, {"path": "tx.parquet"}, _where(gte, far))
        start = time.perf_counter()
        evaluate_conditions(edited, [edited.segments[0].where], as_of=AS_OF, cache=cache,
                            coupon_facts=lambda: facts)
        times.append(time.perf_counter() - start)
    print(json.dumps({"times": times}))


def _chdb(directory: Path) -> None:
    from infra.clickhouse import ChdbClient
    from segmentation.audience import evaluate_rules

    facts = _facts(directory)
    client = ChdbClient(path=directory / "chdb")
    client.execute("CREATE TABLE orders (member_id Int64, ts DateTime('Asia/Shanghai'), "
                   "amount_fen Int64, store_id Int32, category String) "
                   "ENGINE = MergeTree ORDER BY member_id")
    client.execute("INSERT INTO orders SELECT member_id, toDateTime(ts), amount_fen, store_id, "
                   f"category FROM file('{(directory / 'tx.parquet').resolve()}', Parquet)")
    start = time.perf_counter()
    in_sql = evaluate_rules(_rules(directory, {"clickhouse_table": "orders"}, _where()),
                            clickhouse=client, as_of=AS_OF, coupon_facts=lambda: facts)
    seconds = time.perf_counter() - start
    client.close()
    in_files = evaluate_rules(_rules(directory, {"path": "tx.parquet"}, _where()), as_of=AS_OF,
                              coupon_facts=lambda: facts)
    same = (set(in_sql.members_of("target").member_id.tolist())
            == set(in_files.members_of("target").member_id.tolist()))
    print(json.dumps({"seconds": seconds, "same": same}))


def _child(kind: str, directory: Path) -> dict[str, Any]:
    out = subprocess.run([sys.executable, "-m", "bench.scenarios.segmentation_rules", kind,
                          str(directory)], check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def run(*, size: str) -> list[Result]:
    """Generate the data, time the rule cold, warm and in chDB, report."""
    members = SIZES[size]
    with tempfile.TemporaryDirectory(prefix="quanpai-bench-rules-") as tmp:
        directory = Path(tmp)
        transactions = _prepare(directory, members)
        cold = _child("cold", directory)
        warm = _child("warm", directory)
        chdb = _child("chdb", directory)
    label = f"{members:,} members / {transactions:,} tx"
    full = size == "full"
    return [
        Result(NAME, f"rule (2 windows, category, coupon) from Parquet, cold, slowest of 3 "
               f"({label})", max(cold["times"]), "s", target=2.0 if full else None),
        Result(NAME, "members the rule selects", cold["count"], "members"),
        Result(NAME, "console count on a warm cache, one filter changed, slowest of 3",
               max(warm["times"]), "s", target=1.0 if full else None),
        Result(NAME, "same rule with transactions in chDB (one GROUP BY member query)",
               chdb["seconds"], "s"),
        Result(NAME, "chDB members equal the Parquet path", 1.0 if chdb["same"] else 0.0,
               "bool", target=1.0, better="higher"),
    ]


if __name__ == "__main__":
    {"cold": _cold, "warm": _warm, "chdb": _chdb}[sys.argv[1]](Path(sys.argv[2]))
