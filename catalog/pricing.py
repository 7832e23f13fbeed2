"""到手价: the price a member pays after every benefit, step by step.

Steps, in this order: member-tier discount -> stored-value tiered discount (储值折上折, when paying
from the balance) -> points deduction -> coupons -> random reduction. Discounts that apply to
part of an order (a coupon scoped to categories or SKUs) are spread over the lines they cover, so
every later step sees what each line really costs by then.

Coupons: the best legal combination wins (``catalog.combination``). Every coupon in the wallet
gets a reason why it was or was not applied.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from catalog.codes import display
from catalog.combination import Search, best_combination, rank
from catalog.discounts import (
    OrderLine,
    coupon_discount,
    gate,
    spread,
)
from catalog.errors import InvalidInput
from catalog.rules import MerchantRules
from catalog.wallet import WalletCoupon


@dataclass(frozen=True)
class MemberState:
    tier: str = ""
    balance_fen: int = 0
    points: int = 0


@dataclass
class Quote:
    subtotal_fen: int
    steps: list[dict[str, Any]] = field(default_factory=list)
    coupons: list[dict[str, Any]] = field(default_factory=list)
    applied: list[WalletCoupon] = field(default_factory=list)
    points_used: int = 0
    final_fen: int = 0

    def to_json(self) -> dict[str, Any]:
        return {"subtotal_fen": self.subtotal_fen, "steps": self.steps, "coupons": self.coupons,
                "points_used": self.points_used, "final_fen": self.final_fen}

def parse_lines(data: Any) -> tuple[OrderLine, ...]:
    """Order lines from JSON; ``InvalidInput`` names the bad field (``lines[2].quantity``)."""
    if not isinstance(data, list) or not data:
        raise InvalidInput("lines", "expected a non-empty list of order lines")
    lines = []
    for i, item in enumerate(data):
        where = f"lines[{i}]."
        if not isinstance(item, dict):
            raise InvalidInput(f"lines[{i}]", "expected an object")
        for name in ("sku", "category"):
            if not isinstance(item.get(name, ""), str):
                raise InvalidInput(where + name, "expected a string")
        for name, low in (("quantity", 1), ("unit_price_fen", 0)):
            value = item.get(name)
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                raise InvalidInput(where + name, f"expected an integer >= {low}")
        if not item.get("sku"):
            raise InvalidInput(where + "sku", "required")
        lines.append(OrderLine(item["sku"], item.get("category", ""), item["quantity"],
                               item["unit_price_fen"]))
    return tuple(lines)

def _scale(amounts: list[int], permille: int) -> list[int]:
    return [a * permille // 1000 for a in amounts]

def random_reduction(rules: MerchantRules, *, secret: bytes, order_id: str) -> int:
    """随机立减: derived from the order id, so the quote and the payment agree."""
    if rules.random_max_fen <= 0 or not order_id:
        return 0
    digest = hmac.new(secret, b"random-reduction:" + order_id.encode(), hashlib.sha256).digest()
    span = rules.random_max_fen - rules.random_min_fen + 1
    return rules.random_min_fen + int.from_bytes(digest[:8], "big") % span


def quote(
    *, rules: MerchantRules, member: MemberState, lines: tuple[OrderLine, ...],
    wallet: list[WalletCoupon], store_id: str, channel: str, order_id: str, now: datetime,
    day: int, use_points: int = 0, pay_with_balance: bool = False, secret: bytes = b"",
) -> Quote:
    """Price an order for a member; see the module docstring for the order of the steps."""
    amounts = [line.total_fen for line in lines]
    result = Quote(subtotal_fen=sum(amounts))

    def step(name: str, after: list[int], **detail: Any) -> list[int]:
        result.steps.append({"step": name, "discount_fen": sum(amounts_now[0]) - sum(after),
                             "price_fen": sum(after), **detail})
        amounts_now[0] = after
        return after

    amounts_now = [amounts]
    tier_rate = rules.tier_discount_permille.get(member.tier, 1000)
    step("member_tier", _scale(amounts, tier_rate), tier=member.tier, permille=tier_rate)
    balance_rate = rules.balance_permille(member.balance_fen, now) if pay_with_balance else 1000
    step("stored_value", _scale(amounts_now[0], balance_rate), permille=balance_rate)
    current = amounts_now[0]
    points = min(max(use_points, 0), member.points)
    cap = sum(current) * rules.max_points_permille // 1000
    deduct = min(points * rules.points_fen_per_100 // 100, cap)
    if rules.points_fen_per_100 > 0 and deduct > 0:
        result.points_used = -(-deduct * 100 // rules.points_fen_per_100)
    step("points", spread(current, list(range(len(lines))), deduct) if deduct else current,
         points_used=result.points_used)

    current = amounts_now[0]
    search = Search(lines, current)
    reasons: dict[str, str] = {}
    open_: list[WalletCoupon] = []
    for coupon in wallet:
        reason = gate(coupon, store_id=store_id, channel=channel, day=day)
        if reason is None:
            open_.append(coupon)
        else:
            reasons[coupon.code] = reason
    search.prepare(open_)
    usable: list[WalletCoupon] = []
    for coupon in open_:
        if search.single(coupon) > 0:  # remembered: the search values singles again
            usable.append(coupon)
        else:
            reasons[coupon.code] = coupon_discount(coupon.template, lines, current,
                                                   search.scope(coupon.template))[2] or "zero"
    chosen, _ = best_combination(usable, lines, current, search)
    _, after, per = search.evaluate(chosen)
    ordered = sorted(chosen, key=rank)
    applied = dict(zip([c.code for c in ordered], per, strict=True))
    result.applied = list(chosen)
    for coupon in wallet:
        entry: dict[str, Any] = {"code": display(coupon.code), "template_id":
                                 coupon.template.template_id, "name": coupon.template.name}
        if coupon.code in applied:
            entry.update(applied=True, discount_fen=applied[coupon.code], reason="best")
        else:
            reason = reasons.get(coupon.code)
            entry.update(applied=False, discount_fen=0,
                         reason=reason if reason is not None else _why_not(coupon, chosen))
        result.coupons.append(entry)
    step("coupons", after, codes=[display(c.code) for c in chosen])
    reduction = min(random_reduction(rules, secret=secret, order_id=order_id), sum(after))
    step("random_reduction", spread(after, list(range(len(lines))), reduction)
         if reduction and sum(after) else after)
    result.final_fen = sum(amounts_now[0])
    return result


def _why_not(coupon: WalletCoupon, chosen: tuple[WalletCoupon, ...]) -> str:
    t = coupon.template
    for other in chosen:
        if other.template.exclusive:
            return f"exclusive:{display(other.code)}"
        if t.exclusive:
            return "exclusive_worse"
        same_group = t.stacking_group and t.stacking_group == other.template.stacking_group
        if same_group or (not t.stacking_group and t.template_id == other.template.template_id):
            return f"stacking_group:{display(other.code)}"
    return "not_better"
