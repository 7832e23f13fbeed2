"""Stored value, points, claim tokens and post-payment rules over HTTP and real Redis."""

from __future__ import annotations

import redis

from analytics.loader import drain
from analytics.stream import StreamReader
from infra.clickhouse import ChdbClient

from .conftest import SECRET, ApiServer, Http, run_http
from .test_api_coupons import make


def test_recharge_bonus_installments_coupons_and_retry(api: ApiServer) -> None:
    async def scenario(http: Http) -> None:
        op = http.as_(api.token("operator"))
        cashier = http.as_(api.token("cashier", store="S1"))
        tids = [await make(op, kind="cash", discount_fen=100 * (i + 1)) for i in range(5)]
        status, body = await op("PUT", "/v1/rules", {"recharge": [
            {"min_fen": 100000, "bonus_now_fen": 50000, "monthly_fen": 10000, "months": 5,
             "template_ids": tids}]})
        assert status == 200, body
        status, body = await op("PUT", "/v1/rules", {"recharge": [
            {"min_fen": 1, "template_ids": [*tids, tids[0]]}]})
        assert status == 422 and body["field"] == "recharge[0].template_ids"
        status, body = await cashier("POST", "/v1/members/M1/recharges", {
            "amount_fen": 100000, "recharge_id": "R1", "store_id": "S1"})
        assert status == 201, body
        assert body["account"]["balance_fen"] == 150000
        assert [c["status"] for c in body["coupons"]] == ["new"] * 5
        status, body = await cashier("POST", "/v1/members/M1/recharges", {
            "amount_fen": 100000, "recharge_id": "R1", "store_id": "S1"})
        assert body["status"] == "duplicate" and body["account"]["balance_fen"] == 150000
        assert [c["status"] for c in body["coupons"]] == ["existing"] * 5
        api.clock.advance(days=61)  # two installments have fallen due
        status, body = await cashier("GET", "/v1/members/M1/account")
        assert body["balance_fen"] == 170000
        assert [e["kind"] for e in body["ledger"]] == ["recharge", "installment", "installment"]
        status, body = await cashier("POST", "/v1/members/M1/recharges", {
            "amount_fen": 0, "recharge_id": "R2", "store_id": "S1"})
        assert status == 422 and body["field"] == "amount_fen"

    run_http(api, scenario)


def test_points_claim_once_joins_and_refuses_reuse(api: ApiServer) -> None:
    async def scenario(http: Http) -> None:
        op = http.as_(api.token("operator"))
        printer = http.as_(api.token("printer", store="S1"))
        await op("PUT", "/v1/rules", {"earn_fen_per_point": {"": 1800, "platinum": 1000}})
        status, body = await printer("POST", "/v1/points/claims", {
            "store_id": "S2", "order_id": "O1", "amount_fen": 36000})
        assert status == 403
        status, body = await printer("POST", "/v1/points/claims", {
            "store_id": "S1", "order_id": "O1", "amount_fen": 36000})
        assert status == 201, body
        token = body["token"]
        alice = http.as_(api.token("member", member="ALICE"))
        status, body = await alice("POST", f"/v1/points/claims/{token}/redeem", {})
        assert status == 200, body
        assert body["points"] == 20 and body["joined"] is True
        status, body = await alice("POST", f"/v1/points/claims/{token}/redeem", {})
        assert body["already_granted"] is True and body["account"]["points"] == 20
        bob = http.as_(api.token("member", member="BOB"))
        status, body = await bob("POST", f"/v1/points/claims/{token}/redeem", {})
        assert status == 409 and body["reason"] == "already_claimed"
        status, body = await bob("POST", f"/v1/points/claims/{token[:-3]}xyz/redeem", {})
        assert status == 422 and body["field"] == "token"
        from catalog.signed import sign

        expired = sign({"m": "m1", "s": "S1", "o": "O2", "a": 100}, secret=SECRET,
                       purpose="pc1", ttl_seconds=-1)
        status, body = await bob("POST", f"/v1/points/claims/{expired}/redeem", {})
        assert status == 409 and body["reason"] == "expired"

    run_http(api, scenario)


def test_post_payment_rules_limits_and_join_offer(api: ApiServer) -> None:
    async def scenario(http: Http) -> None:
        op = http.as_(api.token("operator"))
        s1 = http.as_(api.token("cashier", store="S1"))
        s2 = http.as_(api.token("cashier", store="S2"))
        card = await make(op, kind="count_card", uses=3, total_stock=10, per_member_limit=10)
        status, body = await op("PUT", "/v1/rules", {"post_payment": [
            {"rule_id": "big-spender", "min_amount_fen": 10000, "points": 50,
             "template_ids": [card], "per_store_limit": 1, "total_limit": 2}],
            "earn_fen_per_point": {"": 1000}})
        assert status == 200, body
        status, body = await s1("POST", "/v1/payments", {"store_id": "S1", "order_id": "A",
                                                         "amount_fen": 20000})
        assert body["member"] is False and body["join_offer"]["token"].startswith("pc1.")
        member = http.as_(api.token("member", member="M1"))
        offer = body["join_offer"]["token"]
        assert (await member("POST", f"/v1/points/claims/{offer}/redeem", {}))[0] == 200
        results = []
        for cashier, store, order in ((s1, "S1", "B"), (s1, "S1", "C"), (s2, "S2", "D"),
                                      (s2, "S2", "E")):
            status, body = await cashier("POST", "/v1/payments", {
                "store_id": store, "order_id": order, "amount_fen": 20000, "member_id": "M1"})
            assert status == 201, body
            results.append(body["rewards"][0]["status"])
        assert results == ["granted", "limit_reached", "granted", "limit_reached"]
        status, body = await op("GET", "/v1/members/M1/wallet")
        assert [c["kind"] for c in body["coupons"]] == ["count_card", "count_card"]
        status, body = await op("GET", "/v1/members/M1/account")
        assert body["points"] == 20 + 4 * 20 + 2 * 50
        status, body = await s1("POST", "/v1/payments", {
            "store_id": "S1", "order_id": "B", "amount_fen": 20000, "member_id": "M1"})
        assert body["points_earned"] == 20
        status, body = await op("GET", "/v1/members/M1/account")
        assert body["points"] == 200  # a repeated payment grants nothing twice

    run_http(api, scenario)


def test_points_mall_and_balance_payment(api: ApiServer) -> None:
    async def scenario(http: Http) -> None:
        op = http.as_(api.token("operator"))
        cashier = http.as_(api.token("cashier", store="S1"))
        tid = await make(op, kind="cash", discount_fen=1000)
        await op("PUT", "/v1/rules", {"points_mall": {tid: 30},
                                      "earn_fen_per_point": {"": 100}})
        await cashier("POST", "/v1/members/M1/recharges", {
            "amount_fen": 5000, "recharge_id": "R", "store_id": "S1"})
        status, body = await cashier("POST", "/v1/payments", {
            "store_id": "S1", "order_id": "P1", "amount_fen": 4000, "member_id": "M1",
            "from_balance": True})
        assert status == 201 and body["account"]["balance_fen"] == 1000
        assert body["points_earned"] == 40
        status, body = await cashier("POST", "/v1/payments", {
            "store_id": "S1", "order_id": "P2", "amount_fen": 4000, "member_id": "M1",
            "from_balance": True})
        assert status == 409 and body["reason"] == "insufficient_balance"
        member = http.as_(api.token("member", member="M1"))
        status, body = await member("POST", "/v1/points/mall", {"template_id": tid,
                                                                "purchase_id": "buy-1"})
        assert status == 201 and body["status"] == "new" and body["account"]["points"] == 10
        status, body = await member("POST", "/v1/points/mall", {"template_id": tid,
                                                                "purchase_id": "buy-2"})
        assert status == 409 and body["reason"] == "insufficient_points"
        status, body = await cashier("POST", "/v1/payments", {
            "store_id": "S1", "order_id": "P3", "amount_fen": 500, "member_id": "M1",
            "points_used": 11})
        assert status == 409 and body["reason"] == "insufficient_points"
        status, body = await cashier("POST", "/v1/payments", {
            "store_id": "S1", "order_id": "P3", "amount_fen": 500, "member_id": "M1",
            "points_used": 10})
        assert status == 201 and body["account"]["points"] == 0 + 5

    run_http(api, scenario)


def test_every_paid_order_reaches_the_orders_table_with_its_paid_channel(
        api: ApiServer, redis_client: redis.Redis, chdb_client: ChdbClient) -> None:
    """An order that earns no points is still an order for the analysts, and the POS's paid
    channel (stored value when paid from the balance) goes with it."""
    async def scenario(http: Http) -> None:
        op = http.as_(api.token("operator"))
        cashier = http.as_(api.token("cashier", store="S1"))
        await op("PUT", "/v1/rules", {"earn_fen_per_point": {"": 1000}})
        await cashier("POST", "/v1/members/M7/recharges", {
            "amount_fen": 5000, "recharge_id": "R7", "store_id": "S1"})
        status, body = await cashier("POST", "/v1/payments", {
            "store_id": "S1", "order_id": "A1", "amount_fen": 500, "member_id": "M7",
            "paid_channel": "bitcoin"})
        assert status == 422 and body["field"] == "paid_channel"
        for order, amount, extra in (("A1", 500, {"paid_channel": "alipay"}),
                                     ("A2", 3000, {"from_balance": True}),
                                     ("A3", 2000, {"paid_channel": "wechat_pay"}),
                                     ("A3", 2000, {"paid_channel": "wechat_pay"})):
            status, body = await cashier("POST", "/v1/payments", {
                "store_id": "S1", "order_id": order, "amount_fen": amount, "member_id": "M7",
                **extra})
            assert status in (200, 201), body
        assert body["replayed"] is True

    run_http(api, scenario)
    drain(reader=StreamReader(client=redis_client, stream="quanpai:events", consumer="t"),
          ch=chdb_client)
    rows = chdb_client.query("SELECT order_id, amount_fen, paid_channel FROM orders "
                             "WHERE member_id = 'M7' ORDER BY order_id")
    assert rows == [("A1", 500, "alipay"), ("A2", 3000, "stored_value"),
                    ("A3", 2000, "wechat_pay")]
