"""The combination search is exact: it matches brute force over every legal set."""

from __future__ import annotations

import random
from itertools import product

from catalog.combination import Search, best_combination
from catalog.discounts import OrderLine, coupon_discount
from catalog.templates import CouponTemplate
from catalog.wallet import WalletCoupon

LINES = (OrderLine("A", "c1", 1, 3000), OrderLine("B", "c2", 2, 4500),
         OrderLine("C", "c1", 1, 1200))


def _wallet(rng: random.Random) -> list[WalletCoupon]:
    coupons = []
    for i in range(14):
        kind = rng.choice(["threshold", "threshold", "discount", "cash", "exchange"])
        choices: dict[str, dict[str, object]] = {
            "threshold": {"threshold_fen": rng.randrange(2000, 15000, 500),
                          "discount_fen": rng.randrange(200, 2000, 100)},
            "discount": {"rate_permille": rng.randrange(700, 980, 10),
                         "cap_fen": rng.choice([0, 1000, 3000])},
            "cash": {"discount_fen": rng.randrange(100, 1500, 50)},
            "exchange": {"item_sku": rng.choice("ABCX")},
        }
        fields = choices[kind]
        if rng.random() < 0.3:
            fields["categories"] = (rng.choice(["c1", "c2"]),)
        template = CouponTemplate.from_json({
            "merchant_id": "m", "kind": kind, "name": "x", "total_stock": 1, "valid_days": 3,
            "stacking_group": f"g{rng.randrange(4)}", "exclusive": rng.random() < 0.1,
            "template_id": f"t{i + 1}", **{k: list(v) if isinstance(v, tuple) else v
                                           for k, v in fields.items()}})
        coupons.append(WalletCoupon(code=f"C{i:02d}", serial=i + 1, template=template,
                                    state="active", first_day=0, last_day=1 << 30))
    return coupons


def test_matches_brute_force_on_random_wallets() -> None:
    rng = random.Random(20261123)
    amounts = [line.total_fen for line in LINES]
    for _ in range(60):
        usable = [c for c in _wallet(rng)
                  if coupon_discount(c.template, LINES, amounts)[0] > 0]
        search = Search(LINES, amounts)
        search.prepare(usable)
        brute = 0
        groups: dict[str, list[WalletCoupon]] = {}
        for coupon in usable:
            if coupon.template.exclusive:
                brute = max(brute, search.value((coupon,)))
            else:
                groups.setdefault(coupon.template.stacking_group, []).append(coupon)
        for pick in product(*[[None, *g] for g in groups.values()]):
            brute = max(brute, search.value([c for c in pick if c is not None]))
        chosen, total = best_combination(usable, LINES, amounts)
        assert total == brute
        assert len({c.template.stacking_group for c in chosen}) == len(chosen) or any(
            c.template.exclusive for c in chosen)
