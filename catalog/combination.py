"""The best legal combination of a member's coupons for one order.

At most one coupon per stacking group (a coupon without a group is its own group: one per
template per order), an exclusive coupon stands alone, and coupons apply in a canonical order
(item coupons, discounts, then 满减 by falling threshold, then cash), each threshold checked
against what the earlier coupons left.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import product

from catalog.discounts import KIND_ORDER, OrderLine, coupon_discount, scope_of
from catalog.templates import CouponTemplate
from catalog.wallet import WalletCoupon

EXHAUSTIVE_LIMIT = 64  # combinations tried one by one; above it greedy + single swaps
PER_GROUP = 3  # the best few candidates of a group are searched


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


class Search:
    """Evaluates coupon sets in the canonical order (exchange, discount, threshold, cash)."""

    def __init__(self, lines: tuple[OrderLine, ...], amounts: list[int]) -> None:
        self.lines = lines
        self.amounts = amounts
        self.scopes: dict[str, tuple[int, ...]] = {}
        self.memo: dict[tuple[str, ...], tuple[int, list[int], list[int]]] = {}
        self.values: dict[tuple[str, ...], tuple[int, list[int] | None, int]] = {}
        self.ranks: dict[str, tuple[int, int, str]] = {}
        self.totals: dict[frozenset[str], int] = {}
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
        seen = frozenset(c.code for c in chosen)
        known = self.totals.get(seen)
        if known is not None:  # swap passes revisit sets: no sorting for those
            return known
        ranks = self.ranks
        ordered = sorted(chosen, key=lambda c: ranks[c.code])
        key = tuple(c.code for c in ordered)
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
        self.totals[seen] = total
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
    search: Search | None = None,
) -> tuple[tuple[WalletCoupon, ...], int]:
    """The coupon set with the largest total discount (fewest coupons on a tie).

    Small searches are exhaustive. Larger ones start from the greedy choice (each group's best
    coupon, in application order) and improve it by single swaps until none helps: every legal
    alternative of every group is tried against the rest of the current best set.
    """
    search = search or Search(lines, amounts)
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
