"""Coupon conditions on the real catalog: coupons issued and redeemed over its HTTP API on a real
Redis, exported by ``catalog.holdings.coupon_facts``, then targeted with "expires within 3 days
and unused" (券到期提醒), redeemed / never redeemed, and received counts."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pandas as pd
import redis
import yaml

from catalog.holdings import coupon_facts
from dispatcher.audience import load_audience
from dispatcher.definition import Audience
from dispatcher.operations import audience_sources
from segmentation.audience import evaluate_rules
from segmentation.rules import parse_rules
from tests.catalog.conftest import ApiServer, Http, run_http, single_api  # noqa: F401

SH = "Asia/Shanghai"


def _data(directory: Path) -> None:
    # members 1-8; 1 and 2 bought once, the others never
    pd.DataFrame({"member_id": range(1, 9), "tier": ["normal"] * 8}).to_parquet(
        directory / "members.parquet")
    tx = pd.DataFrame({"member_id": [1, 2], "amount_fen": [1000, 2000],
                       "ts": pd.to_datetime(["2026-11-20 12:00"] * 2).tz_localize(SH)})
    tx.to_parquet(directory / "tx.parquet")


def test_expiring_unused_coupons_are_exactly_the_unredeemed_holders(
    single_api: ApiServer, redis_client: redis.Redis, tmp_path: Path,  # noqa: F811
) -> None:
    codes: dict[str, str] = {}

    async def scenario(http: Http) -> None:
        op = http.as_(single_api.token("operator"))
        cashier = http.as_(single_api.token("cashier", store="S1"))
        short: dict[str, Any] = {"name": "到期提醒券", "kind": "cash", "discount_fen": 500,
                                 "total_stock": 100, "valid_days": 5}
        status, body = await op("POST", "/v1/templates", short)
        assert status == 201, body
        soon = body["template_id"]
        status, body = await op("POST", "/v1/templates", {**short, "valid_days": 30})
        assert status == 201, body
        later = body["template_id"]
        for member in ("1", "2", "3", "4", "5", "6"):
            status, body = await op("POST", "/v1/coupons", {
                "template_id": soon, "member_id": member, "campaign_id": "remind"})
            assert status == 201, body
            codes[member] = body["coupons"][0]["code"]
        for member in ("7", "8", "1"):
            status, body = await op("POST", "/v1/coupons", {
                "template_id": later, "member_id": member, "campaign_id": "autumn"})
            assert status == 201, body
        for member in ("2", "4"):
            status, body = await cashier("POST", "/v1/redemptions", {
                "code": codes[member], "order_id": f"O{member}", "store_id": "S1",
                "amount_fen": 3000})
            assert status == 201, body
        codes["soon"], codes["later"] = soon, later

    run_http(single_api, scenario)  # the API's clock: 2026-11-23 10:00, so "soon" ends 11-27
    facts = coupon_facts(redis_client, "m1")
    assert len(facts["member_id"]) == 9
    assert sorted(m for m, r in zip(facts["member_id"], facts["redeemed"], strict=True)
                  if r is not None) == ["2", "4"]

    _data(tmp_path)
    rules = parse_rules({
        "transactions": {"path": "tx.parquet"}, "members": {"path": "members.parquet"},
        "segments": [
            {"name": "expiring", "where": {"holds_coupon": {"expires_within_days": 3}}},
            {"name": "expiring_soon_template",
             "where": {"holds_coupon": {"template": codes["soon"], "expires_within_days": 3}}},
            {"name": "holds_any", "where": {"holds_coupon": True}},
            {"name": "redeemed_remind", "where": {"redeemed_coupon": {"campaign": "remind"}}},
            {"name": "got_remind_never_used",
             "where": {"coupons_received": {"campaign": "remind", "gte": 1},
                       "never_redeemed_coupon": {"campaign": "remind"}}},
            {"name": "two_in_a_week", "where": {"coupons_received": {"last": "7d", "gte": 2}}},
        ],
    }, base=tmp_path)
    got = evaluate_rules(rules, as_of=dt.date(2026, 11, 24),
                         coupon_facts=lambda: coupon_facts(redis_client, "m1"))

    def ids(name: str) -> set[int]:
        return {int(v) for v in got.members_of(name).member_id}

    # "soon" coupons last through 11-27: 3 days after 11-24; "later" ones through 12-22
    assert ids("expiring") == {1, 3, 5, 6}
    assert ids("expiring_soon_template") == {1, 3, 5, 6}
    assert ids("holds_any") == {1, 3, 5, 6, 7, 8}
    assert ids("redeemed_remind") == {2, 4}
    assert ids("got_remind_never_used") == {1, 3, 5, 6}
    assert ids("two_in_a_week") == {1}
    # a campaign whose audience is this rules file gets the same members (券到期提醒)
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump({
        "transactions": {"path": "tx.parquet"}, "members": {"path": "members.parquet"},
        "segments": [{"name": "expiring",
                      "where": {"holds_coupon": {"expires_within_days": 3}}}]}), "utf-8")
    audience = load_audience(Audience(rules=tmp_path / "rules.yaml", segment="expiring"),
                             as_of=dt.date(2026, 11, 24),
                             **audience_sources(redis_client, "m1"))
    assert sorted(audience.member_id.tolist()) == [1, 3, 5, 6]
    # a day later than the last valid day, nothing is expiring any more
    after = evaluate_rules(rules, as_of=dt.date(2026, 11, 28),
                           coupon_facts=lambda: coupon_facts(redis_client, "m1"))
    assert set(after.members_of("expiring").member_id) == set()
    assert {int(v) for v in after.members_of("holds_any").member_id} == {1, 7, 8}
