"""HTTP handlers: templates, issuing to members, wallets, the 到手价 quote, redemption, refund."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from catalog.accounts import load_merchant_rules
from catalog.api import (
    bool_field,
    catalog_of,
    int_field,
    json_body,
    principal,
    respond,
    text_field,
)
from catalog.codes import display, make_code, qr_payload
from catalog.discounts import OrderLine
from catalog.errors import InvalidInput
from catalog.issuance import MAX_BATCH, issue_batch_async
from catalog.pricing import MemberState, parse_lines, quote
from catalog.redemption import lookup, parse_code, redeem, redemption_slip, refund
from catalog.templates import CouponTemplate, check_id, save_template_async, stock_left_async
from catalog.wallet import read_wallet


async def create_template(request: web.Request) -> web.Response:
    who = principal(request)
    who.require("operator")
    data = await json_body(request)
    data.pop("template_id", None)
    template = CouponTemplate.from_json(data, merchant_id=who.merchant_id)
    saved = await save_template_async(catalog_of(request).client, template)
    return respond(saved.to_json(), status=201)


async def get_template(request: web.Request) -> web.Response:
    who = principal(request)
    who.require("operator", "cashier")
    cat = catalog_of(request)
    template = await cat.template(who.merchant_id, request.match_info["template_id"])
    stock, budget = await stock_left_async(cat.client, who.merchant_id, template.template_id)
    return respond({**template.to_json(), "stock_left": stock, "budget_left_fen": budget})


async def list_templates(request: web.Request) -> web.Response:
    who = principal(request)
    who.require("operator", "cashier")
    found = await catalog_of(request).templates(who.merchant_id, fresh=True)
    return respond({"templates": [t.to_json() for t in sorted(found.values(),
                                                               key=lambda t: t.number)]})


async def issue_coupons(request: web.Request) -> web.Response:
    """Issue one template to one or more members; exactly once per (campaign, member)."""
    who = principal(request)
    who.require("operator")
    data = await json_body(request)
    template_id = text_field(data, "template_id")
    members = data.get("member_ids", [data["member_id"]] if "member_id" in data else None)
    if not isinstance(members, list) or not members or len(members) > MAX_BATCH:
        raise InvalidInput("member_ids", f"expected 1-{MAX_BATCH} member ids")
    for member in members:
        if not isinstance(member, str):
            raise InvalidInput("member_ids", "expected strings")
        check_id("member_ids", member)
    key = request.headers.get("Idempotency-Key", "")
    campaign = text_field(data, "campaign_id", required=not key,
                          default=f"api:{key[:56]}")
    cat = catalog_of(request)
    await cat.template(who.merchant_id, template_id)
    issued = await issue_batch_async(
        cat.client, merchant_id=who.merchant_id, campaign_id=campaign, template_id=template_id,
        member_ids=members, now=cat.now(), secret=cat.secret, tz=cat.tz)
    return respond({"campaign_id": campaign, "coupons": [
        {"member_id": c.member_id, "code": display(c.code) if c.code else "",
         "status": c.status} for c in issued]}, status=201)


async def wallet(request: web.Request) -> web.Response:
    who = principal(request)
    who.require("operator", "cashier", "member")
    member_id = request.match_info["member_id"]
    who.require_member(member_id)
    cat = catalog_of(request)
    coupons, _ = await read_wallet(cat, who.merchant_id, member_id)
    everything = request.query.get("all") in ("1", "true")
    today = cat.today()
    shown = [c for c in coupons if everything or (c.state in ("active", "transferring")
                                                 and c.last_day >= today)]
    return respond({"member_id": member_id, "coupons": [c.to_json() for c in shown]})


async def get_coupon(request: web.Request) -> web.Response:
    who = principal(request)
    who.require("operator", "cashier")
    return respond(await lookup(catalog_of(request), merchant_id=who.merchant_id,
                                code=request.match_info["code"]))


async def coupon_qr(request: web.Request) -> web.Response:
    """The coupon's QR code (SVG) for screens and printed vouchers; the code itself is printed
    beside it for typing."""
    import io

    import qrcode
    import qrcode.image.svg

    who = principal(request)
    who.require("operator", "cashier", "printer", "member")
    cat = catalog_of(request)
    ref = parse_code(cat, who.merchant_id, request.match_info["code"])
    code = make_code(secret=cat.secret, merchant_id=who.merchant_id,
                     template_number=ref.template_number, serial=ref.serial)
    image = qrcode.make(qr_payload(code), image_factory=qrcode.image.svg.SvgPathImage)
    out = io.BytesIO()
    image.save(out)
    return web.Response(body=out.getvalue(), content_type="image/svg+xml",
                        headers={"X-Coupon-Code": display(code)})


def _member_state(raw: list[Any]) -> MemberState:
    tier, balance, points = raw
    tier_name = tier.decode() if isinstance(tier, bytes) else (tier or "")
    return MemberState(tier=tier_name, balance_fen=int(balance or 0), points=int(points or 0))


async def checkout_quote(request: web.Request) -> web.Response:
    who = principal(request)
    who.require("operator", "cashier", "member")
    data = await json_body(request)
    member_id = text_field(data, "member_id")
    check_id("member_id", member_id)
    who.require_member(member_id)
    store_id = text_field(data, "store_id")
    who.require_store(store_id)
    channel = text_field(data, "channel", required=False, default="offline")
    if channel not in ("online", "offline"):
        raise InvalidInput("channel", "expected online or offline")
    lines = parse_lines(data.get("lines"))
    use_points = int_field(data, "use_points", required=False)
    pay_with_balance = bool_field(data, "pay_with_balance")
    order_id = text_field(data, "order_id", required=False)
    cat = catalog_of(request)
    rules = await load_merchant_rules(cat, who.merchant_id)
    coupons, raw = await read_wallet(cat, who.merchant_id, member_id, with_account=True)
    member = _member_state(raw or [None, None, None])
    now = cat.now()
    result = quote(rules=rules, member=member, lines=lines, wallet=coupons, store_id=store_id,
                   channel=channel, order_id=order_id, now=now, day=cat.today(now),
                   use_points=use_points, pay_with_balance=pay_with_balance, secret=cat.secret)
    return respond({"member_id": member_id, "store_id": store_id, **result.to_json()})


async def create_redemption(request: web.Request) -> web.Response:
    who = principal(request)
    who.require("operator", "cashier")
    data = await json_body(request)
    store_id = text_field(data, "store_id")
    who.require_store(store_id)
    code = text_field(data, "code", limit=128)
    order_id = text_field(data, "order_id")
    amount = int_field(data, "amount_fen")
    lines: tuple[OrderLine, ...] = parse_lines(data["lines"]) if "lines" in data else ()
    channel = text_field(data, "channel", required=False, default="offline")
    member_id = text_field(data, "member_id", required=False)
    key = request.headers.get("Idempotency-Key", "")
    if len(key) > 128:
        raise InvalidInput("Idempotency-Key", "at most 128 characters")
    result = await redeem(catalog_of(request), merchant_id=who.merchant_id, code=code,
                          order_id=order_id, store_id=store_id, amount_fen=amount, lines=lines,
                          channel=channel, idempotency_key=key, member_id=member_id)
    return respond(result.to_json(), status=200 if result.replayed else 201)


async def get_redemption(request: web.Request) -> web.Response:
    """A redemption slip (printer agents print it; cashiers look it up)."""
    who = principal(request)
    who.require("operator", "cashier", "printer")
    slip = await redemption_slip(catalog_of(request), merchant_id=who.merchant_id,
                                 redemption=request.match_info["redemption_id"])
    who.require_store(slip["store_id"])
    return respond(slip)


async def refund_redemption(request: web.Request) -> web.Response:
    who = principal(request)
    who.require("operator", "cashier")
    store = who.store_id if who.role == "cashier" else ""
    result = await refund(catalog_of(request), merchant_id=who.merchant_id,
                          redemption=request.match_info["redemption_id"], store_id=store)
    return respond(result)


def add_routes(app: web.Application) -> None:
    app.router.add_post("/v1/templates", create_template)
    app.router.add_get("/v1/templates", list_templates)
    app.router.add_get("/v1/templates/{template_id}", get_template)
    app.router.add_post("/v1/coupons", issue_coupons)
    app.router.add_get("/v1/coupons/{code}", get_coupon)
    app.router.add_get("/v1/coupons/{code}/qr.svg", coupon_qr)
    app.router.add_get("/v1/members/{member_id}/wallet", wallet)
    app.router.add_post("/v1/checkout/quote", checkout_quote)
    app.router.add_post("/v1/redemptions", create_redemption)
    app.router.add_get("/v1/redemptions/{redemption_id}", get_redemption)
    app.router.add_post("/v1/redemptions/{redemption_id}/refund", refund_redemption)

