"""The ROI report on chDB and on the 18.16 server: a planted effect is recovered within the
interval, the SQL numbers equal the same numbers computed in pandas from the raw rows, refunds
count their coupon cost once, and a too-small holdout gives no interval."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pandas as pd
import pytest

from analytics.errors import UnknownCampaign
from analytics.events import event_row
from analytics.loader import INSERT_COLUMNS, ORDER_COLUMNS
from analytics.report import RoiConfig, report_json, roi_report
from analytics.schema import EVENTS_TABLE, ORDERS_TABLE, migrate
from analytics.synthetic import PlantedCampaign, planted_campaign
from analytics.uplift import Moments, welch_cuped
from infra.clickhouse import ClickHouse

CONFIG = RoiConfig(margin_permille=400, min_holdout=50,
                   send_price_fen={"sms": 4, "wechat": 1, "alipay": 0})


@pytest.fixture(params=["chdb", "server"])
def ch(request: pytest.FixtureRequest) -> ClickHouse:
    name = "chdb_client" if request.param == "chdb" else "clickhouse_driver"
    client: ClickHouse = request.getfixturevalue(name)
    migrate(client)
    return client


def _load(ch: ClickHouse, campaign: PlantedCampaign, *, twice: bool = False) -> None:
    rows = [(*event_row(e), "1-0") for e in campaign.events()]
    ch.insert(EVENTS_TABLE, INSERT_COLUMNS, rows)
    if twice:  # rows present twice before a merge still count once
        ch.insert(EVENTS_TABLE, INSERT_COLUMNS, rows[:50])
    ch.insert(ORDERS_TABLE, ORDER_COLUMNS, campaign.order_rows())


def _pandas(campaign: PlantedCampaign) -> dict[str, object]:
    """The report's numbers from the raw arrays, with pandas and numpy only."""
    start = campaign.start
    frame = pd.DataFrame({
        "held": campaign.held,
        "y": campaign.member_spend(start, start + timedelta(days=14)),
        "x": campaign.member_spend(start - timedelta(days=28), start),
    })
    t, c = frame[~frame.held], frame[frame.held]
    pooled_cov = np.cov(frame.x, frame.y, ddof=1)
    theta = pooled_cov[0, 1] / pooled_cov[0, 0]
    adj_t, adj_c = t.y - theta * t.x, c.y - theta * c.x
    redeemed = int(campaign.redeemed.sum())
    refunded = int(campaign.refunded.sum())
    sent = (~campaign.held).nonzero()[0]
    messages = {ch: int((sent % 3 == i).sum()) for i, ch in enumerate(("sms", "wechat", "alipay"))}
    return {
        "targeted": len(t), "held_out": len(c), "redeemed": redeemed - refunded,
        "coupon_cost_fen": (redeemed - refunded) * campaign.discount_fen,
        "send_cost_fen": messages["sms"] * 4 + messages["wechat"] * 1,
        "uplift": adj_t.mean() - adj_c.mean(),
        "se": np.sqrt(adj_t.var(ddof=1) / len(t) + adj_c.var(ddof=1) / len(c)),
        "revenue_per_treated_fen": round(t.y.mean()),
    }


def test_planted_effect_recovered_and_sql_equals_pandas(ch: ClickHouse) -> None:
    campaign = planted_campaign(members=1200, effect_fen=3000, seed=7)
    _load(ch, campaign, twice=True)
    [report] = roi_report(ch, merchant_id="m1", campaign_id="c1", config=CONFIG)
    row = report_json([report], config=CONFIG)["campaigns"][0]["rows"][0]
    expected = _pandas(campaign)
    for key in ("targeted", "held_out", "redeemed", "coupon_cost_fen", "send_cost_fen",
                "revenue_per_treated_fen"):
        assert row[key] == expected[key], key
    uplift = report.rows[0].uplift
    assert uplift is not None
    assert uplift.per_member == pytest.approx(expected["uplift"], rel=1e-9)
    assert uplift.std_error == pytest.approx(expected["se"], rel=1e-9)
    assert uplift.low < 3000 < uplift.high  # the planted effect inside the interval
    assert uplift.variance_reduction > 0.1  # CUPED removed what pre-campaign spend explains
    assert row["note"] == ""
    assert row["incremental_revenue_low_fen"] < row["incremental_revenue_fen"] \
        < row["incremental_revenue_high_fen"]
    assert row["roi_low"] < row["roi"] < row["roi_high"]


def test_same_report_on_both_engines(chdb_client: ClickHouse,
                                     clickhouse_driver: ClickHouse) -> None:
    campaign = planted_campaign(members=600, effect_fen=2000, seed=3)
    answers = []
    for client in (chdb_client, clickhouse_driver):
        migrate(client)
        _load(client, campaign)
        answers.append({by: report_json(roi_report(client, merchant_id="m1", by=by,
                                                   config=CONFIG), config=CONFIG)
                        for by in ("campaign", "segment", "channel", "store", "day")})
    assert answers[0] == answers[1]
    channels = [r["value"] for r in answers[0]["channel"]["campaigns"][0]["rows"]]
    assert channels == ["alipay", "sms", "wechat"]
    assert answers[0]["campaign"]["campaigns"][0]["movement"]


def test_refund_cost_counted_once(ch: ClickHouse) -> None:
    campaign = planted_campaign(members=400, effect_fen=0, seed=11, discount_fen=2000)
    assert campaign.refunded.sum() > 0
    _load(ch, campaign)
    [report] = roi_report(ch, merchant_id="m1", config=CONFIG)
    net = int(campaign.redeemed.sum() - campaign.refunded.sum())
    assert report.rows[0].coupon_cost_fen == net * 2000


def test_small_holdout_claims_no_interval(ch: ClickHouse) -> None:
    campaign = planted_campaign(members=300, effect_fen=1000, seed=5, holdout_share=0.05)
    _load(ch, campaign)
    [report] = roi_report(ch, merchant_id="m1", config=CONFIG)
    row = report_json([report], config=CONFIG)["campaigns"][0]["rows"][0]
    assert row["uplift_per_member_fen"] is None and row["roi"] is None
    assert row["note"].startswith("holdout_too_small:")


def test_unknown_campaign_is_an_error(ch: ClickHouse) -> None:
    with pytest.raises(UnknownCampaign):
        roi_report(ch, merchant_id="m1", campaign_id="nosuch", config=CONFIG)


def test_interval_covers_the_truth_in_at_least_90_of_100() -> None:
    """100 seeded small campaigns, each summarised as SQL would (sums per group)."""
    covered = 0
    for seed in range(100):
        c = planted_campaign(members=400, effect_fen=1500, seed=1000 + seed)
        y = c.member_spend(c.start, c.start + timedelta(days=14))
        x = c.member_spend(c.start - timedelta(days=28), c.start)
        groups = [Moments(int(m.sum()), y[m].sum(), (y[m] ** 2).sum(), x[m].sum(),
                          (x[m] ** 2).sum(), (x[m] * y[m]).sum()) for m in (~c.held, c.held)]
        uplift = welch_cuped(*groups)
        covered += uplift.low <= 1500 <= uplift.high
    assert covered >= 90


def test_orders_filtered_by_members_or_not_give_the_same_cells(ch: ClickHouse) -> None:
    """The report filters orders by the campaign's members first only when the campaign is
    small; both query shapes count the same, and orders of other members count in neither."""
    from analytics.queries import bind, placeholders, roi_cells_sql

    campaign = planted_campaign(members=300, effect_fen=1000, seed=13)
    _load(ch, campaign)
    others = [("m1", f"x{n}", "S1", f"X{n}", campaign.start + timedelta(days=n % 20 - 10),
               5000, "", "", "", "synthetic") for n in range(4000)]
    ch.insert(ORDERS_TABLE, ORDER_COLUMNS, others)
    [report] = roi_report(ch, merchant_id="m1", by="segment", config=CONFIG)
    start = report.start
    params = {"merchant": "m1", "campaign": "c1", "start": start, "end": report.end,
              "pre_start": report.pre_start, "history_start": start - timedelta(days=365)}
    cells = []
    for members_only in (False, True):
        sql = roi_cells_sql("segment", members_only=members_only)
        cells.append(ch.query(bind(sql, {k: v for k, v in params.items()
                                         if k in placeholders(sql)})))
    assert cells[0] == cells[1]
    assert sum(int(c[4]) for c in cells[0]) == len(campaign.member_ids)
    assert sum(r.treated.members + r.held.members for r in report.rows) == \
        len(campaign.member_ids)
