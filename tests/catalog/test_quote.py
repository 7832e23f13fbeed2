"""到手价 over HTTP: the order of the steps, stacking groups, exclusivity, scope and reasons."""

from __future__ import annotations

from typing import Any

from .conftest import ApiServer, Http, run_http
from .test_api_coupons import give, make

LINES = [{"sku": "TEA", "category": "drinks", "quantity": 2, "unit_price_fen": 3000},
         {"sku": "CAKE", "category": "bakery", "quantity": 1, "unit_price_fen": 4000}]


def _by_template(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["template_id"]: c for c in body["coupons"]}


def test_stacking_group_exclusive_and_reasons(api: ApiServer) -> None:
    async def scenario(http: Http) -> None:
        op = http.as_(api.token("operator"))
        cashier = http.as_(api.token("cashier", store="S1"))
        small = await make(op, kind="threshold", threshold_fen=5000, discount_fen=500,
                           stacking_group="full")
        big = await make(op, kind="threshold", threshold_fen=10000, discount_fen=1500,
                         stacking_group="full")
        exact = await make(op, kind="threshold", threshold_fen=8500, discount_fen=1200,
                           stacking_group="other")
        cash = await make(op, kind="cash", discount_fen=300)
        solo = await make(op, kind="cash", discount_fen=2500, exclusive=True)
        elsewhere = await make(op, kind="cash", discount_fen=5000, stores=["S2"])
        for tid in (small, big, exact, cash, solo, elsewhere):
            await give(op, tid)
        status, body = await cashier("POST", "/v1/checkout/quote", {
            "member_id": "M1", "store_id": "S1", "lines": LINES})
        assert status == 200, body
        got = _by_template(body)
        # big (1500, threshold exactly met at 10000) leaves 8500, exactly exact's threshold;
        # with cash (300) 3000 beats the exclusive 2500 alone
        assert body["subtotal_fen"] == 10000
        assert got[big]["applied"] and got[exact]["applied"] and got[cash]["applied"]
        assert got[small]["reason"].startswith("stacking_group:")
        assert got[solo]["reason"] == "exclusive_worse"
        assert got[elsewhere]["reason"] == "wrong_store"
        assert body["final_fen"] == 10000 - 1500 - 1200 - 300
        # at 9000 big is out of reach; exact + small + cash = 2000 < the exclusive 2500
        status, body = await cashier("POST", "/v1/checkout/quote", {
            "member_id": "M1", "store_id": "S1",
            "lines": [{"sku": "CAKE", "category": "bakery", "quantity": 1,
                       "unit_price_fen": 9000}]})
        got = _by_template(body)
        assert got[solo]["applied"] and body["final_fen"] == 9000 - 2500
        assert got[big]["reason"].startswith("threshold_not_met")
        assert got[small]["reason"].startswith("exclusive:")

    run_http(api, scenario)


def test_steps_in_order_tier_stored_value_points_coupons_random(api: ApiServer) -> None:
    async def scenario(http: Http) -> None:
        op = http.as_(api.token("operator"))
        cashier = http.as_(api.token("cashier", store="S1"))
        drinks = await make(op, kind="discount", rate_permille=500, cap_fen=100000,
                            categories=["drinks"])
        status, body = await op("PUT", "/v1/rules", {
            "tier_discount_permille": {"gold": 900},
            "balance_discounts": [{"min_balance_fen": 50000, "permille": 950}],
            "tiers": [{"tier": "gold", "min_recharge_fen": 50000}],
            "points_fen_per_100": 100, "max_points_permille": 100,
            "earn_fen_per_point": {"": 10},
            "random_min_fen": 1, "random_max_fen": 99})
        assert status == 200, body
        status, body = await cashier("POST", "/v1/members/M1/recharges", {
            "amount_fen": 60000, "recharge_id": "r1", "store_id": "S1"})
        assert status == 201 and body["account"]["tier"] == "gold"
        await op("POST", "/v1/payments", {"store_id": "S1", "order_id": "P0",
                                          "amount_fen": 50000, "member_id": "M1"})
        await give(op, drinks)
        status, body = await cashier("POST", "/v1/checkout/quote", {
            "member_id": "M1", "store_id": "S1", "lines": LINES, "order_id": "ORD-1",
            "use_points": 100000, "pay_with_balance": True})
        assert status == 200, body
        steps = {s["step"]: s for s in body["steps"]}
        assert [s["step"] for s in body["steps"]] == [
            "member_tier", "stored_value", "points", "coupons", "random_reduction"]
        assert steps["member_tier"]["price_fen"] == 9000
        assert steps["stored_value"]["price_fen"] == 8550
        assert steps["points"]["discount_fen"] == 855  # capped at 10% of the order
        # half off the drinks only: 6000 * 0.9 * 0.95 = 5130, less their points share
        assert 2000 < steps["coupons"]["discount_fen"] < 2600
        assert 1 <= steps["random_reduction"]["discount_fen"] <= 99
        again = await cashier("POST", "/v1/checkout/quote", {
            "member_id": "M1", "store_id": "S1", "lines": LINES, "order_id": "ORD-1",
            "use_points": 100000, "pay_with_balance": True})
        assert again[1]["final_fen"] == body["final_fen"]  # the random part follows the order

    run_http(api, scenario)


def test_quote_input_errors_and_store_binding(api: ApiServer) -> None:
    async def scenario(http: Http) -> None:
        cashier = http.as_(api.token("cashier", store="S1"))
        status, body = await cashier("POST", "/v1/checkout/quote", {
            "member_id": "M1", "store_id": "S1",
            "lines": [{"sku": "A", "quantity": 0, "unit_price_fen": 10}]})
        assert status == 422 and body["field"] == "lines[0].quantity"
        status, body = await cashier("POST", "/v1/checkout/quote", {
            "member_id": "M1", "store_id": "S2", "lines": LINES})
        assert status == 403
        member = http.as_(api.token("member", member="M1"))
        status, body = await member("POST", "/v1/checkout/quote", {
            "member_id": "M2", "store_id": "S1", "lines": LINES})
        assert status == 403
        status, body = await member("POST", "/v1/checkout/quote", {
            "member_id": "M1", "store_id": "S1", "lines": LINES})
        assert status == 200 and body["final_fen"] == 10000

    run_http(api, scenario)


def test_every_kind_priced_with_its_reason(api: ApiServer) -> None:
    async def scenario(http: Http) -> None:
        op = http.as_(api.token("operator"))
        cashier = http.as_(api.token("cashier", store="S1"))
        tea = await make(op, kind="exchange", item_sku="TEA", stacking_group="items")
        card = await make(op, kind="count_card", uses=5, daily_limit=1, item_sku="CAKE")
        plain_card = await make(op, kind="count_card", uses=5)
        gift = await make(op, kind="gift_card", face_value_fen=5000)
        short = await make(op, kind="cash", discount_fen=100, valid_days=1)
        for tid in (tea, card, plain_card, gift, short):
            await give(op, tid)
        status, body = await cashier("POST", "/v1/redemptions", {
            "code": (await op("GET", "/v1/members/M1/wallet"))[1]["coupons"][1]["code"],
            "order_id": "X", "store_id": "S1", "amount_fen": 4000,
            "lines": [{"sku": "CAKE", "category": "bakery", "quantity": 1,
                       "unit_price_fen": 4000}]})
        assert status == 201 and body["discount_fen"] == 4000  # one cake on the card
        api.clock.advance(hours=1)
        status, body = await cashier("POST", "/v1/checkout/quote", {
            "member_id": "M1", "store_id": "S1", "lines": LINES})
        got = _by_template(body)
        assert got[tea]["applied"] and got[tea]["discount_fen"] == 3000  # one tea of two
        assert got[card]["reason"] == "daily_limit"
        assert got[plain_card]["reason"] == "not_a_discount"
        assert got[gift]["reason"] == "payment_instrument"
        assert got[short]["applied"]
        api.clock.advance(days=1)
        status, body = await cashier("POST", "/v1/checkout/quote", {
            "member_id": "M1", "store_id": "S1", "lines": LINES})
        got = _by_template(body)
        assert got[short]["reason"] == "expired"
        assert got[card]["applied"] and got[card]["discount_fen"] == 4000

    run_http(api, scenario)
