"""The best legal combination of a member's coupons for one order.

At most one coupon per stacking group (a coupon without a group is its own group: one per
template per order), an exclusive coupon stands alone, and coupons apply in a canonical order
(item coupons, discounts, then 满减 by falling threshold, then cash), each threshold checked
against what the earlier coupons left.
"""

from __future__ import annotations

from collections.abc import Sequence

from catalog.discounts import KIND_ORDER, OrderLine, coupon_discount, scope_of
from catalog.templates import CouponTemplate
from catalog.wallet import WalletCoupon

NODE_LIMIT = 4000  # search nodes per quote before the best set so far is taken


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
        self.singles: dict[str, int] = {}
        self.everything = tuple(range(len(lines)))
        self.total = sum(amounts)
        # True when every coupon after the item coupons covers the whole order: then only the
        # running total matters and a set is valued with integer arithmetic alone
        self.scalar = False

    def prepare(self, usable: Sequence[WalletCoupon]) -> None:
        everything = self.everything
        ranks = self.ranks
        for coupon in usable:
            if coupon.code not in ranks:
                ranks[coupon.code] = rank(coupon)
        self.scalar = all(
            KIND_ORDER[c.template.kind] == 0 or self.scope(c.template) == everything
            for c in usable)

    def value(self, chosen: Sequence[WalletCoupon]) -> int:
        """The total discount of a set (what the search compares), memoized per prefix."""
        seen = frozenset(c.code for c in chosen)
        known = self.totals.get(seen)
        if known is not None:  # a set valued before: no sorting
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

    def single(self, coupon: WalletCoupon) -> int:
        """What one coupon takes off the untouched order (the same as ``value((coupon,))``)."""
        found = self.singles.get(coupon.code)
        if found is None:
            t = coupon.template
            scope = self.scope(t)
            if KIND_ORDER[t.kind] == 0:
                found = coupon_discount(t, self.lines, self.amounts, scope)[0]
            else:  # the amount alone, without spreading it over the lines
                amounts = self.amounts
                found = _scalar_off(t, self.total if scope is self.everything
                                    else sum(amounts[i] for i in scope))
            self.singles[coupon.code] = found
        return found

    def scope(self, template: CouponTemplate) -> tuple[int, ...]:
        if not template.skus and not template.categories:
            return self.everything  # most coupons cover the whole order
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

    Exclusive coupons are valued alone. The others are searched depth first in application
    order, taking each coupon before leaving it out, with at most one per group. A branch is cut
    when even the best coupon left in every unused group, valued on the untouched order (a
    coupon is never worth more later, once earlier ones have lowered the price), cannot beat the
    best set found. The search is exact unless it reaches ``NODE_LIMIT``; then the best set
    found so far is used.
    """
    search = search or Search(lines, amounts)
    search.prepare(usable)
    best: tuple[tuple[WalletCoupon, ...], int] = ((), 0)
    for coupon in usable:
        if coupon.template.exclusive:
            total = search.single(coupon)
            if total > best[1]:
                best = ((coupon,), total)
    order = sorted((c for c in usable if not c.template.exclusive),
                   key=lambda c: search.ranks[c.code])
    group = [c.template.stacking_group or "t:" + c.template.template_id for c in order]
    alone = [search.single(c) for c in order]
    # groups as bits of an int; bound[i]: per group bit, the most any coupon at position >= i
    # can give on its own
    bits: dict[str, int] = {}
    gbit = [bits.setdefault(g, 1 << len(bits)) for g in group]
    suffix: dict[int, int] = {}
    bound: list[tuple[tuple[int, int], ...]] = [()] * (len(order) + 1)
    for i in range(len(order) - 1, -1, -1):
        if alone[i] > suffix.get(gbit[i], 0):
            suffix[gbit[i]] = alone[i]
        bound[i] = tuple(suffix.items())
    # a good first incumbent prunes most of the tree: each group's best coupon on its own
    top: dict[str, tuple[WalletCoupon, int]] = {}
    for coupon, g, value in zip(order, group, alone, strict=True):
        if value > 0 and (g not in top or value > top[g][1]):
            top[g] = (coupon, value)
    if top:
        firsts = [c for c, _ in top.values()]
        total = search.value(firsts)
        if total > best[1]:
            best = (tuple(sorted(firsts, key=lambda c: search.ranks[c.code])), total)
    nodes, size = 0, len(order)
    chosen: list[WalletCoupon] = []
    templates = [c.template for c in order]
    scopes = [search.scope(t) for t in templates]
    by_lines = [not search.scalar or KIND_ORDER[t.kind] == 0 for t in templates]
    # whole-order coupons as plain numbers: the search visits hundreds of nodes per quote, so
    # each node does as little as it can
    params = [(t.kind == "discount", t.threshold_fen, 1000 - t.rate_permille, t.cap_fen,
               t.discount_fen) for t in templates]
    best_set, best_total = best

    left: dict[int, int] = {}  # (position, used groups) -> what the unused groups could add
    stride = size + 1

    def visit(i: int, amounts_now: list[int] | None, price: int, total: int,
              used: int) -> None:
        nonlocal best_set, best_total, nodes
        if total > best_total or (total == best_total and total
                                  and len(chosen) < len(best_set)):
            best_set, best_total = tuple(chosen), total
        running = sum(amounts_now) if amounts_now is not None else price
        # leaving a coupon out changes neither the total nor the set, so that branch is the
        # next turn of this loop (a node like any other) rather than a call
        while True:
            nodes += 1
            while i < size and used & gbit[i]:  # nothing to decide for a used group
                i += 1
            if i == size or nodes > NODE_LIMIT:
                return
            key = used * stride + i
            most = left.get(key)
            if most is None:
                most = 0
                for b, v in bound[i]:
                    if not used & b:
                        most += v
                left[key] = most
            if most <= best_total - total:
                return
            if amounts_now is not None and by_lines[i]:
                off, after, _ = coupon_discount(templates[i], lines, amounts_now, scopes[i])
                next_amounts, next_price = after, price
            else:
                base = running
                is_rate, threshold, keep, cap, face = params[i]  # ``_scalar_off`` inlined
                if base <= 0 or base < threshold:
                    off = 0
                elif is_rate:
                    off = base * keep // 1000
                    if cap and off > cap:
                        off = cap
                else:
                    off = face if face < base else base
                next_amounts, next_price = None, base - off
            if off > 0:  # a coupon worth nothing here only uses up its group
                chosen.append(order[i])
                visit(i + 1, next_amounts, next_price, total + off, used | gbit[i])
                chosen.pop()
            i += 1

    visit(0, list(amounts), 0, 0, 0)
    return best_set, best_total
