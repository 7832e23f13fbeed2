"""Numbers, money and shapes the API refuses with a 422 naming the field, changing nothing."""

from __future__ import annotations

from typing import Any

from .conftest import ApiServer, Http, run_http

BIG = 2**63
CASES: list[tuple[str, str, dict[str, Any], str]] = [
    ("POST", "/v1/templates", {"kind": "cash", "name": "x", "discount_fen": 100,
                               "valid_days": 30, "total_stock": 1e30}, "total_stock"),
    ("POST", "/v1/templates", {"kind": "cash", "name": "x", "discount_fen": 100,
                               "valid_days": 10_000_000, "total_stock": 10}, "valid_days"),
    ("POST", "/v1/templates", {"kind": "gift_card", "name": "x", "face_value_fen": 10**15,
                               "valid_days": 30, "total_stock": 10}, "face_value_fen"),
    ("POST", "/v1/templates", {"kind": "count_card", "name": "x", "uses": 10**15,
                               "valid_days": 30, "total_stock": 10}, "uses"),
    ("POST", "/v1/templates", {"kind": "bogus", "name": "x", "valid_days": 30,
                               "total_stock": 10}, "kind"),
    ("POST", "/v1/redemptions", {"code": "X", "order_id": "O1", "store_id": "S1",
                                 "amount_fen": 1e23}, "amount_fen"),
    ("POST", "/v1/redemptions", {"code": "X", "order_id": "O1", "store_id": "S1",
                                 "amount_fen": 100, "colour": "red"}, "colour"),
    ("POST", "/v1/checkout/quote", {"member_id": "M1", "store_id": "S1", "lines": [
        {"sku": "A", "quantity": BIG - 1, "unit_price_fen": BIG - 1}]}, "lines[0].quantity"),
    ("POST", "/v1/checkout/quote", {"member_id": "M1", "store_id": "S1", "lines": [
        {"sku": "A", "quantity": 1000, "unit_price_fen": 10**12}]}, "lines"),
    ("POST", "/v1/checkout/quote", {"member_id": "M1", "store_id": "S1", "lines": [
        {"sku": "A", "quantity": 1, "unit_price_fen": 5, "colour": "red"}]}, "lines[0].colour"),
    ("POST", "/v1/members/M1/recharges", {"amount_fen": 10**14, "recharge_id": "R1",
                                          "store_id": "S1"}, "amount_fen"),
    ("POST", "/v1/members/M1/recharges", {"amount_fen": BIG, "recharge_id": "R1",
                                          "store_id": "S1"}, "amount_fen"),
    ("POST", "/v1/payments", {"store_id": "S1", "order_id": "O1", "amount_fen": BIG,
                              "member_id": "M1"}, "amount_fen"),
    ("POST", "/v1/points/claims", {"store_id": "S1", "order_id": "O1", "amount_fen": BIG},
     "amount_fen"),
    ("POST", "/v1/coupons", {"template_id": "t1", "member_id": "M1", "member_ids": ["M2"],
                             "campaign_id": "c1"}, "member_ids"),
]


async def cash_template(op: Http, stock: int) -> str:
    status, body = await op("POST", "/v1/templates", {"kind": "cash", "name": "x",
                                                      "discount_fen": 100, "valid_days": 30,
                                                      "total_stock": stock})
    assert status == 201, body
    return str(body["template_id"])


def test_out_of_bounds_and_unknown_fields_are_refused(api: ApiServer) -> None:
    async def scenario(http: Http) -> None:
        op = http.as_(api.token("operator"))
        await cash_template(op, 10)
        for method, path, sent, field in CASES:
            status, body = await op(method, path, sent)
            assert status == 422 and body["field"] == field, (path, sent, body)
        status, body = await op("GET", "/v1/members/M1/account")
        assert status == 200 and body["balance_fen"] == 0 and body["points"] == 0
        assert body["ledger"] == []
        status, body = await op("GET", "/v1/templates")
        assert len(body["templates"]) == 1

    run_http(api, scenario)


def test_deep_json_is_refused_not_recursed(api: ApiServer) -> None:
    async def scenario(http: Http) -> None:
        headers = {"Authorization": f"Bearer {api.token('operator')}",
                   "Content-Type": "application/json"}
        deep = b'{"tiers": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
        async with http.session.put(api.url + "/v1/rules", data=deep,
                                    headers=headers) as resp:
            assert resp.status == 422 and (await resp.json())["field"] == "body"

    run_http(api, scenario)


def test_sold_out_template_is_a_409(api: ApiServer) -> None:
    async def scenario(http: Http) -> None:
        op = http.as_(api.token("operator"))
        tid = await cash_template(op, 1)
        status, body = await op("POST", "/v1/coupons", {"template_id": tid, "member_id": "M1",
                                                        "campaign_id": "c1"})
        assert status == 201 and body["coupons"][0]["status"] == "new"
        status, body = await op("POST", "/v1/coupons", {"template_id": tid, "member_id": "M2",
                                                        "campaign_id": "c1"})
        assert status == 409 and body["reason"] == "out_of_stock"
        status, body = await op("GET", f"/v1/templates/{tid}")
        assert body["stock_left"] == 0

    run_http(api, scenario)


def test_payment_and_recharge_replays(api: ApiServer) -> None:
    async def scenario(http: Http) -> None:
        cashier = http.as_(api.token("cashier", store="S1"))
        status, body = await cashier("POST", "/v1/members/M1/recharges", {
            "amount_fen": 10000, "recharge_id": "R1", "store_id": "S1"})
        assert status == 201 and body["account"]["balance_fen"] == 10000
        status, body = await cashier("POST", "/v1/members/M1/recharges", {
            "amount_fen": 99999, "recharge_id": "R1", "store_id": "S1"})
        assert status == 422 and body["field"] == "recharge_id"
        pay = {"store_id": "S1", "order_id": "O1", "amount_fen": 3000, "member_id": "M1",
               "from_balance": True}
        status, body = await cashier("POST", "/v1/payments", pay)
        assert status == 201 and not body["replayed"], body
        earned = body["points_earned"]
        status, body = await cashier("POST", "/v1/payments", pay)
        assert status == 200 and body["replayed"] and body["points_earned"] == earned
        status, body = await cashier("POST", "/v1/payments", {**pay, "amount_fen": 5000})
        assert status == 422 and body["field"] == "order_id"
        status, body = await cashier("POST", "/v1/payments", {**pay, "member_id": "M2"})
        assert status == 422 and body["field"] == "order_id"
        status, body = await cashier("GET", "/v1/members/M1/account")
        assert body["balance_fen"] == 7000 and body["points"] == earned
        # a refused payment leaves its order free for the corrected one
        too_much = {**pay, "order_id": "O2", "amount_fen": 8000}
        status, body = await cashier("POST", "/v1/payments", too_much)
        assert status == 409 and body["reason"] == "insufficient_balance"
        status, body = await cashier("POST", "/v1/payments", {**too_much, "amount_fen": 7000})
        assert status == 201, body
        for _ in range(2):  # 10^13 is the most an account holds; nothing changes past it
            await cashier("POST", "/v1/members/M3/recharges", {
                "amount_fen": 10**12, "recharge_id": f"big{_}", "store_id": "S1"})
        for n in range(9):
            status, body = await cashier("POST", "/v1/members/M3/recharges", {
                "amount_fen": 10**12, "recharge_id": f"more{n}", "store_id": "S1"})
        assert status == 409 and body["reason"] == "over_limit"
        status, body = await cashier("GET", "/v1/members/M3/account")
        assert status == 200 and body["balance_fen"] == 10**13

    run_http(api, scenario)


def test_rules_refuse_unknown_nested_fields_and_huge_numbers(api: ApiServer) -> None:
    async def scenario(http: Http) -> None:
        op = http.as_(api.token("operator"))
        cases = [({"recharge": [{"min_fen": 100, "bonus_fen": 5}]}, "recharge[0].bonus_fen"),
                 ({"tiers": [{"tier": "gold", "min_spend_fen": 10**15}]},
                  "tiers[0].min_spend_fen"),
                 ({"random_max_fen": 2**63}, "random_max_fen")]
        for body, field in cases:
            status, answer = await op("PUT", "/v1/rules", body)
            assert status == 422 and answer["field"] == field, (body, answer)
        status, answer = await op("PUT", "/v1/rules", {"recharge": [{"min_fen": 100,
                                                                     "bonus_now_fen": 5}]})
        assert status == 200 and answer["recharge"][0]["bonus_now_fen"] == 5

    run_http(api, scenario)
