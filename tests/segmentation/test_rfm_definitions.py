"""RFM definitions on hand-made transactions: same-day merge, ties, zero spend, one-time buyers,
the as-of date, and a straightforward pandas groupby as an independent reference."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import numpy as np
import pandas as pd
import pytest

from segmentation.errors import InvalidInput
from segmentation.rfm import rfm_scores
from segmentation.segments import quantile_scores

SH = "Asia/Shanghai"


def frame(rows: Sequence[tuple[object, str, int]]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "member_id": [r[0] for r in rows],
            "ts": pd.to_datetime([r[1] for r in rows], format="ISO8601").tz_localize(SH),
            "amount_fen": [r[2] for r in rows],
        }
    )


def by_member(scores: pd.DataFrame) -> dict[object, dict[str, object]]:
    return {row["member_id"]: row for row in scores.to_dict("records")}


def test_same_day_purchases_merge_into_one_purchase_day() -> None:
    tx = frame([
        (1, "2024-03-01 08:00", 1000),
        (1, "2024-03-01 12:00", 2000),
        (1, "2024-03-01 23:59", 500),
        (1, "2024-03-03 10:00", 700),
        (2, "2024-03-03 09:00", 100),
    ])
    got = by_member(rfm_scores(tx))
    assert got[1]["frequency"] == 2
    assert got[1]["monetary_total"] == 4200
    assert got[1]["monetary_avg"] == pytest.approx(2100.0)
    assert got[2]["frequency"] == 1


def test_purchase_day_is_the_merchants_local_day_not_utc() -> None:
    # 2024-03-01 23:30 and 2024-03-02 00:30 in Shanghai are both 2024-03-01 in UTC (15:30,
    # 16:30): two purchase days for the merchant.
    tx = frame([(7, "2024-03-01 23:30", 100), (7, "2024-03-02 00:30", 100)])
    utc = tx.assign(ts=tx.ts.dt.tz_convert("UTC"))
    assert by_member(rfm_scores(utc))[7]["frequency"] == 2
    # Local 07:00 and 09:00 straddle UTC midnight (23:00 / 01:00) yet fall on one local day.
    tx = frame([(7, "2024-03-02 07:00", 100), (7, "2024-03-02 09:00", 100)])
    assert by_member(rfm_scores(tx.assign(ts=tx.ts.dt.tz_convert("UTC"))))[7]["frequency"] == 1


def test_as_of_defaults_to_last_transaction_day_and_can_be_set() -> None:
    tx = frame([
        (1, "2024-01-01 10:00", 100),
        (1, "2024-01-20 10:00", 300),
        (2, "2024-01-10 10:00", 200),
    ])
    default = by_member(rfm_scores(tx))
    assert default[1]["recency_days"] == 0
    assert default[2]["recency_days"] == 10
    later = by_member(rfm_scores(tx, as_of=dt.date(2024, 2, 1)))
    assert later[1]["recency_days"] == 12
    assert later[2]["recency_days"] == 22
    # An earlier as-of date does not see later purchases.
    earlier = by_member(rfm_scores(tx, as_of=dt.date(2024, 1, 15)))
    assert earlier[1]["recency_days"] == 14
    assert earlier[1]["frequency"] == 1
    assert earlier[1]["monetary_total"] == 100
    assert earlier[2]["recency_days"] == 5
    before_all = rfm_scores(tx, as_of=dt.date(2024, 1, 5))
    assert list(before_all.member_id) == [1]


def test_one_time_buyers_and_zero_spend() -> None:
    tx = frame([
        (1, "2024-05-01 10:00", 0),
        (2, "2024-05-02 10:00", 0),
        (2, "2024-05-03 10:00", 0),
        (3, "2024-05-03 10:00", 990),
    ])
    got = by_member(rfm_scores(tx, bins=3))
    assert got[1]["frequency"] == 1 and got[3]["frequency"] == 1
    assert got[1]["monetary_total"] == 0 and got[1]["monetary_avg"] == 0.0
    assert got[2]["monetary_total"] == 0
    # Both zero spenders tie, so share the lowest M score; the spender scores above them.
    assert got[1]["m_score"] == got[2]["m_score"] == 1
    assert got[3]["m_score"] == 3
    # One-time buyers tie on F at the bottom.
    assert got[1]["f_score"] == got[3]["f_score"] == 1
    assert got[2]["f_score"] == 3


def test_scores_are_quantile_bins_higher_is_better() -> None:
    values = np.arange(1, 11)
    assert list(quantile_scores(values, 5)) == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
    reversed_scores = quantile_scores(values, 5, higher_is_better=False)
    assert list(reversed_scores) == [5, 5, 4, 4, 3, 3, 2, 2, 1, 1]
    assert list(quantile_scores(values, 4)) == [1, 1, 1, 2, 2, 3, 3, 3, 4, 4]


def test_ties_always_share_a_score_even_when_bins_collapse() -> None:
    # 6 of 10 members bought once: they all score 1, and nobody scores 2 or 3.
    values = np.array([1, 1, 1, 1, 1, 1, 2, 2, 3, 7])
    scores = quantile_scores(values, 5)
    assert set(scores[:6]) == {1}
    assert scores[6] == scores[7] == 4
    assert list(scores[8:]) == [5, 5]
    everyone_equal = quantile_scores(np.full(9, 3.5), 5)
    assert set(everyone_equal) == {1}
    rng = np.random.default_rng(3)
    many = rng.integers(0, 20, 5000)
    s = quantile_scores(many, 5)
    for value in np.unique(many):
        assert len(set(s[many == value])) == 1
    # Monotone: a better value never scores lower.
    order = np.argsort(many, kind="stable")
    assert np.all(np.diff(s[order]) >= 0)


def test_recency_scores_reward_recent_buyers_and_code_and_segment_follow() -> None:
    rows = []
    for member in range(1, 11):
        for k in range(member):  # member k buys k days, the last on day 10 + k
            rows.append((member, f"2024-06-{10 + member - k:02d} 12:00", 1000 * member))
    got = by_member(rfm_scores(frame(rows), as_of=dt.date(2024, 6, 30)))
    assert got[10]["r_score"] == 5 and got[1]["r_score"] == 1
    assert got[10]["rfm_code"] == "555"
    assert got[10]["segment"] == "Champions"
    assert got[10]["segment_zh"] == "冠军客户"
    assert got[1]["rfm_code"] == "111" and got[1]["segment"] == "Lost"


def reference(tx: pd.DataFrame, as_of: dt.date) -> pd.DataFrame:
    """The definitions written the obvious way with pandas groupby."""
    local = tx.assign(day=tx.ts.dt.tz_convert(SH).dt.date)
    local = local[local.day <= as_of]
    days = local.groupby(["member_id", "day"], as_index=False).amount_fen.sum()
    out = days.groupby("member_id").agg(
        last=("day", "max"), frequency=("day", "size"), monetary_total=("amount_fen", "sum")
    )
    out["recency_days"] = [(as_of - d).days for d in out["last"]]
    out["monetary_avg"] = out.monetary_total / out.frequency
    return out.reset_index()


def test_matches_a_plain_groupby_on_random_transactions() -> None:
    rng = np.random.default_rng(11)
    n = 20_000
    start = pd.Timestamp("2024-01-01", tz=SH).value // 1000
    tx = pd.DataFrame({
        "member_id": rng.integers(1, 3000, n) * 7,  # sparse ids take the hashing path too
        "ts": pd.to_datetime(start + rng.integers(0, 200 * 86_400_000_000, n), unit="us", utc=True),
        "amount_fen": rng.integers(0, 50_000, n),
    })
    as_of = dt.date(2024, 6, 1)
    got = rfm_scores(tx, as_of=as_of).set_index("member_id").sort_index()
    want = reference(tx, as_of).set_index("member_id").sort_index()
    assert list(got.index) == list(want.index)
    for column in ("recency_days", "frequency", "monetary_total"):
        assert (got[column].to_numpy() == want[column].to_numpy()).all(), column
    assert np.allclose(got.monetary_avg, want.monetary_avg)
    ranks = want.monetary_total.rank(method="min")
    # Score = 1 + floor(5 * (members strictly below) / n).
    expected_m = 1 + (5 * (ranks.to_numpy() - 1) // len(want)).astype(int)
    assert (got.m_score.to_numpy() == expected_m).all()


def test_string_member_ids_yuan_amounts_and_other_column_names() -> None:
    tx = pd.DataFrame({
        "cust": ["a", "b", "a", "c"],
        "when": ["2024-01-01 10:00:00", "2024-01-02 10:00:00", "2024-01-03 10:00:00",
                 "2024-01-03 11:00:00"],
        "paid": [12.34, 0.1, 1.0, 99.99],
    })
    got = by_member(rfm_scores(tx, member_col="cust", time_col="when", amount_col="paid",
                               amount_unit="yuan"))
    assert got["a"]["monetary_total"] == 1334
    assert got["b"]["monetary_total"] == 10
    assert got["c"]["monetary_total"] == 9999
    assert got["a"]["frequency"] == 2


def test_bad_input_names_the_field() -> None:
    tx = frame([(1, "2024-01-01 10:00", 100)])
    with pytest.raises(InvalidInput) as missing:
        rfm_scores(tx, amount_col="amount")
    assert missing.value.field == "amount_col"
    with pytest.raises(InvalidInput) as bins:
        rfm_scores(tx, bins=6)
    assert bins.value.field == "bins"
    with pytest.raises(InvalidInput) as negative:
        rfm_scores(tx.assign(amount_fen=-5))
    assert negative.value.field == "amount"
    with pytest.raises(InvalidInput) as fractional:
        rfm_scores(tx.assign(amount_fen=1.5))
    assert fractional.value.field == "amount_fen"
    with pytest.raises(InvalidInput) as monetary:
        rfm_scores(tx, monetary="max")  # type: ignore[arg-type]
    assert monetary.value.field == "monetary"
