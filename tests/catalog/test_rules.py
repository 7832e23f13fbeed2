"""Merchant rules: tier upgrades, stored-value discounts in time windows, points, validation."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from catalog.errors import InvalidInput
from catalog.rules import rules_from_json

TZ = ZoneInfo("Asia/Shanghai")
RULES = rules_from_json({
    "tiers": [{"tier": "silver", "min_spend_fen": 100000},
              {"tier": "gold", "min_spend_fen": 500000, "min_points": 3000},
              {"tier": "platinum", "min_recharge_fen": 1000000}],
    "earn_fen_per_point": {"": 2000, "gold": 1800, "platinum": 1000},
    "balance_discounts": [{"min_balance_fen": 10000, "permille": 980},
                          {"min_balance_fen": 100000, "permille": 950}],
    "windows": [{"weekdays": [3], "start": "10:00", "end": "22:00", "extra_permille": 900}],
})


def test_tier_upgrades_by_spend_points_or_recharge_never_down() -> None:
    assert RULES.tier_for(spend_fen=150000, recharge_fen=0, points=0, current="") == "silver"
    assert RULES.tier_for(spend_fen=0, recharge_fen=0, points=3000, current="silver") == "gold"
    assert RULES.tier_for(spend_fen=0, recharge_fen=1000000, points=0, current="") == "platinum"
    assert RULES.tier_for(spend_fen=0, recharge_fen=0, points=0, current="gold") == "gold"


def test_points_by_tier_rate() -> None:
    assert RULES.earn_points("platinum", 10000) == 10  # 1 point per 10 yuan
    assert RULES.earn_points("gold", 18000) == 10  # 1 point per 18 yuan
    assert RULES.earn_points("unknown", 20000) == 10


def test_stored_value_discount_by_balance_and_member_day_window() -> None:
    tuesday = datetime(2026, 11, 24, 12, 0, tzinfo=TZ)
    wednesday = datetime(2026, 11, 25, 12, 0, tzinfo=TZ)
    late_wednesday = datetime(2026, 11, 25, 22, 30, tzinfo=TZ)
    assert RULES.balance_permille(5000, tuesday) == 1000
    assert RULES.balance_permille(10000, tuesday) == 980
    assert RULES.balance_permille(100000, tuesday) == 950
    assert RULES.balance_permille(100000, wednesday) == 855
    assert RULES.balance_permille(100000, late_wednesday) == 950


@pytest.mark.parametrize(("doc", "field"), [
    ({"tier_discount_permille": {"gold": 0}}, "tier_discount_permille.gold"),
    ({"windows": [{"weekdays": [8], "start": "10:00", "end": "11:00",
                   "extra_permille": 900}]}, "windows[0].weekdays"),
    ({"windows": [{"weekdays": [1], "start": "ten", "end": "11:00",
                   "extra_permille": 900}]}, "windows[0].start"),
    ({"post_payment": [{"points": 5}]}, "post_payment[0].rule_id"),
    ({"random_min_fen": 10, "random_max_fen": 5}, "random_max_fen"),
    ({"colour": "red"}, "colour"),
])
def test_bad_rules_name_the_field(doc: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidInput) as err:
        rules_from_json(doc)
    assert err.value.field == field


def test_rules_round_trip() -> None:
    assert rules_from_json(RULES.to_json()) == RULES
