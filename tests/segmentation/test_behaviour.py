"""Windowed spend and orders, stores, categories, SKUs, first purchase, registration, birthday
month, tags, as_of and the staleness warning, on a hand-made base whose answers are worked out
below (as_of 2026-03-01: 02-27 is 2 days ago, 01-10 50, 12-20 71, 12-15 76, 10-01 151)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

from segmentation.audience import Evaluation, evaluate_rules
from segmentation.errors import InvalidRule
from segmentation.preview import summarize
from segmentation.rules import load_rules, parse_rules
from segmentation.tags import MemoryTags

SH = "Asia/Shanghai"
AS_OF = dt.date(2026, 3, 1)
# member, local time, fen, store, category, sku
TRANSACTIONS = [
    (1, "2026-02-27 12:00", 30000, "S1", "咖啡", "A1"),
    (1, "2026-01-10 12:00", 9000, "S2", "面包", "B1"),
    (2, "2025-12-15 10:00", 25000, "S1", "咖啡", "A2"),
    (2, "2025-12-20 10:00", 5000, "S1", "面包", "B1"),
    (3, "2025-10-01 10:00", 50000, "S3", "礼盒", "G1"),
    (4, "2026-02-25 09:00", 1000, "S2", "咖啡", "A1"),
    (4, "2026-02-26 09:00", 3000, "S2", "咖啡", "A1"),
    (5, "2026-03-02 10:00", 99999, "S1", "咖啡", "A1"),  # after as_of: never seen
]
# member, registered, birthday, lunar
MEMBERS = [
    (1, "2024-01-01", "1990-03-05", False),
    (2, "2025-01-01", "1990-01-27", True),  # lunar 1/1: 2026-02-17
    (3, "2023-05-01", "2000-09-12", False),
    (4, "2025-06-01", "1985-07-01", False),
    (5, "2025-06-01", "1995-02-10", False),
    (6, "2026-02-20", "2000-02-19", True),  # lunar 1/15: 2026-03-03
]


def transactions() -> pd.DataFrame:
    frame = pd.DataFrame(TRANSACTIONS, columns=["member_id", "ts", "amount_fen", "store_id",
                                                "category", "sku"])
    frame["ts"] = pd.to_datetime(frame.ts).dt.tz_localize(SH)
    return frame


def members() -> pd.DataFrame:
    frame = pd.DataFrame(MEMBERS, columns=["member_id", "registered_at", "birthday",
                                           "birthday_is_lunar"])
    frame["registered_at"] = pd.to_datetime(frame.registered_at).dt.tz_localize(SH)
    frame["birthday"] = pd.to_datetime(frame.birthday).dt.date
    return frame


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    members().to_parquet(tmp_path / "members.parquet")
    transactions().to_parquet(tmp_path / "transactions.parquet")
    return tmp_path


def evaluate(data_dir: Path, conditions: dict[str, Any], *, as_of: dt.date = AS_OF,
             **kwargs: Any) -> Evaluation:
    rules = {"name": "t", "transactions": {"path": "transactions.parquet"},
             "members": {"path": "members.parquet"}, "rfm": {"bins": 3},
             "segments": [{"name": n, "where": w} for n, w in conditions.items()]}
    (data_dir / "rules.yaml").write_text(yaml.safe_dump(rules, allow_unicode=True), "utf-8")
    return evaluate_rules(load_rules(data_dir / "rules.yaml"), as_of=as_of, **kwargs)


def ids(evaluation: Evaluation, name: str) -> set[int]:
    return {int(v) for v in evaluation.members_of(name).member_id}


def test_windowed_spend_orders_and_average_ticket(data_dir: Path) -> None:
    got = evaluate(data_dir, {
        "spent_200_90d": {"spend": {"last": "90d", "gte": "200元"}},
        "spent_200_30_to_90": {"spend_yuan": {"between": ["30d", "90d"], "gte": 200}},
        "90d_not_30d": {"all": [{"spend": {"last": "90d", "gte": "200元"}},
                                {"orders": {"last": "30d", "eq": 0}}]},
        "two_orders_30d": {"orders": {"last": "30d", "gte": 2}},
        "avg_150": {"avg_ticket": {"last": "90d", "gte": "150元"}},
        "avg_over_15000_fen": {"avg_ticket_fen": {"last": "90d", "gt": 15000}},
        "december": {"spend_fen": {"from": "2025-12-01", "to": "2025-12-31", "gte": 1}},
        "december_dates": {"orders": {"between": [dt.date(2025, 12, 1), dt.date(2025, 12, 16)],
                                      "gte": 1}},
        "lifetime_500": {"spend": {"gte": "¥500"}},
    })
    assert ids(got, "spent_200_90d") == {1, 2}  # 390 and 300 yuan; 4 spent 40
    assert ids(got, "spent_200_30_to_90") == {2}  # 1 spent 90 yuan 30-90 days ago
    assert ids(got, "90d_not_30d") == {2}
    assert ids(got, "two_orders_30d") == {4}
    assert ids(got, "avg_150") == {1, 2}  # 195 and 150 yuan a ticket
    assert ids(got, "avg_over_15000_fen") == {1}
    assert ids(got, "december") == {2}
    assert ids(got, "december_dates") == {2}
    assert ids(got, "lifetime_500") == {3}  # 5's 999.99 is after as_of


def test_stores_categories_skus_and_never_bought(data_dir: Path) -> None:
    got = evaluate(data_dir, {
        "at_s1": {"orders": {"last": "90d", "stores": ["S1"], "gte": 1}},
        "coffee_30d": {"bought": {"category": "咖啡", "last": "30d"}},
        "never_coffee": {"never_bought": {"categories": ["咖啡"]}},
        "bread_sku": {"bought": {"skus": ["B1"]}},
        "coffee_at_s2": {"spend": {"category": "咖啡", "store": "S2", "gte": "40元"}},
    })
    assert ids(got, "at_s1") == {1, 2}
    assert ids(got, "coffee_30d") == {1, 4}
    assert ids(got, "never_coffee") == {3, 5, 6}
    assert ids(got, "bread_sku") == {1, 2}
    assert ids(got, "coffee_at_s2") == {4}


def test_new_customers_birthday_month_and_recency_from_as_of(data_dir: Path) -> None:
    got = evaluate(data_dir, {
        "first_week": {"first_purchase_within_days": 7},
        "new_signup": {"registered_within_days": 30},
        "birthday_now": {"birthday_month": "current"},
        "birthday_feb": {"birthday_month": 2},
        "birthday_next": {"birthday_month": "下月"},
    })
    assert ids(got, "first_week") == {4}  # first purchase 4 days ago; 5's is after as_of
    assert ids(got, "new_signup") == {6}
    assert ids(got, "birthday_now") == {1, 6}  # solar 03-05; lunar 1/15 is 2026-03-03
    assert ids(got, "birthday_feb") == {2, 5}  # lunar 1/1 is 2026-02-17; solar 02-10
    assert ids(got, "birthday_next") == set()
    recency = got.frame.set_index("member_id").recency_days
    assert recency[1] == 2 and recency[3] == 151  # from as_of, not from the newest transaction
    assert got.as_of == AS_OF and got.warnings == ()


def test_staleness_warning_and_non_buyers_shown_plainly(data_dir: Path) -> None:
    late = evaluate(data_dir, {"everyone": {"registered_before": "2030-01-01"}},
                    as_of=dt.date(2026, 4, 1))
    assert len(late.warnings) == 1 and "2026-03-02" in late.warnings[0]
    summary = summarize(late, sample=10)
    shown = summary.samples["everyone"]
    assert len(shown) == 6
    assert not shown.isna().any().any()
    assert "NaN" not in shown.to_string()
    never = shown[shown.member_id == 6].iloc[0]
    assert never.frequency == 0 and never.rfm_segment == "未购买 never bought"


def test_tags_and_not_tags(data_dir: Path) -> None:
    tags = MemoryTags()
    tags.add("VIP", [1, 3])
    tags.add("黑名单", ["4"])
    got = evaluate(data_dir, {"vip": {"tag": "VIP"}, "not_vip": {"not_tag": ["VIP", "黑名单"]},
                              "either": {"tag": ["VIP", "黑名单"]}}, tags=tags)
    assert ids(got, "vip") == {1, 3}
    assert ids(got, "not_vip") == {2, 5, 6}
    assert ids(got, "either") == {1, 3, 4}


@pytest.mark.parametrize(("where", "field"), [
    ({"spend": {"last": "90d", "gte": 200}}, "where.spend.gte"),
    ({"spend": {"last": "ninety", "gte": "200元"}}, "where.spend.last"),
    ({"spend_yuan": {"between": ["90d", "30d"], "gte": 1}}, "where.spend_yuan.between"),
    ({"orders": {"last": "30d"}}, "where.orders"),
    ({"orders": {"last": "30d", "gte": 1, "colour": 2}}, "where.orders.colour"),
    ({"bought": {"category": []}}, "where.bought.category"),
    ({"birthday_month": 13}, "where.birthday_month"),
    ({"tag": "has space"}, "where.tag"),
    ({"holds_coupon": {"expires_within_days": -1}}, "where.holds_coupon.expires_within_days"),
    ({"coupons_received": {"last": "30d", "gte": "x"}}, "where.coupons_received.gte"),
    ({"first_purchase_within_days": 0}, "where.first_purchase_within_days"),
])
def test_bad_conditions_name_the_field(where: dict[str, Any], field: str) -> None:
    data = {"transactions": {"path": "tx.parquet"}, "segments": [{"name": "a", "where": where}]}
    with pytest.raises(InvalidRule) as error:
        parse_rules(data, base=Path("."))
    assert error.value.field == f"segments[0].{field}"


@pytest.mark.parametrize("path", sorted((Path(__file__).parents[2] / "segmentation" / "examples")
                                        .glob("*.yaml")), ids=lambda p: p.name)
def test_example_rule_files_parse(path: Path) -> None:
    rules = load_rules(path)
    assert rules.segments and all(s.name_zh for s in rules.segments)


def test_frame_source_gives_the_file_source_figures(data_dir: Path) -> None:
    from segmentation.sources import FileTransactions, FrameTransactions
    from segmentation.windows import TxFilter, Window

    filters = [TxFilter(Window(ago=(0, 90)), categories=frozenset({"咖啡"})),
               TxFilter(Window(ago=(30, 90)), stores=frozenset({"S1"}))]
    from_frame = FrameTransactions(transactions()).rule_features(as_of=AS_OF, filters=filters)
    from_file = FileTransactions(data_dir / "transactions.parquet").rule_features(
        as_of=AS_OF, filters=filters)
    assert from_frame.aggregates.equals(from_file.aggregates)
    spend = from_file.aggregates[f"{filters[0].key}_spend"].to_dict()
    assert spend == {1: 30000, 2: 25000, 3: 0, 4: 4000}
    assert from_file.newest_day == from_frame.newest_day == (dt.date(2026, 3, 2)
                                                             - dt.date(1970, 1, 1)).days
