"""到手价: the price a member pays after every benefit, step by step.

Steps, in this order: member-tier discount -> stored-value tiered discount (储值折上折, when paying
from the balance) -> points deduction -> coupons -> random reduction. Discounts that apply to
part of an order (a coupon scoped to categories or SKUs) are spread over the lines they cover, so
every later step sees what each line really costs by then.

Coupons: the best legal combination wins. At most one coupon per stacking group (a coupon without
a group is its own group: one per template per order), an exclusive coupon stands alone, and
thresholds are checked against the in-scope amount at the moment the coupon applies. Every
coupon in the wallet gets a reason why it was or was not applied.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from itertools import product
from typing import Any

from catalog.codes import display
from catalog.errors import InvalidInput
from catalog.rules import MerchantRules
from catalog.templates import CouponTemplate
from catalog.wallet import WalletCoupon

KIND_ORDER = {"exchange": 0, "count_card": 0, "duration_card": 0, "discount": 1,
              "threshold": 2, "cash": 3, "gift_card": 9}
EXHAUSTIVE_LIMIT = 64  # combinations tried one by one; above it greedy + single swaps
PER_GROUP = 3  # the best few candidates of a group are searched


@dataclass(frozen=True, slots=True)
class OrderLine:
    sku: str
    category: str
    quantity: int
    unit_price_fen: int

    @property
    def total_fen(self) -> int:
        return self.quantity * self.unit_price_fen


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


def _scale(amounts: list[int], permille: int) -> list[int]:
    return [a * permille // 1000 for a in amounts]


def _scalar_off(template: CouponTemplate, eligible: int) -> int:
    """``coupon_discount`` of a whole-order coupon on a running total."""
    if eligible <= 0 or eligible < template.threshold_fen:
        return 0
    if template.kind == "discount":
        off = eligible * (1000 - template.rate_permille) // 1000
        return min(off, template.cap_fen) if template.cap_fen else off
    return min(template.discount_fen, eligible)


def rank(coupon: WalletCoupon) -> tuple[int, int, str]:
    """Canonical application order: by kind, then the higher threshold first (a later coupon's
    threshold is checked against what the earlier ones left)."""
    return KIND_ORDER[coupon.template.kind], -coupon.template.threshold_fen, coupon.code


class _Search:
    """Evaluates coupon sets in the canonical order (exchange, discount, threshold, cash)."""

    def __init__(self, lines: tuple[OrderLine, ...], amounts: list[int]) -> None:
        self.lines = lines
        self.amounts = amounts
        self.scopes: dict[str, tuple[int, ...]] = {}
        self.memo: dict[tuple[str, ...], tuple[int, list[int], list[int]]] = {}
        self.values: dict[tuple[str, ...], tuple[int, list[int] | None, int]] = {}
        self.ranks: dict[str, tuple[int, int, str]] = {}
        # True when every coupon after the item coupons covers the whole order: then only the
        # running total matters and a set is valued with integer arithmetic alone
        self.scalar = False

    def prepare(self, usable: Sequence[WalletCoupon]) -> None:
        everything = tuple(range(len(self.lines)))
        for coupon in usable:
            self.ranks[coupon.code] = rank(coupon)
        self.scalar = all(
            KIND_ORDER[c.template.kind] == 0 or self.scope(c.template) == everything
            for c in usable)

    def value(self, chosen: Sequence[WalletCoupon]) -> int:
        """The total discount of a set (what the search compares), memoized per prefix."""
        ranks = self.ranks
        ordered = sorted(chosen, key=lambda c: ranks[c.code])
        key = tuple(c.code for c in ordered)
        found = self.values.get(key)
        if found is not None:
            return found[0]
        n = max(len(key) - 1, 0)
        while n > 0 and key[:n] not in self.values:
            n -= 1
        start = self.values.get(key[:n]) if n else None
        total, amounts, price = start if start else (0, self.amounts, 0)
        for coupon in ordered[n:]:
            t = coupon.template
            if amounts is not None and (not self.scalar or KIND_ORDER[t.kind] == 0):
                off, amounts, _ = coupon_discount(t, self.lines, amounts, self.scope(t))
            else:
                if amounts is not None:
                    price, amounts = sum(amounts), None
                off = _scalar_off(t, price)
                price -= off
            total += off
        self.values[key] = (total, amounts, price)
        return total

    def scope(self, template: CouponTemplate) -> tuple[int, ...]:
        found = self.scopes.get(template.template_id)
        if found is None:
            found = self.scopes[template.template_id] = scope_of(template, self.lines)
        return found

    def evaluate(self, chosen: Sequence[WalletCoupon]) -> tuple[int, list[int], list[int]]:
        """(total discount, per-line amounts after, discount per coupon in canonical order).

        Results are kept per canonical prefix, so extending a set by one coupon (what the
        searches do most) costs one coupon's arithmetic."""
        ranks = self.ranks
        for coupon in chosen:
            if coupon.code not in ranks:
                ranks[coupon.code] = rank(coupon)
        ordered = sorted(chosen, key=lambda c: ranks[c.code])
        key = tuple(c.code for c in ordered)
        found = self.memo.get(key)
        if found is not None:
            return found
        n = max(len(key) - 1, 0)
        while n > 0 and key[:n] not in self.memo:
            n -= 1
        total, amounts, per = self.memo[key[:n]] if n else (0, self.amounts, [])
        per = list(per)
        for coupon in ordered[n:]:
            off, amounts, _ = coupon_discount(coupon.template, self.lines, amounts,
                                              self.scope(coupon.template))
            total += off
            per.append(off)
        self.memo[key] = (total, amounts, per)
        return total, amounts, per


def best_combination(
    usable: list[WalletCoupon], lines: tuple[OrderLine, ...], amounts: list[int],
    search: _Search | None = None,
) -> tuple[tuple[WalletCoupon, ...], int]:
    """The coupon set with the largest total discount (fewest coupons on a tie).

    Small searches are exhaustive. Larger ones start from the greedy choice (each group's best
    coupon, in application order) and improve it by single swaps until none helps: every legal
    alternative of every group is tried against the rest of the current best set.
    """
    search = search or _Search(lines, amounts)
    search.prepare(usable)
    best: tuple[tuple[WalletCoupon, ...], int] = ((), 0)

    def consider(chosen: tuple[WalletCoupon, ...]) -> bool:
        nonlocal best
        total = search.value(chosen)
        if total > best[1] or (total == best[1] and total > 0 and len(chosen) < len(best[0])):
            best = (chosen, total)
            return True
        return False

    groups: dict[str, list[WalletCoupon]] = {}
    for coupon in usable:
        if coupon.template.exclusive:
            consider((coupon,))
        else:
            key = coupon.template.stacking_group or "t:" + coupon.template.template_id
            groups.setdefault(key, []).append(coupon)
    options = [g[:PER_GROUP] for g in groups.values()]
    size = 1
    for g in options:
        size *= len(g) + 1
    if size <= EXHAUSTIVE_LIMIT:
        for pick in product(*[[None, *g] for g in options]):
            consider(tuple(c for c in pick if c is not None))
        return best
    options.sort(key=lambda g: min(KIND_ORDER[c.template.kind] for c in g))
    current: list[WalletCoupon | None] = []
    for g in options:  # greedy: the group's coupon that adds most to what is chosen so far
        base = [c for c in current if c is not None]
        gains = [(search.value([*base, c]), c) for c in g]
        top = max(gains, key=lambda item: item[0])
        current.append(top[1] if top[0] > search.value(base) else None)
    total = search.value([c for c in current if c is not None])
    improved = True
    while improved:  # single swaps until none helps; evaluations share canonical prefixes
        improved = False
        for n in range(len(options)):
            for alternative in [None, *options[n]]:
                if alternative is current[n]:
                    continue
                trial = [*current[:n], alternative, *current[n + 1:]]
                value = search.value([c for c in trial if c is not None])
                if value > total:
                    current, total, improved = trial, value, True
    consider(tuple(c for c in current if c is not None))
    return best


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
    search = _Search(lines, current)
    reasons: dict[str, str] = {}
    alone: dict[str, int] = {}
    usable: list[WalletCoupon] = []
    for coupon in wallet:
        reason = gate(coupon, store_id=store_id, channel=channel, day=day)
        if reason is None:
            off, _, why = coupon_discount(coupon.template, lines, current,
                                          search.scope(coupon.template))
            reason = why if off == 0 else None
            alone[coupon.code] = off
        if reason is None:
            usable.append(coupon)
        else:
            reasons[coupon.code] = reason
    usable.sort(key=lambda c: -alone[c.code])
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
            entry.update(applied=False, discount_fen=0,
                         reason=reasons.get(coupon.code, _why_not(coupon, chosen)))
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
