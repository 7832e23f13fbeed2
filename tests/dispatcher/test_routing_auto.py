"""``channels: auto`` (each member's cheapest reachable, consenting channel by the configured
price per message), ``alipay_cash`` campaigns, and every template variable filled."""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import UTC, date, datetime

import pandas as pd
import redis

from dispatcher.definition import parse_definition
from dispatcher.launch import channel_order, launch_campaign
from dispatcher.operations import build_launch_deps, parse_prices
from dispatcher.variables import campaign_variables, message_variables, variables_filler
from dispatcher.worker import start_worker
from tests.dispatcher.conftest import Simulators, flow_settings
from tests.dispatcher.test_crash import stats, wait_status


def audience() -> pd.DataFrame:
    """W: WeChat follower consenting (and a phone); A: Alipay consenting (and a phone);
    S: phone only; N: a follower who withdrew WeChat consent (and a phone): SMS."""
    kinds = ["W"] * 4 + ["A"] * 3 + ["S"] * 2 + ["N"] * 2
    return pd.DataFrame({
        "member_id": [f"{k}{i}" for i, k in enumerate(kinds)], "name": ["赵敏"] * len(kinds),
        "wechat_openid": [f"o{i:027d}" if k in "WN" else None for i, k in enumerate(kinds)],
        "wechat_subscribed": [k in "WN" for k in kinds],
        "consent_wechat": [k != "N" for k in kinds],
        "alipay_user_id": [f"2088{i:012d}" if k == "A" else None for i, k in enumerate(kinds)],
        "consent_alipay": [k == "A" for k in kinds],
        "phone": [f"138{i:08d}" for i in range(len(kinds))],
        "consent_sms": [True] * len(kinds),
    })


def test_auto_order_follows_configured_prices() -> None:
    auto = parse_definition({"name": "t", "audience": {"snapshot": "-"}, "channels": "auto"})
    configured = ("wechat", "wechat_mass", "sms", "alipay", "alipay_cash")
    assert channel_order(auto, {"wechat": 0, "alipay": 0, "sms": 5}, configured) == \
        ("wechat", "alipay", "sms")
    prices = parse_prices("sms=1,wechat=2,alipay=3")
    assert channel_order(auto, prices, configured) == ("sms", "wechat", "alipay")


def test_every_variable_is_filled() -> None:
    definition = parse_definition({"name": "t", "audience": {"snapshot": "-"},
                                   "coupon": {"threshold_fen": 5000, "discount_fen": 850},
                                   "content": {"store": "徐家汇店", "link": "pages/c/1"}})
    from dispatcher.campaigns import Campaign

    campaign = Campaign(campaign_id="c", merchant_id="demo", name="t", template_id="1",
                        coupon_title="满50减8.5券",
                        extra=campaign_variables(definition, date(2026, 12, 3)))
    sms = message_variables(campaign, channel="sms", name="周芷若", code="CODE")
    assert sms == {"name": "周芷若", "coupon": "满50减8.5券", "expiry": "2027-01-01",
                   "store": "徐家汇店", "value": "8.50元"}
    wechat = message_variables(campaign, channel="wechat", name="", code="CODE")
    assert (wechat["name"], wechat["code"], wechat["link"]) == ("会员", "CODE", "pages/c/1")
    assert message_variables(campaign, channel="alipay_cash", name="x", code="C")[
        "value_fen"] == "850"
    # the worker's filler (shared values worked out once) gives the same variables
    for channel in ("sms", "wechat", "wechat_mass", "alipay", "alipay_cash"):
        fill = variables_filler(campaign, channel=channel)
        for name, code in (("周芷若", "CODE1"), ("", "CODE2")):
            assert fill(name, code) == message_variables(campaign, channel=channel, name=name,
                                                         code=code)
        assert fill("a", "X") is not fill("a", "X")  # each message its own dict


def test_auto_routing_and_alipay_cash_end_to_end(
    redis_url: str, redis_client: redis.Redis, simulators: Simulators,
) -> None:
    settings = replace(flow_settings(redis_url, simulators), batch_size=20)
    deps = build_launch_deps(settings)
    worker = start_worker(settings, threads=2)
    try:
        auto = parse_definition({"name": "自动", "audience": {"snapshot": "-"},
                                 "channels": "auto"})
        first = launch_campaign(auto, audience(), deps=deps, now=datetime.now(UTC))
        assert wait_status(deps.store, first, {"completed"}, 60) == "completed"
        cash = parse_definition({"name": "红包", "audience": {"snapshot": "-"},
                                 "channels": ["alipay_cash"]})
        second = launch_campaign(cash, audience(), deps=deps, now=datetime.now(UTC))
        assert wait_status(deps.store, second, {"completed"}, 60) == "completed"
        time.sleep(0.2)
    finally:
        worker.stop()
    assert deps.store.progress(first).counts == {"sent:wechat": 4, "sent:alipay": 3,
                                                 "sent:sms": 4}
    # Red packets reach the Alipay users only; the others keep the coupon in their wallet.
    assert deps.store.progress(second).counts == {"sent:alipay_cash": 3,
                                                  "skipped:unreachable": 8}
    assert stats(simulators, "alipay").get("cash_triggered") == 3
    assert stats(simulators, "sms").get("recipients") == 4
