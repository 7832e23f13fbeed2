"""Campaign content checks: every problem named at once, Chinese text, channel limits."""

from __future__ import annotations

from dataclasses import replace

import pytest

from channels.content import (
    DEFAULT_SMS,
    DEFAULT_WECHAT,
    CampaignContent,
    WeChatTemplate,
    validate,
)
from channels.errors import ContentError

GOOD = {"name": "张三", "coupon": "满100减20券", "code": "QP7K2M9X4B6N8R3T", "value": "20元",
        "expiry": "2026-12-31", "store": "南京西路店", "link": "https://m.example.cn/c/1"}
WITH_AMOUNT = WeChatTemplate(template_id="T2", keywords={
    "thing1": ("thing", "coupon"), "amount2": ("amount", "value"), "time3": ("time", "expiry")})


def test_good_content_passes_and_renders() -> None:
    validate(CampaignContent(sms=DEFAULT_SMS, wechat=DEFAULT_WECHAT), GOOD)
    validate(CampaignContent(wechat=WITH_AMOUNT), GOOD)
    text = DEFAULT_SMS.render(GOOD)
    assert text.startswith("【券派】张三您好，您的满100减20券已到账")
    assert DEFAULT_WECHAT.data(GOOD) == {
        "thing1": {"value": "满100减20券"}, "character_string2": {"value": "QP7K2M9X4B6N8R3T"},
        "time3": {"value": "2026-12-31"}, "thing4": {"value": "张三"}}


def test_every_problem_is_reported_with_its_field() -> None:
    bad = {**GOOD, "name": "", "store": "http://x.cn", "coupon": "【限时】" + "券" * 30,
           "value": "二十元", "code": "券码 1", "extra": "x"}
    with pytest.raises(ContentError) as info:
        validate(CampaignContent(sms=DEFAULT_SMS, wechat=DEFAULT_WECHAT,
                                 alipay_memo="${coupon}${missing}"), bad)
    fields = {f for f, _ in info.value.problems}
    assert fields == {
        "variables.extra", "sms.variables.name", "sms.variables.store",
        "sms.variables.coupon", "wechat.variables.coupon", "wechat.variables.code",
        "wechat.variables.name", "alipay.variables.missing",
    }
    messages = dict(info.value.problems)
    assert "20" in messages["wechat.variables.coupon"]  # thing: at most 20 characters
    with pytest.raises(ContentError) as amount:
        validate(CampaignContent(wechat=WITH_AMOUNT), bad | {"coupon": "券"})
    assert [f for f, _ in amount.value.problems] == ["variables.extra",
                                                     "wechat.variables.value"]


def test_sms_length_limit() -> None:
    long_store = {**GOOD, "store": "店" * 35}
    short = CampaignContent(sms=replace(DEFAULT_SMS, code="S", text="${store}" * 20,
                                        max_length=300))
    with pytest.raises(ContentError, match=r"sms\.text"):
        validate(short, long_store)
