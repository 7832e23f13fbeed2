"""Campaign content checks: every problem named at once, Chinese text, channel limits."""

from __future__ import annotations

import pytest

from channels.content import DEFAULT_SMS, DEFAULT_WECHAT, CampaignContent, validate
from channels.errors import ContentError

GOOD = {"name": "张三", "coupon": "满100减20券", "value": "20元", "expiry": "2026-12-31",
        "store": "南京西路店", "link": "https://m.example.cn/c/1"}


def test_good_content_passes_and_renders() -> None:
    validate(CampaignContent(sms=DEFAULT_SMS, wechat=DEFAULT_WECHAT), GOOD)
    text = DEFAULT_SMS.render(GOOD)
    assert text.startswith("【券派】张三您好，您的满100减20券已到账")
    assert DEFAULT_WECHAT.data(GOOD)["amount2"] == {"value": "20元"}


def test_every_problem_is_reported_with_its_field() -> None:
    bad = {**GOOD, "name": "", "store": "http://x.cn", "coupon": "【限时】" + "券" * 30,
           "value": "二十元", "extra": "x"}
    with pytest.raises(ContentError) as info:
        validate(CampaignContent(sms=DEFAULT_SMS, wechat=DEFAULT_WECHAT,
                                 alipay_memo="${coupon}${missing}"), bad)
    fields = {f for f, _ in info.value.problems}
    assert fields == {
        "variables.extra", "sms.variables.name", "sms.variables.store",
        "sms.variables.coupon", "wechat.variables.coupon", "wechat.variables.value",
        "alipay.variables.missing",
    }
    messages = dict(info.value.problems)
    assert "20" in messages["wechat.variables.coupon"]  # thing: at most 20 characters


def test_sms_length_limit() -> None:
    long_store = {**GOOD, "store": "店" * 35}
    short = CampaignContent(sms=DEFAULT_SMS.__class__(code="S", text="${store}" * 20,
                                                      max_length=300))
    with pytest.raises(ContentError, match=r"sms\.text"):
        validate(short, long_store)
