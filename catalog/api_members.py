"""HTTP handlers: stored value, points, claim tokens, payments, gift transfers, merchant rules."""

from __future__ import annotations

from aiohttp import web

from catalog.accounts import buy_in_points_mall, ledger, read_account, recharge
from catalog.api import (
    bool_field,
    catalog_of,
    int_field,
    json_body,
    principal,
    respond,
    text_field,
)
from catalog.claims import after_payment, mint_claim, redeem_claim
from catalog.errors import InvalidInput
from catalog.gifts import accept_transfer, activate, cancel_transfer, start_transfer
from catalog.rules import dump_rules, rules_from_json, rules_key
from catalog.templates import check_id


def _member_for(request: web.Request, data: dict[str, object]) -> str:
    """The member a request acts for: a member token's own, or ``member_id`` in the body."""
    who = principal(request)
    if who.role == "member" and "member_id" not in data:
        return who.member_id
    member_id = text_field(data, "member_id")  # type: ignore[arg-type]
    check_id("member_id", member_id)
    who.require_member(member_id)
    return member_id


async def get_account(request: web.Request) -> web.Response:
    who = principal(request)
    who.require("operator", "cashier", "member")
    member_id = request.match_info["member_id"]
    check_id("member_id", member_id)
    who.require_member(member_id)
    cat = catalog_of(request)
    account = await read_account(cat, who.merchant_id, member_id)
    entries = await ledger(cat, who.merchant_id, member_id)
    return respond({**account.to_json(), "ledger": entries})


async def post_recharge(request: web.Request) -> web.Response:
    who = principal(request)
    who.require("operator", "cashier")
    member_id = request.match_info["member_id"]
    check_id("member_id", member_id)
    data = await json_body(request)
    store_id = text_field(data, "store_id")
    who.require_store(store_id)
    ref = text_field(data, "recharge_id")
    result = await recharge(catalog_of(request), who.merchant_id, member_id,
                            amount_fen=int_field(data, "amount_fen", minimum=1), ref=ref,
                            store_id=store_id)
    return respond(result, status=201)


async def post_payment(request: web.Request) -> web.Response:
    """A paid order: points by tier, post-payment rewards, or a join offer for non-members."""
    who = principal(request)
    who.require("operator", "cashier")
    data = await json_body(request)
    store_id = text_field(data, "store_id")
    who.require_store(store_id)
    member_id = text_field(data, "member_id", required=False)
    if member_id:
        check_id("member_id", member_id)
    result = await after_payment(
        catalog_of(request), merchant_id=who.merchant_id, store_id=store_id,
        order_id=text_field(data, "order_id"), amount_fen=int_field(data, "amount_fen",
                                                                     minimum=1),
        member_id=member_id, from_balance=bool_field(data, "from_balance"),
        points_used=int_field(data, "points_used", required=False))
    return respond(result, status=201)


async def post_claim(request: web.Request) -> web.Response:
    who = principal(request)
    who.require("printer", "cashier", "operator")
    data = await json_body(request)
    store_id = text_field(data, "store_id")
    who.require_store(store_id)
    claim = mint_claim(catalog_of(request), merchant_id=who.merchant_id, store_id=store_id,
                       order_id=text_field(data, "order_id"),
                       amount_fen=int_field(data, "amount_fen", minimum=1))
    return respond(claim, status=201)


async def post_claim_redeem(request: web.Request) -> web.Response:
    who = principal(request)
    who.require("member", "cashier", "operator")
    data = await json_body(request)
    member_id = _member_for(request, data)
    result = await redeem_claim(catalog_of(request), merchant_id=who.merchant_id,
                                token=request.match_info["token"], member_id=member_id)
    return respond(result)


async def post_mall(request: web.Request) -> web.Response:
    who = principal(request)
    who.require("member", "cashier", "operator")
    data = await json_body(request)
    member_id = _member_for(request, data)
    result = await buy_in_points_mall(
        catalog_of(request), who.merchant_id, member_id,
        template_id=text_field(data, "template_id"), ref=text_field(data, "purchase_id"))
    return respond(result, status=201)


async def post_activate(request: web.Request) -> web.Response:
    who = principal(request)
    who.require("cashier", "operator")
    result = await activate(catalog_of(request), merchant_id=who.merchant_id,
                            code=request.match_info["code"])
    return respond(result)


async def post_transfer(request: web.Request) -> web.Response:
    who = principal(request)
    who.require("member", "operator")
    data = await json_body(request)
    result = await start_transfer(catalog_of(request), merchant_id=who.merchant_id,
                                  code=request.match_info["code"],
                                  member_id=_member_for(request, data))
    return respond(result, status=201)


async def post_transfer_cancel(request: web.Request) -> web.Response:
    who = principal(request)
    who.require("member", "operator")
    data = await json_body(request)
    result = await cancel_transfer(catalog_of(request), merchant_id=who.merchant_id,
                                   code=request.match_info["code"],
                                   member_id=_member_for(request, data))
    return respond(result)


async def post_transfer_accept(request: web.Request) -> web.Response:
    who = principal(request)
    who.require("member", "operator")
    data = await json_body(request)
    result = await accept_transfer(catalog_of(request), merchant_id=who.merchant_id,
                                   token=request.match_info["token"],
                                   member_id=_member_for(request, data))
    return respond(result, status=201)


async def put_rules(request: web.Request) -> web.Response:
    who = principal(request)
    who.require("operator")
    rules = rules_from_json(await json_body(request))
    cat = catalog_of(request)
    templates = await cat.templates(who.merchant_id, fresh=True)
    wanted = [t for r in rules.recharge for t in r.template_ids]
    wanted += [t for r in rules.post_payment for t in r.template_ids] + list(rules.points_mall)
    for template_id in wanted:
        if template_id not in templates:
            raise InvalidInput("template_ids", f"template {template_id} does not exist")
    await cat.client.set(rules_key(who.merchant_id), dump_rules(rules))
    cat.forget_rules(who.merchant_id)
    return respond(rules.to_json())


async def get_rules(request: web.Request) -> web.Response:
    who = principal(request)
    who.require("operator", "cashier")
    from catalog.accounts import load_merchant_rules

    return respond((await load_merchant_rules(catalog_of(request), who.merchant_id)).to_json())


def add_routes(app: web.Application) -> None:
    app.router.add_get("/v1/members/{member_id}/account", get_account)
    app.router.add_post("/v1/members/{member_id}/recharges", post_recharge)
    app.router.add_post("/v1/payments", post_payment)
    app.router.add_post("/v1/points/claims", post_claim)
    app.router.add_post("/v1/points/claims/{token}/redeem", post_claim_redeem)
    app.router.add_post("/v1/points/mall", post_mall)
    app.router.add_post("/v1/gift-cards/{code}/activate", post_activate)
    app.router.add_post("/v1/gift-cards/{code}/transfer", post_transfer)
    app.router.add_post("/v1/gift-cards/{code}/transfer/cancel", post_transfer_cancel)
    app.router.add_post("/v1/gift-cards/transfers/{token}/accept", post_transfer_accept)
    app.router.add_put("/v1/rules", put_rules)
    app.router.add_get("/v1/rules", get_rules)
