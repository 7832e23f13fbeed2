"""HTTP handlers: templates, issuing to members, wallets, the 到手价 quote, redemption, refund."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from aiohttp import web
from msgspec import Meta

from catalog.accounts import load_merchant_rules
from catalog.api import catalog_of
from catalog.api_models import (
    MAX_FEN,
    Code,
    CouponOut,
    Id,
    IssueIn,
    IssueOut,
    QuoteIn,
    QuoteOut,
    RedemptionIn,
    RedemptionOut,
    RefundOut,
    SlipOut,
    TemplateId,
    TemplateIn,
    TemplateList,
    TemplateOut,
    WalletOut,
    WalletQuery,
)
from catalog.codes import display, make_code, qr_payload
from catalog.discounts import OrderLine
from catalog.errors import InvalidInput, Refused
from catalog.issuance import issue_batch_async
from catalog.pricing import MemberState, quote
from catalog.print_jobs import queue_slip
from catalog.redemption import lookup, parse_code, redeem, redemption_slip, refund
from catalog.templates import CouponTemplate, save_template_async, stock_left_async
from catalog.wallet import read_wallet
from infra.http_api import Route, principal, query_of, respond


def order_lines(lines: list[Any]) -> tuple[OrderLine, ...]:
    """Decoded lines as pricing's value objects; the order total is bounded like any amount."""
    out = tuple(OrderLine(x.sku, x.category, x.quantity, x.unit_price_fen) for x in lines)
    if sum(x.quantity * x.unit_price_fen for x in out) > MAX_FEN:
        raise InvalidInput("lines", f"the order total exceeds {MAX_FEN} fen")
    return out


async def create_template(request: web.Request, body: TemplateIn) -> web.Response:
    who = principal(request)
    template = CouponTemplate.from_json(msgspec.to_builtins(body), merchant_id=who.merchant_id)
    saved = await save_template_async(catalog_of(request).client, template)
    return respond(saved.to_json(), status=201)


async def get_template(request: web.Request) -> web.Response:
    who = principal(request)
    cat = catalog_of(request)
    template = await cat.template(who.merchant_id, request.match_info["template_id"])
    stock, budget = await stock_left_async(cat.client, who.merchant_id, template.template_id)
    return respond({**template.to_json(), "stock_left": stock, "budget_left_fen": budget})


async def list_templates(request: web.Request) -> web.Response:
    who = principal(request)
    found = await catalog_of(request).templates(who.merchant_id, fresh=True)
    return respond({"templates": [t.to_json() for t in sorted(found.values(),
                                                               key=lambda t: t.number)]})


async def issue_coupons(request: web.Request, body: IssueIn) -> web.Response:
    """Issue one template to one or more members; exactly once per (campaign, member).

    A template with no stock left (or past its budget) for every member asked is refused with
    409 ``out_of_stock``; a batch that issues to some members answers each member's status."""
    who = principal(request)
    if body.member_id is not None and body.member_ids is not None:
        raise InvalidInput("member_ids", "send member_id or member_ids, not both")
    members = body.member_ids if body.member_ids is not None else (
        [body.member_id] if body.member_id is not None else None)
    if not members:
        raise InvalidInput("member_ids", "required (or member_id)")
    key = request.headers.get("Idempotency-Key", "")
    if len(key) > 128:
        raise InvalidInput("Idempotency-Key", "at most 128 characters")
    if body.campaign_id is None and not key:
        raise InvalidInput("campaign_id", "required (or send an Idempotency-Key)")
    campaign = body.campaign_id or f"api:{key[:56]}"
    cat = catalog_of(request)
    await cat.template(who.merchant_id, body.template_id)
    issued = await issue_batch_async(
        cat.client, merchant_id=who.merchant_id, campaign_id=campaign,
        template_id=body.template_id, member_ids=members, now=cat.now(), secret=cat.secret,
        tz=cat.tz)
    if all(c.status == "out_of_stock" for c in issued):
        raise Refused("out_of_stock", f"template {body.template_id} has no stock or budget left")
    return respond({"campaign_id": campaign, "coupons": [
        {"member_id": c.member_id, "code": display(c.code) if c.code else "",
         "status": c.status} for c in issued]}, status=201)


async def wallet(request: web.Request) -> web.Response:
    who = principal(request)
    member_id = request.match_info["member_id"]
    who.require_member(member_id)
    cat = catalog_of(request)
    coupons, _ = await read_wallet(cat, who.merchant_id, member_id)
    everything = query_of(request, WalletQuery).all in ("1", "true")
    today = cat.today()
    shown = [c for c in coupons if everything or (c.state in ("active", "transferring")
                                                 and c.last_day >= today)]
    return respond({"member_id": member_id, "coupons": [c.to_json() for c in shown]})


async def get_coupon(request: web.Request) -> web.Response:
    who = principal(request)
    return respond(await lookup(catalog_of(request), merchant_id=who.merchant_id,
                                code=request.match_info["code"]))


async def coupon_qr(request: web.Request) -> web.Response:
    """The coupon's QR code (SVG) for screens and printed vouchers; the code itself is printed
    beside it for typing."""
    import io

    import qrcode
    import qrcode.image.svg

    who = principal(request)
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


async def checkout_quote(request: web.Request, body: QuoteIn) -> web.Response:
    who = principal(request)
    who.require_member(body.member_id)
    who.require_store(body.store_id)
    lines = order_lines(body.lines)
    cat = catalog_of(request)
    rules = await load_merchant_rules(cat, who.merchant_id)
    coupons, raw = await read_wallet(cat, who.merchant_id, body.member_id, with_account=True)
    member = _member_state(raw or [None, None, None])
    now = cat.now()
    result = quote(rules=rules, member=member, lines=lines, wallet=coupons,
                   store_id=body.store_id, channel=body.channel, order_id=body.order_id or "",
                   now=now, day=cat.today(now), use_points=body.use_points,
                   pay_with_balance=body.pay_with_balance, secret=cat.secret)
    return respond({"member_id": body.member_id, "store_id": body.store_id, **result.to_json()})


async def create_redemption(request: web.Request, body: RedemptionIn) -> web.Response:
    who = principal(request)
    who.require_store(body.store_id)
    lines = order_lines(body.lines) if body.lines is not None else ()
    key = request.headers.get("Idempotency-Key", "")
    if len(key) > 128:
        raise InvalidInput("Idempotency-Key", "at most 128 characters")
    result = await redeem(catalog_of(request), merchant_id=who.merchant_id, code=body.code,
                          order_id=body.order_id, store_id=body.store_id,
                          amount_fen=body.amount_fen, lines=lines, channel=body.channel,
                          idempotency_key=key, member_id=body.member_id or "")
    # a replay queues it again: the slip is queued once per redemption, whatever crashed
    await queue_slip(catalog_of(request), merchant_id=who.merchant_id, redemption=result,
                     cashier=body.cashier or "")
    return respond(result.to_json(), status=200 if result.replayed else 201)


async def get_redemption(request: web.Request) -> web.Response:
    """A redemption slip (printer agents print it; cashiers look it up)."""
    who = principal(request)
    slip = await redemption_slip(catalog_of(request), merchant_id=who.merchant_id,
                                 redemption=request.match_info["redemption_id"])
    who.require_store(slip["store_id"])
    return respond(slip)


async def refund_redemption(request: web.Request) -> web.Response:
    who = principal(request)
    store = who.store_id if who.role == "cashier" else ""
    result = await refund(catalog_of(request), merchant_id=who.merchant_id,
                          redemption=request.match_info["redemption_id"], store_id=store)
    return respond(result)


_CODE = {"code": Code}
_IDEM = {"Idempotency-Key": Annotated[str, Meta(max_length=128)]}
_RD = {"redemption_id": Annotated[str, Meta(pattern="^t[0-9]{1,7}-[0-9]{1,12}$")]}
ROUTES = [
    Route("POST", "/v1/templates", create_template,
          "Create a coupon template (满减, 折扣, 代金, 兑换, 次卡, 时长卡, 礼品卡)",
          ("operator",), TemplateIn, {201: TemplateOut}, tags=("coupons",)),
    Route("GET", "/v1/templates", list_templates, "List the merchant's templates",
          ("operator", "cashier"), responses={200: TemplateList}, tags=("coupons",)),
    Route("GET", "/v1/templates/{template_id}", get_template,
          "A template with stock and budget left", ("operator", "cashier"),
          responses={200: TemplateOut}, path_params={"template_id": TemplateId},
          tags=("coupons",)),
    Route("POST", "/v1/coupons", issue_coupons,
          "Issue a template to members, once per (campaign, member)", ("operator",), IssueIn,
          {201: IssueOut}, headers=_IDEM, tags=("coupons",)),
    Route("GET", "/v1/coupons/{code}", get_coupon, "Look up a coupon by code or QR payload",
          ("operator", "cashier"), responses={200: CouponOut}, path_params=_CODE,
          tags=("coupons",)),
    Route("GET", "/v1/coupons/{code}/qr.svg", coupon_qr,
          "The coupon's QR code as SVG (header X-Coupon-Code: the code)",
          ("operator", "cashier", "printer", "member"), responses={200: None},
          path_params=_CODE, content_type="image/svg+xml", tags=("coupons",)),
    Route("GET", "/v1/members/{member_id}/wallet", wallet,
          "A member's coupons and cards (?all=1: used and expired too)",
          ("operator", "cashier", "member"), responses={200: WalletOut},
          path_params={"member_id": Id}, query=WalletQuery, tags=("coupons",)),
    Route("POST", "/v1/checkout/quote", checkout_quote,
          "到手价: the best legal coupon combination and each step",
          ("operator", "cashier", "member"), QuoteIn, {200: QuoteOut}, tags=("coupons",)),
    Route("POST", "/v1/redemptions", create_redemption,
          "核销 one coupon use exactly once (send Idempotency-Key; a replay answers 200)",
          ("operator", "cashier"), RedemptionIn, {201: RedemptionOut, 200: RedemptionOut},
          headers=_IDEM, tags=("coupons",)),
    Route("GET", "/v1/redemptions/{redemption_id}", get_redemption, "A redemption slip",
          ("operator", "cashier", "printer"), responses={200: SlipOut}, path_params=_RD,
          tags=("coupons",)),
    Route("POST", "/v1/redemptions/{redemption_id}/refund", refund_redemption,
          "返还 the use of a cancelled order", ("operator", "cashier"),
          responses={200: RefundOut}, path_params=_RD, tags=("coupons",)),
]
