"""Each coupon type issued, priced and redeemed over real HTTP and a real Redis."""

from __future__ import annotations

from typing import Any

import pytest

from .conftest import ApiServer, Http, run_http


@pytest.fixture(params=["redis", "cluster"])
def api(request: pytest.FixtureRequest) -> ApiServer:
    """Every coupon type's scripts run on one Redis and on a three-master Redis Cluster."""
    return request.getfixturevalue(  # type: ignore[no-any-return]
        "single_api" if request.param == "redis" else "cluster_api")

BASE: dict[str, Any] = {"total_stock": 100, "valid_days": 30}


async def make(http: Http, **fields: Any) -> str:
    status, body = await http("POST", "/v1/templates", {**BASE, "name": "券", **fields})
    assert status == 201, body
    return str(body["template_id"])


async def give(http: Http, template_id: str, member: str = "M1", campaign: str = "c1") -> str:
    status, body = await http("POST", "/v1/coupons", {"template_id": template_id,
                                                      "member_id": member,
                                                      "campaign_id": campaign})
    assert status == 201, body
    assert body["coupons"][0]["status"] == "new"
    return str(body["coupons"][0]["code"])


def redeem_body(code: str, amount: int, order: str = "O1", store: str = "S1",
                **extra: Any) -> dict[str, Any]:
    return {"code": code, "order_id": order, "store_id": store, "amount_fen": amount, **extra}


def test_threshold_exactly_met_and_not_met(api: ApiServer) -> None:
    async def scenario(http: Http) -> None:
        op = http.as_(api.token("operator"))
        cashier = http.as_(api.token("cashier", store="S1"))
        tid = await make(op, kind="threshold", threshold_fen=10000, discount_fen=2000)
        code = await give(op, tid)
        status, body = await cashier("POST", "/v1/redemptions", redeem_body(code, 9999))
        assert status == 409 and body["reason"] == "threshold_not_met"
        status, body = await cashier("POST", "/v1/redemptions", redeem_body(code, 10000))
        assert status == 201, body
        assert body["discount_fen"] == 2000 and body["amount_fen"] == 10000
        status, body = await cashier("POST", "/v1/redemptions", redeem_body(code, 10000, "O2"))
        assert status == 409 and body["reason"] == "already_redeemed"

    run_http(api, scenario)


def test_discount_cash_and_exchange(api: ApiServer) -> None:
    async def scenario(http: Http) -> None:
        op = http.as_(api.token("operator"))
        cashier = http.as_(api.token("cashier", store="S1"))
        disc = await give(op, await make(op, kind="discount", rate_permille=800, cap_fen=1500))
        status, body = await cashier("POST", "/v1/redemptions", redeem_body(disc, 5000))
        assert status == 201 and body["discount_fen"] == 1000
        capped = await give(op, await make(op, kind="discount", rate_permille=800,
                                           cap_fen=1500), "M2")
        status, body = await cashier("POST", "/v1/redemptions", redeem_body(capped, 50000))
        assert body["discount_fen"] == 1500
        cash = await give(op, await make(op, kind="cash", discount_fen=500))
        status, body = await cashier("POST", "/v1/redemptions", redeem_body(cash, 300))
        assert status == 201 and body["discount_fen"] == 300  # never more than the order
        exchange = await give(op, await make(op, kind="exchange", item_sku="COFFEE"))
        lines = [{"sku": "BREAD", "category": "bakery", "quantity": 1, "unit_price_fen": 800}]
        status, body = await cashier("POST", "/v1/redemptions",
                                     redeem_body(exchange, 800, lines=lines))
        assert status == 409 and body["reason"] == "item_not_in_order"
        lines.append({"sku": "COFFEE", "category": "drinks", "quantity": 2,
                      "unit_price_fen": 1800})
        status, body = await cashier("POST", "/v1/redemptions",
                                     redeem_body(exchange, 4400, lines=lines))
        assert status == 201 and body["discount_fen"] == 1800

    run_http(api, scenario)


def test_expired_and_not_yet_valid(api: ApiServer) -> None:
    async def scenario(http: Http) -> None:
        op = http.as_(api.token("operator"))
        cashier = http.as_(api.token("cashier", store="S1"))
        tid = await make(op, kind="cash", discount_fen=500, valid_days=3)
        code = await give(op, tid)
        later = await make(op, kind="cash", discount_fen=500, valid_days=0,
                           valid_from="2026-12-01", valid_until="2026-12-31")
        future = await give(op, later)
        status, body = await cashier("POST", "/v1/redemptions", redeem_body(future, 1000))
        assert status == 409 and body["reason"] == "not_yet_valid"
        api.clock.advance(days=3)  # issued on day 1, valid for days 1-3
        status, body = await cashier("POST", "/v1/redemptions", redeem_body(code, 1000))
        assert status == 409 and body["reason"] == "expired"
        status, body = await op("GET", "/v1/members/M1/wallet")
        assert [c["template_id"] for c in body["coupons"]] == [later]

    run_http(api, scenario)


def test_wrong_store_cross_store_and_forged_code(api: ApiServer) -> None:
    async def scenario(http: Http) -> None:
        op = http.as_(api.token("operator"))
        s1 = http.as_(api.token("cashier", store="S1"))
        code = await give(op, await make(op, kind="cash", discount_fen=500, stores=["S2"]))
        status, body = await s1("POST", "/v1/redemptions", redeem_body(code, 1000))
        assert status == 409 and body["reason"] == "wrong_store"
        status, body = await s1("POST", "/v1/redemptions", redeem_body(code, 1000, store="S2"))
        assert status == 403 and "store_id" in body["message"]
        forged = ("0" if code[0] != "0" else "1") + code[1:]
        s2 = http.as_(api.token("cashier", store="S2"))
        status, body = await s2("POST", "/v1/redemptions",
                                redeem_body(forged, 1000, store="S2"))
        assert status == 422 and body["field"] == "code"
        other = http.as_(api.token("cashier", store="S2", merchant="m2"))
        status, body = await other("POST", "/v1/redemptions",
                                   redeem_body(code, 1000, store="S2"))
        assert status == 422 and body["field"] == "code"
        status, body = await s2("POST", "/v1/redemptions", redeem_body(code, 1000, store="S2"))
        assert status == 201
        status, body = await http("POST", "/v1/redemptions", redeem_body(code, 1, store="S2"))
        assert status == 401

    run_http(api, scenario)


def test_count_card_daily_limit_uses_and_refund(api: ApiServer) -> None:
    async def scenario(http: Http) -> None:
        op = http.as_(api.token("operator"))
        cashier = http.as_(api.token("cashier", store="S1"))
        code = await give(op, await make(op, kind="count_card", uses=3, daily_limit=2))
        ids = []
        for order in ("A", "B"):
            status, body = await cashier("POST", "/v1/redemptions", redeem_body(code, 0, order))
            assert status == 201, body
            ids.append(body["redemption_id"])
        status, body = await cashier("POST", "/v1/redemptions", redeem_body(code, 0, "C"))
        assert status == 409 and body["reason"] == "daily_limit"
        status, body = await cashier("POST", f"/v1/redemptions/{ids[1]}/refund")
        assert status == 200 and body["already_refunded"] is False
        status, body = await cashier("POST", f"/v1/redemptions/{ids[1]}/refund")
        assert status == 200 and body["already_refunded"] is True
        status, body = await cashier("POST", "/v1/redemptions", redeem_body(code, 0, "C"))
        assert status == 201  # the refund gave back both the use and today's slot
        api.clock.advance(days=1)
        status, body = await cashier("POST", "/v1/redemptions", redeem_body(code, 0, "D"))
        assert status == 201 and body["card_state"].startswith("0,")
        status, body = await cashier("POST", "/v1/redemptions", redeem_body(code, 0, "E"))
        assert status == 409 and body["reason"] == "already_redeemed"
        other_store = http.as_(api.token("cashier", store="S9"))
        status, body = await other_store("POST", f"/v1/redemptions/{ids[0]}/refund")
        assert status == 409 and body["reason"] == "wrong_store"

    run_http(api, scenario)


def test_duration_card_from_first_use_daily_limit_and_extension(api: ApiServer) -> None:
    async def scenario(http: Http) -> None:
        op = http.as_(api.token("operator"))
        cashier = http.as_(api.token("cashier", store="S1"))
        tid = await make(op, kind="duration_card", duration_days=2, duration_from="first_use",
                         daily_limit=1, valid_days=0)
        code = await give(op, tid)
        api.clock.advance(days=5)  # not started yet: the clock runs from the first use
        status, body = await cashier("POST", "/v1/redemptions", redeem_body(code, 0, "A"))
        assert status == 201, body
        status, body = await cashier("POST", "/v1/redemptions", redeem_body(code, 0, "B"))
        assert status == 409 and body["reason"] == "daily_limit"
        api.clock.advance(days=1)
        assert (await cashier("POST", "/v1/redemptions", redeem_body(code, 0, "C")))[0] == 201
        api.clock.advance(days=1)
        status, body = await cashier("POST", "/v1/redemptions", redeem_body(code, 0, "D"))
        assert status == 409 and body["reason"] == "expired"
        # buying again extends the card the member holds
        status, body = await op("POST", "/v1/coupons", {"template_id": tid, "member_id": "M1",
                                                        "campaign_id": "purchase-2"})
        assert body["coupons"][0]["status"] == "extended"
        assert body["coupons"][0]["code"] == code
        status, body = await cashier("POST", "/v1/redemptions", redeem_body(code, 0, "D"))
        assert status == 201, body

    run_http(api, scenario)


def test_gift_card_partial_spends_and_single_transfer(api: ApiServer) -> None:
    async def scenario(http: Http) -> None:
        op = http.as_(api.token("operator"))
        cashier = http.as_(api.token("cashier", store="S1"))
        giver = http.as_(api.token("member", member="M1"))
        receiver = http.as_(api.token("member", member="M2"))
        code = await give(op, await make(op, kind="gift_card", face_value_fen=10000))
        status, body = await cashier("POST", "/v1/redemptions", redeem_body(code, 3000, "A"))
        assert status == 201 and body["spent_fen"] == 3000
        status, body = await receiver("POST", f"/v1/gift-cards/{code}/transfer", {})
        assert status == 409 and body["reason"] == "not_holder"
        status, body = await giver("POST", f"/v1/gift-cards/{code}/transfer", {})
        assert status == 201
        token = body["transfer_token"]
        status, body = await cashier("POST", "/v1/redemptions", redeem_body(code, 100, "B"))
        assert status == 409 and body["reason"] == "transfer_pending"
        status, body = await receiver("POST", f"/v1/gift-cards/transfers/{token}/accept", {})
        assert status == 201, body
        new_code = body["code"]
        status, body = await receiver("POST", f"/v1/gift-cards/transfers/{token}/accept", {})
        assert status == 201 and body["code"] == new_code  # a retried accept is the same
        status, body = await cashier("POST", "/v1/redemptions", redeem_body(code, 100, "C"))
        assert status == 409 and body["reason"] == "transferred"
        status, body = await cashier("POST", "/v1/redemptions",
                                     redeem_body(new_code, 9000, "D"))
        assert status == 201 and body["spent_fen"] == 7000  # the rest of the balance
        status, body = await receiver("POST", f"/v1/gift-cards/{new_code}/transfer", {})
        assert status == 409 and body["reason"] in ("not_active", "already_transferred_once")
        status, body = await op("GET", "/v1/members/M2/wallet?all=1")
        assert body["coupons"][0]["state"] == "used"
        assert body["coupons"][0]["balance_fen"] == 0

    run_http(api, scenario)


def test_bad_template_input_names_the_field(api: ApiServer) -> None:
    async def scenario(http: Http) -> None:
        op = http.as_(api.token("operator"))
        status, body = await op("POST", "/v1/templates", {**BASE, "name": "x",
                                                          "kind": "threshold",
                                                          "threshold_fen": 100,
                                                          "discount_fen": 200})
        assert status == 422 and body["field"] == "discount_fen"
        status, body = await op("POST", "/v1/templates", {**BASE, "name": "x", "kind": "cash",
                                                          "discount_fen": 1, "colour": "red"})
        assert status == 422 and body["field"] == "colour"
        cashier = http.as_(api.token("cashier", store="S1"))
        status, body = await cashier("POST", "/v1/templates", {**BASE, "kind": "cash"})
        assert status == 403
        status, body = await op("GET", "/v1/templates")
        assert body["templates"] == []
        status, body = await op("GET", "/v1/openapi.json")
        assert "/v1/redemptions" in body["paths"]

    run_http(api, scenario)


def test_qr_code_of_a_coupon(api: ApiServer) -> None:
    async def scenario(http: Http) -> None:
        op = http.as_(api.token("operator"))
        code = await give(op, await make(op, kind="cash", discount_fen=500))
        async with http.session.get(f"{api.url}/v1/coupons/{code}/qr.svg",
                                    headers={"Authorization": f"Bearer {op.token}"}) as resp:
            assert resp.status == 200
            assert resp.headers["X-Coupon-Code"] == code
            assert b"<svg" in await resp.read()
        status, body = await op("GET", f"/v1/coupons/{code}")
        assert status == 200 and body["member_id"] == "M1" and body["state"] == "active"

    run_http(api, scenario)


def test_gift_card_sold_inactive_until_activated(api: ApiServer) -> None:
    async def scenario(http: Http) -> None:
        op = http.as_(api.token("operator"))
        cashier = http.as_(api.token("cashier", store="S1"))
        code = await give(op, await make(op, kind="gift_card", face_value_fen=5000,
                                         activation_required=True))
        status, body = await cashier("POST", "/v1/redemptions", redeem_body(code, 100))
        assert status == 409 and body["reason"] == "inactive"
        status, body = await op("GET", "/v1/members/M1/wallet?all=1")
        assert body["coupons"][0]["state"] == "inactive"
        for _ in range(2):  # activation is idempotent
            status, body = await cashier("POST", f"/v1/gift-cards/{code}/activate")
            assert status == 200 and body["state"] == "active"
        status, body = await cashier("POST", "/v1/redemptions", redeem_body(code, 100))
        assert status == 201 and body["spent_fen"] == 100

    run_http(api, scenario)


def test_channel_scope_transfer_cancel_and_duration_from_purchase(api: ApiServer) -> None:
    async def scenario(http: Http) -> None:
        op = http.as_(api.token("operator"))
        cashier = http.as_(api.token("cashier", store="S1"))
        online = await give(op, await make(op, kind="cash", discount_fen=500,
                                          channels=["online"]))
        status, body = await cashier("POST", "/v1/redemptions", redeem_body(online, 1000))
        assert status == 409 and body["reason"] == "wrong_channel"
        status, body = await cashier("POST", "/v1/redemptions",
                                     redeem_body(online, 1000, channel="online"))
        assert status == 201
        gift = await give(op, await make(op, kind="gift_card", face_value_fen=1000))
        giver = http.as_(api.token("member", member="M1"))
        status, body = await giver("POST", f"/v1/gift-cards/{gift}/transfer", {})
        token = body["transfer_token"]
        status, body = await giver("POST", f"/v1/gift-cards/{gift}/transfer/cancel", {})
        assert status == 200 and body["state"] == "active"
        receiver = http.as_(api.token("member", member="M2"))
        status, body = await receiver("POST", f"/v1/gift-cards/transfers/{token}/accept", {})
        assert status == 409 and body["reason"] == "not_transferring"
        status, body = await cashier("POST", "/v1/redemptions", redeem_body(gift, 400, "G"))
        assert status == 201 and body["spent_fen"] == 400
        week = await give(op, await make(op, kind="duration_card", duration_days=7,
                                        valid_days=0))
        api.clock.advance(days=6)  # from purchase: day 7 is the last
        assert (await cashier("POST", "/v1/redemptions", redeem_body(week, 0, "W1")))[0] == 201
        api.clock.advance(days=1)
        status, body = await cashier("POST", "/v1/redemptions", redeem_body(week, 0, "W2"))
        assert status == 409 and body["reason"] == "expired"

    run_http(api, scenario)


def test_roles_and_merchants_stay_in_their_lane(api: ApiServer) -> None:
    async def scenario(http: Http) -> None:
        op = http.as_(api.token("operator"))
        code = await give(op, await make(op, kind="cash", discount_fen=500))
        member = http.as_(api.token("member", member="M1"))
        status, body = await member("POST", "/v1/redemptions", redeem_body(code, 1000))
        assert status == 403
        printer = http.as_(api.token("printer", store="S1"))
        status, body = await printer("POST", "/v1/redemptions", redeem_body(code, 1000))
        assert status == 403
        other_op = http.as_(api.token("operator", merchant="m2"))
        status, body = await other_op("GET", "/v1/members/M1/wallet")
        assert status == 200 and body["coupons"] == []
        status, body = await other_op("GET", f"/v1/coupons/{code}")
        assert status == 422 and body["field"] == "code"
        status, body = await member("GET", "/v1/members/M2/wallet")
        assert status == 403
        status, body = await member("GET", "/v1/members/M1/wallet")
        assert status == 200 and [c["code"] for c in body["coupons"]] == [code]
        bad = http.as_("qp1.eyJyIjoib3BlcmF0b3IifQ.AAAA")
        status, body = await bad("GET", "/v1/templates")
        assert status == 401

    run_http(api, scenario)
