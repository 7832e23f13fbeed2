"""Segment rules: every condition on a small hand-made member base (expected members worked out
by hand from the data below), and invalid rules failing with the field named."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

from infra.clickhouse import ClickHouse
from segmentation.audience import Evaluation, evaluate_rules
from segmentation.errors import InvalidInput, InvalidRule
from segmentation.rfm import rfm_scores
from segmentation.rules import load_rules, parse_rules

SH = "Asia/Shanghai"
TODAY = dt.date(2026, 3, 1)

# id, tier, points, balance, home store, registered, birthday, lunar, phone, openid, subscribed,
# alipay id, consent sms, consent wechat, consent alipay
MEMBERS = [
    (1, "gold", 1500, 0, 1, "2024-01-01", "1990-03-05", False, "13800000001", "oAAAA1111", True,
     None, True, True, False),
    (2, "platinum", 200, 5000, 2, "2025-12-01", "1990-01-27", True, None, "oBBBB2222", True,
     None, False, False, False),
    (3, "normal", 0, 0, 1, "2023-05-01", "2000-09-12", True, "13800000003", None, False,
     "2088000000000003", False, False, True),
    (4, "silver", 600, 0, 3, "2024-06-01", "1985-07-01", False, "13800000004", "oDDDD4444", False,
     None, True, True, False),
    (6, "normal", 10, 0, 2, "2026-02-20", "2000-02-19", True, "13800000006", None, False, None,
     True, False, False),
]
# member, local time, fen (member 5 bought but is not in the members data)
TRANSACTIONS = [
    (1, "2026-02-27 12:00", 30000), (1, "2026-02-27 19:00", 5000), (1, "2026-02-20 12:00", 8000),
    (1, "2026-01-10 12:00", 9000), (2, "2026-02-28 10:00", 100000), (4, "2025-01-01 12:00", 3000),
    (5, "2026-02-01 12:00", 700), (6, "2026-02-28 20:00", 0),
]


def members_frame() -> pd.DataFrame:
    columns = ["member_id", "tier", "points", "balance_fen", "home_store_id", "registered_at",
               "birthday", "birthday_is_lunar", "phone", "wechat_openid", "wechat_subscribed",
               "alipay_user_id", "consent_sms", "consent_wechat", "consent_alipay"]
    frame = pd.DataFrame(MEMBERS, columns=columns)
    frame["registered_at"] = pd.to_datetime(frame.registered_at).dt.tz_localize(SH)
    frame["birthday"] = pd.to_datetime(frame.birthday).dt.date
    return frame


def transactions_frame() -> pd.DataFrame:
    frame = pd.DataFrame(TRANSACTIONS, columns=["member_id", "ts", "amount_fen"])
    frame["ts"] = pd.to_datetime(frame.ts).dt.tz_localize(SH)
    return frame


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    members_frame().to_parquet(tmp_path / "members.parquet")
    transactions_frame().to_parquet(tmp_path / "transactions.parquet")
    return tmp_path


def evaluate(data_dir: Path, conditions: dict[str, Any], **top: Any) -> Evaluation:
    rules = {
        "name": "t",
        "transactions": {"path": "transactions.parquet"},
        "members": {"path": "members.parquet"},
        "rfm": {"bins": 3},
        "segments": [{"name": name, "where": where} for name, where in conditions.items()],
        **top,
    }
    (data_dir / "rules.yaml").write_text(yaml.safe_dump(rules, allow_unicode=True), "utf-8")
    return evaluate_rules(load_rules(data_dir / "rules.yaml"), today=TODAY)


def ids(evaluation: Evaluation, name: str) -> set[int]:
    return {int(v) for v in evaluation.members_of(name).member_id}


def test_attribute_conditions(data_dir: Path) -> None:
    got = evaluate(data_dir, {
        "tier": {"tier": ["gold", "platinum"]},
        "points": {"points": {"gte": 500}},
        "points_between": {"points": {"between": [10, 600]}},
        "balance": {"balance_fen": {"gt": 0}},
        "spend": {"total_spend_fen": {"gte": 50_000}},
        "home": {"home_store": [1, 3]},
        "early": {"registered_before": "2024-06-01"},
        "recent_signup": {"registered_after": "2026-01-01"},
    })
    assert ids(got, "tier") == {1, 2}
    assert ids(got, "points") == {1, 4}
    assert ids(got, "points_between") == {2, 4, 6}
    assert ids(got, "balance") == {2}
    assert ids(got, "spend") == {1, 2}  # 52,000 and 100,000 fen
    assert ids(got, "home") == {1, 3, 4}
    assert ids(got, "early") == {1, 3}
    assert ids(got, "recent_signup") == {6}
    assert len(got.frame) == 6  # 5 members + member 5 who bought without a member record


def test_dormancy_birthdays_reachability_and_consent(data_dir: Path) -> None:
    got = evaluate(data_dir, {
        "dormant": {"dormant_days": 180},
        "birthday_week": {"birthday_within_days": 7},
        "birthday_today": {"birthday_today": True},
        "sms": {"reachable": "sms"},
        "wechat": {"reachable": "wechat"},
        "alipay_or_wechat": {"reachable": ["alipay", "wechat"]},
        "consent_wechat": {"consent": "wechat"},
        "never_bought": {"has_purchased": False},
    })
    # 3 never bought and registered in 2023; 4 last bought 2025-01-01.
    assert ids(got, "dormant") == {3, 4}
    # 1: solar 03-05 is 4 days away; 6: lunar 1/15 (born 2000-02-19) is 2026-03-03; 2's lunar
    # 1/1 was 2026-02-17 and 3's lunar 8/15 is in September.
    assert ids(got, "birthday_week") == {1, 6}
    assert ids(got, "birthday_today") == set()
    assert ids(got, "sms") == {1, 4, 6}
    assert ids(got, "wechat") == {1}  # 2 subscribed without consent; 4 not subscribed
    assert ids(got, "alipay_or_wechat") == {1, 3}
    assert ids(got, "consent_wechat") == {1, 4}
    assert ids(got, "never_bought") == {3}


def test_rfm_conditions_agree_with_rfm_scores_and_combine(data_dir: Path) -> None:
    got = evaluate(data_dir, {
        "top_r": {"r_score": 3},
        "codes": {"rfm_code": ["333", "331"]},
        "all_of": {"all": [{"tier": "gold"}, {"frequency": {"gte": 3}}]},
        "any_of": {"any": [{"tier": "platinum"}, {"recency_days": {"gt": 300}}]},
        "not_reachable": {"not": {"reachable": ["sms", "wechat", "alipay"]}},
        "implicit_all": {"tier": "normal", "has_purchased": True},
        "lost": {"rfm_segment": ["Lost", "流失风险客户"]},
        "eight": {"eight_class": ["Important Value", "重要发展客户"]},
    })
    scores = rfm_scores(transactions_frame(), bins=3).set_index("member_id")
    assert scores.recency_days.to_dict() == {1: 1, 2: 0, 4: 423, 5: 27, 6: 0}
    assert ids(got, "top_r") == set(scores.index[scores.r_score == 3])
    assert ids(got, "codes") == set(scores.index[scores.rfm_code.isin(["333", "331"])])
    assert ids(got, "all_of") == {1}  # three purchase days: 01-10, 02-20, 02-27 (merged)
    assert ids(got, "any_of") == {2, 4}
    assert ids(got, "not_reachable") == {2, 5}
    assert ids(got, "implicit_all") == {6}
    assert ids(got, "lost") == set(scores.index[scores.segment.isin(["Lost", "At Risk"])])
    assert 4 in ids(got, "lost")
    assert ids(got, "eight") == {1, 2}


def test_member_columns_mapped_from_a_csv_with_other_names(data_dir: Path) -> None:
    renamed = members_frame().rename(columns={"member_id": "vip_no", "tier": "level",
                                              "phone": "mobile"})
    renamed.to_csv(data_dir / "crm.csv", index=False)
    columns = {"member_id": "vip_no", "tier": "level", "phone": "mobile"}
    got = evaluate(data_dir, {"gold": {"tier": "gold"}, "sms": {"reachable": "sms"}},
                   members={"path": "crm.csv", "columns": columns})
    assert ids(got, "gold") == {1}
    assert ids(got, "sms") == {1, 4, 6}
    with pytest.raises(InvalidInput) as missing:
        evaluate(data_dir, {"gold": {"tier": "gold"}},
                 members={"path": "crm.csv", "columns": {**columns, "points": "bonus"}})
    assert missing.value.field == "members.columns.points"


def test_clusters_are_available_to_rules(data_dir: Path) -> None:
    got = evaluate(data_dir, {"first": {"cluster": 0}}, clusters={"k": 2, "seed": 1})
    assert got.clustering is not None and got.clustering.k == 2
    assert 0 < len(ids(got, "first")) < 5


BASE: dict[str, Any] = {"transactions": {"path": "tx.parquet"},
                        "segments": [{"name": "a", "where": {"tier": "gold"}}]}


def with_where(where: Any) -> dict[str, Any]:
    return {**BASE, "segments": [{"name": "a", "where": where}]}


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({**BASE, "colour": 1}, "colour"),
        ({"segments": BASE["segments"]}, "transactions"),
        ({**BASE, "transactions": {"path": "a", "clickhouse_table": "b"}}, "transactions"),
        ({**BASE, "transactions": {"clickhouse_table": "tx; DROP"}},
         "transactions.clickhouse_table"),
        ({**BASE, "transactions": {"path": "a", "amount_unit": "jiao"}},
         "transactions.amount_unit"),
        ({**BASE, "rfm": {"bins": 7}}, "rfm.bins"),
        ({**BASE, "rfm": {"monetary": "max"}}, "rfm.monetary"),
        ({**BASE, "timezone": "Mars/Olympus"}, "timezone"),
        ({**BASE, "today": "yesterday"}, "today"),
        ({**BASE, "clusters": {"k": 1}}, "clusters.k"),
        ({**BASE, "segments": []}, "segments"),
        ({**BASE, "segments": [{"name": "a", "where": {"tier": "gold"}}] * 2}, "segments[1].name"),
        ({**BASE, "segments": [{"name": "a"}]}, "segments[0].where"),
        (with_where({"tier": "diamond"}), "segments[0].where.tier"),
        (with_where({"points": 5}), "segments[0].where.points"),
        (with_where({"points": {"above": 5}}), "segments[0].where.points.above"),
        (with_where({"points": {"gte": "many"}}), "segments[0].where.points.gte"),
        (with_where({"all": [{"tier": "gold"}, {"reachable": "fax"}]}),
         "segments[0].where.all[1].reachable"),
        (with_where({"not": {"rfm_segment": "Whales"}}), "segments[0].where.not.rfm_segment"),
        (with_where({"any": []}), "segments[0].where.any"),
        (with_where({"cluster": 1}), "segments[0].where.cluster"),
        (with_where({"r_score": "4-6"}), "segments[0].where.r_score"),
        (with_where({"dormant_days": 0}), "segments[0].where.dormant_days"),
        (with_where({"birthday_within_days": "soon"}), "segments[0].where.birthday_within_days"),
        (with_where({"registered_before": "2024-13-01"}), "segments[0].where.registered_before"),
        (with_where({"favourite_colour": "red"}), "segments[0].where.favourite_colour"),
        (with_where([]), "segments[0].where"),
        ({**BASE, "members": {"path": "m.csv", "columns": {"shoe_size": "x"}}},
         "members.columns.shoe_size"),
        ({**BASE, "members": {"path": "m.csv", "columns": {"tier": "a b"}}},
         "members.columns.tier"),
    ],
)
def test_invalid_rules_name_the_field(data: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidRule) as error:
        parse_rules(data, base=Path("."))
    assert error.value.field == field


def test_unreadable_rules_file(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text("segments: [unclosed", encoding="utf-8")
    with pytest.raises(InvalidRule, match="not valid YAML"):
        load_rules(tmp_path / "bad.yaml")
    with pytest.raises(InvalidRule, match="cannot read"):
        load_rules(tmp_path / "missing.yaml")


def text(value: object) -> str | None:
    return None if pd.isna(value) else str(value)


def load_members_into(client: ClickHouse) -> None:
    client.execute(
        "CREATE TABLE members (member_id UInt64, tier String, points Int64, balance_fen Int64, "
        "home_store_id Int32, phone Nullable(String), wechat_openid Nullable(String), "
        "wechat_subscribed UInt8, consent_sms UInt8, consent_wechat UInt8) "
        "ENGINE = MergeTree() ORDER BY member_id"
    )
    frame = members_frame()
    client.insert("members", ["member_id", "tier", "points", "balance_fen", "home_store_id",
                              "phone", "wechat_openid", "wechat_subscribed", "consent_sms",
                              "consent_wechat"],
                  [(int(r.member_id), r.tier, int(r.points), int(r.balance_fen),
                    int(r.home_store_id), text(r.phone), text(r.wechat_openid),
                    int(r.wechat_subscribed),
                    int(r.consent_sms), int(r.consent_wechat)) for r in frame.itertuples()])
    client.execute("CREATE TABLE tx (member_id UInt64, ts DateTime('UTC'), amount_fen Int64) "
                   "ENGINE = MergeTree() ORDER BY member_id")
    client.insert("tx", ["member_id", "ts", "amount_fen"],
                  [(int(m), t.to_pydatetime(), int(a))
                   for m, t, a in transactions_frame().itertuples(index=False)])


def check_clickhouse_rules(client: ClickHouse, tmp_path: Path) -> None:
    load_members_into(client)
    rules = parse_rules({
        "transactions": {"clickhouse_table": "tx"},
        "members": {"clickhouse_table": "members"},
        "rfm": {"bins": 3},
        "segments": [
            {"name": "sms", "where": {"reachable": "sms"}},
            {"name": "gold_buyers", "where": {"tier": ["gold", "platinum"], "has_purchased": True}},
            {"name": "wechat", "where": {"reachable": "wechat"}},
        ],
    }, base=tmp_path)
    got = evaluate_rules(rules, clickhouse=client, today=TODAY)
    assert ids(got, "sms") == {1, 4, 6}
    assert ids(got, "gold_buyers") == {1, 2}
    assert ids(got, "wechat") == {1}


def test_rules_on_clickhouse_server(clickhouse_driver: ClickHouse, tmp_path: Path) -> None:
    check_clickhouse_rules(clickhouse_driver, tmp_path)


def test_rules_on_chdb(chdb_client: ClickHouse, tmp_path: Path) -> None:
    check_clickhouse_rules(chdb_client, tmp_path)
