"""The variables a campaign's messages are filled with (``channels.content.VARIABLES``).

Campaign-wide values (coupon title, value, expiry, store, link) are worked out once at launch
and kept in the campaign; the member's name and coupon code are added per message. Every
variable a provider template names gets a value: an SMS greets the member by name (requests
then group by name, which costs more SendBatchSms calls than one SendSms of 1,000 numbers,
but the member reads their own name).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dispatcher.campaigns import Campaign
    from dispatcher.definition import CampaignDefinition

DEFAULT_STORE = "全部门店"
DEFAULT_NAME = "会员"


def campaign_variables(definition: CampaignDefinition, issue_day: date) -> dict[str, Any]:
    """What every message of the campaign shares, kept in ``Campaign.extra``."""
    coupon = definition.coupon
    return {
        "expiry": coupon.expiry(issue_day).isoformat(),
        "value": definition.content.get("value") or coupon.value,
        "value_fen": str(coupon.discount_fen),
        "stores": definition.content.get("store") or DEFAULT_STORE,
        "link": definition.content.get("link", ""),
    }


def message_variables(campaign: Campaign, *, channel: str, name: str, code: str
                      ) -> dict[str, str]:
    """Template variables of one member's message on ``channel``."""
    extra = campaign.extra
    variables = {
        "name": name or DEFAULT_NAME,
        "coupon": campaign.coupon_title,
        "expiry": str(extra.get("expiry", "")),
        "store": str(extra.get("stores", DEFAULT_STORE)),
        "value": str(extra.get("value", "")),
    }
    if channel == "sms":
        return variables  # the approved SMS template names no code or link
    variables["code"] = code
    variables["link"] = str(extra.get("link", ""))
    if channel == "alipay_cash":
        variables["value_fen"] = str(extra.get("value_fen", ""))
    return variables


def variables_filler(campaign: Campaign, *, channel: str) -> Callable[[str, str], dict[str, str]]:
    """``message_variables`` of one campaign and channel as ``fill(name, code)``: the values
    every message shares are worked out once, each message copies them (a worker fills one
    a member)."""
    shared = message_variables(campaign, channel=channel, name="", code="")
    with_code = "code" in shared

    def fill(name: str, code: str) -> dict[str, str]:
        variables = dict(shared)
        variables["name"] = name or DEFAULT_NAME
        if with_code:
            variables["code"] = code
        return variables

    return fill
