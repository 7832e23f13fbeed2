"""A merchant's marketing rules: tiers, stored-value discounts, points, recharge bonuses,
post-payment rewards and the random reduction. One JSON document per merchant, set by an
operator (``PUT /v1/config``) and validated here field by field.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import datetime, time
from typing import Any

from catalog.errors import InvalidInput


@dataclass(frozen=True)
class TimeWindow:
    """A special window (e.g. member day, Wednesday 10:00-22:00) with an extra discount."""

    weekdays: tuple[int, ...]  # ISO weekdays, 1 = Monday
    start: str  # "HH:MM", merchant-local
    end: str
    extra_permille: int  # multiplies the stored-value discount (950 = a further 5% off)

    def contains(self, moment: datetime) -> bool:
        hhmm = moment.strftime("%H:%M")
        return moment.isoweekday() in self.weekdays and self.start <= hhmm < self.end


@dataclass(frozen=True)
class RechargeRule:
    """充值赠送: recharge at least ``min_fen`` -> bonus now, a monthly installment, coupons."""

    min_fen: int
    bonus_now_fen: int = 0
    monthly_fen: int = 0
    months: int = 0
    template_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class PostPaymentRule:
    """支付后营销: after a payment matching stores/tiers/amount, grant rewards within limits."""

    rule_id: str
    min_amount_fen: int = 0
    stores: tuple[str, ...] = ()  # empty: every store
    tiers: tuple[str, ...] = ()  # empty: every tier
    points: int = 0
    experience: int = 0
    template_ids: tuple[str, ...] = ()  # coupons or count cards granted
    per_store_limit: int = 0  # rewards per member per store (0: no limit)
    total_limit: int = 0  # rewards per member across stores (0: no limit)


@dataclass(frozen=True)
class TierRule:
    """Reach any of the thresholds and the member moves up to ``tier``."""

    tier: str
    min_spend_fen: int = 0
    min_recharge_fen: int = 0
    min_points: int = 0


@dataclass(frozen=True)
class MerchantRules:
    tier_discount_permille: dict[str, int] = field(default_factory=dict)
    balance_discounts: tuple[tuple[int, int], ...] = ()  # (min balance fen, permille)
    windows: tuple[TimeWindow, ...] = ()
    points_fen_per_100: int = 100  # 100 points are worth this many fen
    max_points_permille: int = 500  # points pay at most this share of the order
    earn_fen_per_point: dict[str, int] = field(default_factory=lambda: {"": 1000})
    tiers: tuple[TierRule, ...] = ()  # lowest first
    recharge: tuple[RechargeRule, ...] = ()
    post_payment: tuple[PostPaymentRule, ...] = ()
    random_min_fen: int = 0
    random_max_fen: int = 0
    points_mall: dict[str, int] = field(default_factory=dict)  # template id -> points price

    def balance_permille(self, balance_fen: int, moment: datetime) -> int:
        """储值折上折 for a member paying from a balance of ``balance_fen`` at ``moment``."""
        rate = 1000
        for minimum, permille in sorted(self.balance_discounts):
            if balance_fen >= minimum:
                rate = permille
        if rate < 1000:
            for window in self.windows:
                if window.contains(moment):
                    rate = rate * window.extra_permille // 1000
        return rate

    def earn_points(self, tier: str, paid_fen: int) -> int:
        per_point = self.earn_fen_per_point.get(tier) or self.earn_fen_per_point.get("") or 0
        return paid_fen // per_point if per_point > 0 else 0

    def recharge_rule(self, amount_fen: int) -> RechargeRule | None:
        best = None
        for rule in self.recharge:
            if amount_fen >= rule.min_fen and (best is None or rule.min_fen > best.min_fen):
                best = rule
        return best

    def tier_for(self, *, spend_fen: int, recharge_fen: int, points: int, current: str) -> str:
        """The highest tier reached; members never move down here."""
        names = [t.tier for t in self.tiers]
        tier = current
        for rule in self.tiers:
            reached = (
                (rule.min_spend_fen and spend_fen >= rule.min_spend_fen)
                or (rule.min_recharge_fen and recharge_fen >= rule.min_recharge_fen)
                or (rule.min_points and points >= rule.min_points)
            )
            rank = names.index(tier) if tier in names else -1
            if reached and names.index(rule.tier) > rank:
                tier = rule.tier
        return tier

    def to_json(self) -> dict[str, Any]:
        """The same shape ``rules_from_json`` reads."""
        data = asdict(self)
        data["balance_discounts"] = [
            {"min_balance_fen": m, "permille": p} for m, p in self.balance_discounts
        ]
        plain: dict[str, Any] = json.loads(json.dumps(data))  # tuples as lists, as sent
        return plain


MAX_NUMBER = 10**12  # fen, points and counts in rules: sums stay exact in Lua and Int64


def _int(data: dict[str, Any], name: str, default: int = 0, *, where: str = "") -> int:
    value = data.get(name, default)
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_NUMBER:
        raise InvalidInput(where + name, f"expected an integer from 0 to {MAX_NUMBER}")
    return value


def _strs(data: dict[str, Any], name: str, *, where: str = "") -> tuple[str, ...]:
    value = data.get(name, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InvalidInput(where + name, "expected a list of strings")
    return tuple(value)


_ITEM_FIELDS = {
    "balance_discounts": {"min_balance_fen", "permille"},
    "windows": set(TimeWindow.__dataclass_fields__),
    "recharge": set(RechargeRule.__dataclass_fields__),
    "tiers": set(TierRule.__dataclass_fields__),
    "post_payment": set(PostPaymentRule.__dataclass_fields__),
}


def _objects(data: dict[str, Any], name: str) -> list[tuple[str, dict[str, Any]]]:
    value = data.get(name, [])
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise InvalidInput(name, "expected a list of objects")
    if len(value) > 100:
        raise InvalidInput(name, "at most 100 entries")
    for i, item in enumerate(value):
        unknown = sorted(set(item) - _ITEM_FIELDS[name])
        if unknown:  # a misspelt key must not be dropped silently
            raise InvalidInput(f"{name}[{i}].{unknown[0]}", "unknown field")
    return [(f"{name}[{i}].", v) for i, v in enumerate(value)]


def _permille(value: object, where: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 < value <= 1000:
        raise InvalidInput(where, "expected a permille between 1 and 1000")
    return value


def rules_from_json(data: Any) -> MerchantRules:
    """Validate an operator's rules document; ``InvalidInput`` names the first bad field."""
    if not isinstance(data, dict):
        raise InvalidInput("body", "expected a JSON object")
    known = set(MerchantRules.__dataclass_fields__)
    for name in data:
        if name not in known:
            raise InvalidInput(name, "unknown field")
    tier_discount = data.get("tier_discount_permille", {})
    if not isinstance(tier_discount, dict):
        raise InvalidInput("tier_discount_permille", "expected an object of tier -> permille")
    for tier, value in tier_discount.items():
        _permille(value, f"tier_discount_permille.{tier}")
    earn = data.get("earn_fen_per_point", {"": 1000})
    if not isinstance(earn, dict) or not all(
        isinstance(v, int) and not isinstance(v, bool) and 0 < v <= MAX_NUMBER
        for v in earn.values()
    ):
        raise InvalidInput("earn_fen_per_point", "expected an object of tier -> positive fen")
    balance = []
    for where, item in _objects(data, "balance_discounts"):
        balance.append((_int(item, "min_balance_fen", where=where),
                        _permille(item.get("permille"), where + "permille")))
    windows = []
    for where, item in _objects(data, "windows"):
        days = item.get("weekdays", [])
        if not isinstance(days, list) or not all(isinstance(d, int) and 1 <= d <= 7 for d in days):
            raise InvalidInput(where + "weekdays", "expected ISO weekdays 1-7")
        for name in ("start", "end"):
            try:
                time.fromisoformat(str(item.get(name)))
            except ValueError:
                raise InvalidInput(where + name, "expected HH:MM") from None
        windows.append(TimeWindow(tuple(days), str(item["start"]), str(item["end"]),
                                  _permille(item.get("extra_permille"), where + "extra_permille")))
    recharge = []
    for where, item in _objects(data, "recharge"):
        templates = _strs(item, "template_ids", where=where)
        if len(templates) > 5:
            raise InvalidInput(where + "template_ids", "at most 5 coupons per recharge")
        recharge.append(RechargeRule(
            min_fen=_int(item, "min_fen", where=where),
            bonus_now_fen=_int(item, "bonus_now_fen", where=where),
            monthly_fen=_int(item, "monthly_fen", where=where),
            months=_int(item, "months", where=where), template_ids=templates))
    tiers = []
    for where, item in _objects(data, "tiers"):
        if not isinstance(item.get("tier"), str) or not item["tier"]:
            raise InvalidInput(where + "tier", "expected a tier name")
        tiers.append(TierRule(tier=item["tier"], **{
            n: _int(item, n, where=where)
            for n in ("min_spend_fen", "min_recharge_fen", "min_points")}))
    post = []
    for where, item in _objects(data, "post_payment"):
        if not isinstance(item.get("rule_id"), str) or not item["rule_id"]:
            raise InvalidInput(where + "rule_id", "expected a rule id")
        post.append(PostPaymentRule(
            rule_id=item["rule_id"], stores=_strs(item, "stores", where=where),
            tiers=_strs(item, "tiers", where=where),
            template_ids=_strs(item, "template_ids", where=where),
            **{n: _int(item, n, where=where) for n in (
                "min_amount_fen", "points", "experience", "per_store_limit", "total_limit")}))
    mall = data.get("points_mall", {})
    if not isinstance(mall, dict) or not all(
        isinstance(v, int) and not isinstance(v, bool) and 0 < v <= MAX_NUMBER
        for v in mall.values()
    ):
        raise InvalidInput("points_mall", "expected an object of template id -> positive points")
    low, high = _int(data, "random_min_fen"), _int(data, "random_max_fen")
    if low > high:
        raise InvalidInput("random_max_fen", "must not be below random_min_fen")
    return MerchantRules(
        tier_discount_permille=dict(tier_discount), balance_discounts=tuple(balance),
        windows=tuple(windows), points_fen_per_100=_int(data, "points_fen_per_100", 100),
        max_points_permille=_permille(data.get("max_points_permille", 500),
                                      "max_points_permille"),
        earn_fen_per_point=dict(earn), tiers=tuple(tiers), recharge=tuple(recharge),
        post_payment=tuple(post), random_min_fen=low, random_max_fen=high,
        points_mall=dict(mall))


def rules_key(merchant_id: str) -> str:
    return f"qp:{{{merchant_id}}}:rules"


def dump_rules(rules: MerchantRules) -> str:
    return json.dumps(rules.to_json(), ensure_ascii=False)


def load_rules(raw: bytes | str | None) -> MerchantRules:
    return MerchantRules() if raw is None else rules_from_json(json.loads(raw))
