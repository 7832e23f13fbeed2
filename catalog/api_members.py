"""HTTP handlers: stored value, points, claim tokens, payments, gift transfers, merchant rules."""

from __future__ import annotations

from typing import Annotated, Any

from aiohttp import web
from msgspec import Meta

from catalog.accounts import buy_in_points_mall, ledger, load_merchant_rules, read_account, recharge
from catalog.api import catalog_of
from catalog.api_models import (
    AccountWithLedger,
    ClaimIn,
    ClaimOut,
    ClaimRedeemOut,
    Code,
    GiftState,
    Id,
    MallIn,
    MallOut,
    MemberIn,
    PaymentIn,
    PaymentOut,
    RechargeIn,
    RechargeOut,
)
from catalog.claims import after_payment, mint_claim, redeem_claim
from catalog.errors import InvalidInput
from catalog.gifts import accept_transfer, activate, cancel_transfer, start_transfer
from catalog.print_jobs import queue_join_offer
from catalog.rules import dump_rules, rules_from_json, rules_key
from infra.http_api import Route, principal, respond


def _member_for(request: web.Request, member_id: str | None) -> str:
    """The member a request acts for: a member token's own, or ``member_id`` in the body."""
    who = principal(request)
    if member_id is None:
        if who.role == "member":
            return who.member_id
        raise InvalidInput("member_id", "required")
    who.require_member(member_id)
    return member_id


async def get_account(request: web.Request) -> web.Response:
    who = principal(request)
    member_id = request.match_info["member_id"]
    who.require_member(member_id)
    cat = catalog_of(request)
    account = await read_account(cat, who.merchant_id, member_id)
    entries = await ledger(cat, who.merchant_id, member_id)
    return respond({**account.to_json(), "ledger": entries})


async def post_recharge(request: web.Request, body: RechargeIn) -> web.Response:
    who = principal(request)
    member_id = request.match_info["member_id"]
    who.require_store(body.store_id)
    result = await recharge(catalog_of(request), who.merchant_id, member_id,
                            amount_fen=body.amount_fen, ref=body.recharge_id,
                            store_id=body.store_id)
    return respond(result, status=201)


async def post_payment(request: web.Request, body: PaymentIn) -> web.Response:
    """A paid order: points by tier, post-payment rewards, or a join offer for non-members."""
    who = principal(request)
    who.require_store(body.store_id)
    result = await after_payment(
        catalog_of(request), merchant_id=who.merchant_id, store_id=body.store_id,
        order_id=body.order_id, amount_fen=body.amount_fen, member_id=body.member_id or "",
        from_balance=body.from_balance, points_used=body.points_used,
        paid_channel=body.paid_channel or ("stored_value" if body.from_balance else ""))
    await queue_join_offer(catalog_of(request), merchant_id=who.merchant_id, payment=result)
    return respond(result, status=200 if result["replayed"] else 201)


async def post_claim(request: web.Request, body: ClaimIn) -> web.Response:
    who = principal(request)
    who.require_store(body.store_id)
    claim = mint_claim(catalog_of(request), merchant_id=who.merchant_id, store_id=body.store_id,
                       order_id=body.order_id, amount_fen=body.amount_fen)
    return respond(claim, status=201)


async def post_claim_redeem(request: web.Request, body: MemberIn) -> web.Response:
    who = principal(request)
    result = await redeem_claim(catalog_of(request), merchant_id=who.merchant_id,
                                token=request.match_info["token"],
                                member_id=_member_for(request, body.member_id))
    return respond(result)


async def post_mall(request: web.Request, body: MallIn) -> web.Response:
    who = principal(request)
    result = await buy_in_points_mall(
        catalog_of(request), who.merchant_id, _member_for(request, body.member_id),
        template_id=body.template_id, ref=body.purchase_id)
    return respond(result, status=201)


async def post_activate(request: web.Request) -> web.Response:
    who = principal(request)
    result = await activate(catalog_of(request), merchant_id=who.merchant_id,
                            code=request.match_info["code"])
    return respond(result)


async def post_transfer(request: web.Request, body: MemberIn) -> web.Response:
    who = principal(request)
    result = await start_transfer(catalog_of(request), merchant_id=who.merchant_id,
                                  code=request.match_info["code"],
                                  member_id=_member_for(request, body.member_id))
    return respond(result, status=201)


async def post_transfer_cancel(request: web.Request, body: MemberIn) -> web.Response:
    who = principal(request)
    result = await cancel_transfer(catalog_of(request), merchant_id=who.merchant_id,
                                   code=request.match_info["code"],
                                   member_id=_member_for(request, body.member_id))
    return respond(result)


async def post_transfer_accept(request: web.Request, body: MemberIn) -> web.Response:
    who = principal(request)
    result = await accept_transfer(catalog_of(request), merchant_id=who.merchant_id,
                                   token=request.match_info["token"],
                                   member_id=_member_for(request, body.member_id))
    return respond(result, status=201)


async def put_rules(request: web.Request, body: dict[str, Any]) -> web.Response:
    who = principal(request)
    rules = rules_from_json(body)
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
    return respond((await load_merchant_rules(catalog_of(request), who.merchant_id)).to_json())


Token = Annotated[str, Meta(pattern="^[A-Za-z0-9_.-]{1,512}$", description="a signed token")]
_MEMBER = {"member_id": Id}
_CODE = {"code": Code}
_TOKEN = {"token": Token}
_Rules = dict[str, Any]
ROUTES = [
    Route("GET", "/v1/members/{member_id}/account", get_account,
          "Stored value, points, tier and ledger", ("operator", "cashier", "member"),
          responses={200: AccountWithLedger}, path_params=_MEMBER, tags=("members",)),
    Route("POST", "/v1/members/{member_id}/recharges", post_recharge,
          "充值 with the matching bonus", ("operator", "cashier"), RechargeIn,
          {201: RechargeOut}, path_params=_MEMBER, tags=("members",)),
    Route("POST", "/v1/payments", post_payment,
          "支付后营销: points and rewards after a payment", ("operator", "cashier"),
          PaymentIn, {201: PaymentOut, 200: PaymentOut}, tags=("members",)),
    Route("POST", "/v1/points/claims", post_claim,
          "Mint a one-time points claim token for a receipt QR",
          ("printer", "cashier", "operator"), ClaimIn, {201: ClaimOut}, tags=("members",)),
    Route("POST", "/v1/points/claims/{token}/redeem", post_claim_redeem,
          "Grant a claim's points once (joins if needed)", ("member", "cashier", "operator"),
          MemberIn, {200: ClaimRedeemOut}, path_params=_TOKEN, tags=("members",)),
    Route("POST", "/v1/points/mall", post_mall, "Buy a coupon with points",
          ("member", "cashier", "operator"), MallIn, {201: MallOut}, tags=("members",)),
    Route("POST", "/v1/gift-cards/{code}/activate", post_activate,
          "Activate a gift card sold inactive (未激活)", ("cashier", "operator"),
          responses={200: GiftState}, path_params=_CODE, tags=("members",)),
    Route("POST", "/v1/gift-cards/{code}/transfer", post_transfer,
          "Start a gift card transfer (once per card)", ("member", "operator"), MemberIn,
          {201: GiftState}, path_params=_CODE, tags=("members",)),
    Route("POST", "/v1/gift-cards/{code}/transfer/cancel", post_transfer_cancel,
          "Cancel a pending transfer", ("member", "operator"), MemberIn, {200: GiftState},
          path_params=_CODE, tags=("members",)),
    Route("POST", "/v1/gift-cards/transfers/{token}/accept", post_transfer_accept,
          "Accept a gift card transfer", ("member", "operator"), MemberIn, {201: GiftState},
          path_params=_TOKEN, tags=("members",)),
    Route("PUT", "/v1/rules", put_rules,
          "Set tiers, stored-value discounts, points, recharge and post-payment rules",
          ("operator",), _Rules, {200: _Rules}, tags=("members",)),
    Route("GET", "/v1/rules", get_rules, "The merchant's rules", ("operator", "cashier"),
          responses={200: _Rules}, tags=("members",)),
]
