"""The same rules on generated data, transactions in Parquet (pandas) and in ClickHouse (one
GROUP BY member query, on chDB and on the Debian clickhouse-server 18.16): identical members."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from infra.clickhouse import ClickHouse
from segmentation.audience import evaluate_rules
from segmentation.feature_cache import FeatureCache
from segmentation.rules import parse_rules
from segmentation.synthetic import generate

AS_OF = dt.date(2026, 6, 30)
CATEGORIES = np.array(["咖啡", "面包", "礼盒", "茶饮", "it's"])  # a quote, for the SQL literal
SEGMENTS: list[dict[str, Any]] = [
    {"name": "spent_90d", "where": {"spend": {"last": "90d", "gte": "300元"}}},
    {"name": "lapsing", "where": {"all": [{"spend_yuan": {"between": ["30d", "180d"], "gte": 100}},
                                          {"orders": {"last": "30d", "eq": 0}}]}},
    {"name": "coffee_at_1_2", "where": {"bought": {"categories": ["咖啡"], "stores": [1, 2],
                                                   "last": "365d"}}},
    {"name": "never_quote", "where": {"never_bought": {"category": "it's", "last": "60d"}}},
    {"name": "avg_ticket", "where": {"avg_ticket": {"last": "180d", "between": ["50元", "150元"]}}},
    {"name": "sku_dates", "where": {"orders": {"from": "2026-01-01", "to": "2026-03-31",
                                               "skus": ["K3", "K7"], "gte": 2}}},
    {"name": "new", "where": {"first_purchase_within_days": 60}},
    {"name": "rfm", "where": {"recency_days": {"lte": 30}, "frequency": {"gte": 3}}},
]


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("parity")
    data = generate(members=1500, seed=5, out_dir=directory)
    table = pq.read_table(data.transactions)
    order = table.column("order_id").to_numpy()
    table = table.append_column("category", pa.array(CATEGORIES[order % len(CATEGORIES)]))
    table = table.append_column("sku", pa.array(np.char.add("K", (order % 11).astype(str))))
    pq.write_table(table, directory / "tx.parquet")
    return directory


def _rules(transactions: dict[str, Any], base: Path) -> Any:
    return parse_rules({"transactions": transactions, "members": {"path": "members.parquet"},
                        "rfm": {"bins": 3}, "segments": SEGMENTS}, base=base)


ORDERS = ("merchant_id", "member_id", "store_id", "order_id", "ts", "amount_fen", "category",
          "sku")


def _load(client: ClickHouse, directory: Path) -> None:
    """Analytics' orders table: text member and store ids, several merchants, and a
    ReplacingMergeTree whose duplicates (a reloaded batch) only FINAL collapses."""
    client.execute("CREATE TABLE orders (merchant_id String, member_id String, store_id String, "
                   "order_id String, ts DateTime('UTC'), amount_fen Int64, category String, "
                   "sku String) ENGINE = ReplacingMergeTree() PARTITION BY toYYYYMM(ts) "
                   "ORDER BY (merchant_id, member_id, ts, order_id)")
    frame = pq.read_table(directory / "tx.parquet").to_pandas()
    rows = [("m1", str(m), str(s), str(o), t.to_pydatetime().astimezone(dt.UTC).replace(
        tzinfo=None), int(a), c, k) for m, s, o, t, a, c, k in frame[
        ["member_id", "store_id", "order_id", "ts", "amount_fen", "category", "sku"]
    ].itertuples(index=False)]
    client.insert("orders", ORDERS, rows)
    client.insert("orders", ORDERS, rows[:2000])  # the same orders again, another part
    client.insert("orders", ORDERS, [("m2", *row[1:5], 10**9, *row[6:]) for row in rows[:500]])


def check_parity(client: ClickHouse, directory: Path) -> None:
    _load(client, directory)
    in_files = evaluate_rules(_rules({"path": "tx.parquet"}, directory), as_of=AS_OF,
                              cache=FeatureCache())
    table = {"clickhouse_table": "orders", "final": True, "merchant_id": "m1"}
    in_sql = evaluate_rules(_rules(table, directory), clickhouse=client, as_of=AS_OF)
    for segment in SEGMENTS:
        name = segment["name"]
        ours = set(in_files.members_of(name).member_id.tolist())
        theirs = set(in_sql.members_of(name).member_id.tolist())
        assert ours == theirs, name
    counts = in_files.counts()
    assert all(counts[s["name"]] > 0 for s in SEGMENTS), counts  # every rule picks someone
    assert counts["never_quote"] < len(in_files.frame)


def test_pandas_and_chdb_agree(chdb_client: ClickHouse, generated: Path) -> None:
    check_parity(chdb_client, generated)


def test_pandas_and_clickhouse_server_agree(clickhouse_driver: ClickHouse,
                                            generated: Path) -> None:
    check_parity(clickhouse_driver, generated)
