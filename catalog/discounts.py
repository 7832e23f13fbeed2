"""What one coupon is worth on an order: scope, gates and the discount arithmetic.

Shared by the quote (``catalog.pricing``), the combination search (``catalog.combination``) and
redemption. Money in fen; a coupon scoped to categories or SKUs counts only the lines it covers,
and what it takes off is spread over those lines in proportion to their amounts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from catalog.templates import CouponTemplate
from catalog.wallet import WalletCoupon

KIND_ORDER = {"exchange": 0, "count_card": 0, "duration_card": 0, "discount": 1,
              "threshold": 2, "cash": 3, "gift_card": 9}

@dataclass(frozen=True, slots=True)
class OrderLine:
    sku: str
    category: str
    quantity: int
    unit_price_fen: int

    @property
    def total_fen(self) -> int:
        return self.quantity * self.unit_price_fen


def in_scope(template: CouponTemplate, line: OrderLine) -> bool:
    if template.skus and line.sku not in template.skus:
        return False
    return not (template.categories and line.category not in template.categories)


def gate(coupon: WalletCoupon, *, store_id: str, channel: str, day: int) -> str | None:
    """Why a coupon cannot be used for this order at all, or None."""
    t = coupon.template
    if coupon.state != "active":
        return coupon.state
    if day < coupon.first_day:
        return "not_yet_valid"
    if day > coupon.last_day:
        return "expired"
    if t.stores and store_id not in t.stores:
        return "wrong_store"
    if channel not in t.channels:
        return "wrong_channel"
    if t.daily_limit and coupon.last_use_day == day and coupon.used_today >= t.daily_limit:
        return "daily_limit"
    if coupon.uses_left is not None and coupon.uses_left <= 0:
        return "used_up"
    if t.kind == "gift_card":
        return "payment_instrument"
    if t.kind in ("count_card", "duration_card") and not t.item_sku:
        return "not_a_discount"
    return None


def coupon_discount(
    template: CouponTemplate, lines: tuple[OrderLine, ...], amounts: list[int],
    scope: tuple[int, ...] | None = None,
) -> tuple[int, list[int], str | None]:
    """(discount, per-line amounts after it, reason when the discount is 0)."""
    if scope is None:
        scope = scope_of(template, lines)
    kind = template.kind
    if kind in ("exchange", "count_card", "duration_card"):
        for i in scope:
            if lines[i].sku == template.item_sku and amounts[i] > 0:
                unit = amounts[i] // lines[i].quantity
                after = list(amounts)
                after[i] -= unit
                return unit, after, None
        return 0, amounts, "item_not_in_order"
    eligible = sum(amounts[i] for i in scope)
    if not scope or eligible <= 0:
        return 0, amounts, "no_item_in_scope"
    if eligible < template.threshold_fen:
        return 0, amounts, f"threshold_not_met:{eligible}<{template.threshold_fen}"
    if kind == "discount":
        off = eligible * (1000 - template.rate_permille) // 1000
        if template.cap_fen:
            off = min(off, template.cap_fen)
    else:
        off = min(template.discount_fen, eligible)
    return off, spread(amounts, scope, off), None


def scope_of(template: CouponTemplate, lines: tuple[OrderLine, ...]) -> tuple[int, ...]:
    return tuple(i for i, line in enumerate(lines) if in_scope(template, line))


def spread(amounts: list[int], scope: Sequence[int], off: int) -> list[int]:
    """Take ``off`` fen from the lines in ``scope`` in proportion to their amounts."""
    total = sum(amounts[i] for i in scope)
    after = list(amounts)
    taken = 0
    last = len(scope) - 1
    for n, i in enumerate(scope):
        share = off - taken if n == last else off * amounts[i] // total
        after[i] -= share
        taken += share
    return after
