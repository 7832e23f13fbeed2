"""核销: redeem a coupon use exactly once, refund it when the order is cancelled.

A code is verified by its signature before anything is read, so a forged or mistyped code costs no
Redis call. The redemption itself is one Lua script on the coupon's slot: concurrent requests for
one code serialize there, so exactly one wins and the others get a clear refusal. With an
``Idempotency-Key`` the first answer (success or refusal) is stored beside the coupon and a retry
gets it back unchanged.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from analytics.events import Event
from catalog.codes import CodeRef, display, make_code, verify_code
from catalog.context import Catalog
from catalog.discounts import OrderLine, coupon_discount
from catalog.errors import InvalidInput, NotFound, Refused
from catalog.store import parse_days, parse_record
from catalog.templates import CouponTemplate, day_number, tag
from catalog.wallet import coupon_from_record

MESSAGES = {
    "not_found": "no coupon was issued under this code",
    "not_holder": "the coupon belongs to another member",
    "already_redeemed": "the coupon has already been used",
    "void": "the coupon was voided",
    "inactive": "the gift card has not been activated; activate it at the sale",
    "transfer_pending": "the gift card is being transferred; cancel the transfer first",
    "transferred": "the gift card was transferred to another member",
    "not_yet_valid": "the coupon is not valid yet",
    "expired": "the coupon has expired",
    "used_up": "the card has no uses left",
    "daily_limit": "the card's uses for today are used up",
    "insufficient_balance": "the gift card has no balance left",
    "wrong_store": "the coupon cannot be used at this store",
    "wrong_channel": "the coupon cannot be used on this channel",
    "mismatch": "the Idempotency-Key was used for a different request",
}


@dataclass(frozen=True)
class Redemption:
    redemption_id: str
    code: str
    template_id: str
    member_id: str
    store_id: str
    order_id: str
    amount_fen: int
    discount_fen: int
    spent_fen: int  # gift cards: the part of the order paid from the card
    card_state: str
    replayed: bool

    def to_json(self) -> dict[str, Any]:
        return {
            "redemption_id": self.redemption_id, "code": display(self.code),
            "template_id": self.template_id, "member_id": self.member_id,
            "store_id": self.store_id, "order_id": self.order_id,
            "amount_fen": self.amount_fen, "discount_fen": self.discount_fen,
            "spent_fen": self.spent_fen, "card_state": self.card_state,
            "replayed": self.replayed,
        }


def parse_code(catalog: Catalog, merchant_id: str, text: object) -> CodeRef:
    if not isinstance(text, str) or not text.strip():
        raise InvalidInput("code", "expected a coupon code or QR payload")
    ref = verify_code(text, secret=catalog.secret, merchant_id=merchant_id)
    if ref is None:
        raise InvalidInput("code", "not a valid coupon code (mistyped or forged)")
    return ref


def redemption_id(template_number: int, n: int) -> str:
    return f"t{template_number}-{n}"


def parse_redemption_id(text: str) -> tuple[int, int]:
    head, _, tail = text.partition("-")
    if not (head.startswith("t") and head[1:].isdigit() and tail.isdigit()):
        raise InvalidInput("redemption_id", "expected an id such as t12-345")
    return int(head[1:]), int(tail)


def _fingerprint(*parts: object) -> str:
    return hashlib.sha256("\x1f".join(map(str, parts)).encode()).hexdigest()[:32]


async def redeem(
    catalog: Catalog, *, merchant_id: str, code: str, order_id: str, store_id: str,
    amount_fen: int, lines: tuple[OrderLine, ...] = (), channel: str = "offline",
    idempotency_key: str = "", member_id: str = "",
) -> Redemption:
    """Redeem one use of ``code`` for an order; ``Refused`` with a reason word when the rules
    say no. The discount is what the coupon is worth on this order (its threshold and scope)."""
    ref = parse_code(catalog, merchant_id, code)
    template = await catalog.template(merchant_id, ref.template_id)
    if not lines:
        lines = (OrderLine(sku="*", category="", quantity=1, unit_price_fen=amount_fen),)
    elif sum(line.total_fen for line in lines) != amount_fen:
        raise InvalidInput("amount_fen", "must equal the sum of the order lines")
    if template.stores and store_id not in template.stores:
        raise Refused("wrong_store", MESSAGES["wrong_store"])
    if channel not in template.channels:
        raise Refused("wrong_channel", MESSAGES["wrong_channel"])
    discount, reason = _discount(template, lines, amount_fen)
    if reason is not None:
        raise Refused(reason.split(":")[0], f"the coupon does not apply to this order: {reason}")
    now = catalog.now()
    today = catalog.today(now)
    prefix = tag(merchant_id, ref.template_number)
    fingerprint = _fingerprint(ref.serial, order_id, store_id, amount_fen, member_id)
    code = _canonical(catalog, ref, merchant_id)
    # the event goes into the stream inside the script where the stream shares its node
    keys = [prefix + "meta", *([catalog.stream] if catalog.durable_events else [])]
    reply = await catalog.scripts("redeem", keys, [
        prefix, ref.serial, today, idempotency_key, fingerprint, store_id, order_id, amount_fen,
        discount, amount_fen, template.valid_days,
        day_number(template.valid_from) if template.valid_from else -1,
        day_number(template.valid_until) if template.valid_until else -1,
        template.daily_limit, member_id,
        f"redeemed:{merchant_id}:t{ref.template_number}-", merchant_id,
        code, template.kind, int(now.timestamp() * 1000),
    ])
    source = reply[0].decode() if isinstance(reply[0], bytes) else str(reply[0])
    answer = (reply[1].decode() if isinstance(reply[1], bytes) else str(reply[1])).split("\t")
    if answer[0] != "ok":
        word = source if source == "mismatch" else answer[0]
        if word == "mismatch":
            raise InvalidInput("Idempotency-Key", MESSAGES["mismatch"])
        if word == "not_found":
            raise NotFound(MESSAGES["not_found"])
        raise Refused(word, MESSAGES.get(word, word))
    n, member, spent, card = int(answer[1]), answer[2], int(answer[3]), answer[4]
    if template.kind == "gift_card":
        discount = 0
    result = Redemption(
        redemption_id=redemption_id(ref.template_number, n),
        code=code, template_id=template.template_id,
        member_id=member, store_id=store_id, order_id=order_id, amount_fen=amount_fen,
        discount_fen=discount, spent_fen=spent, card_state=card, replayed=source == "replay")
    if source == "fresh" and not catalog.durable_events:
        # a gift card pays with value sold earlier: recorded as spent, not as a discount
        catalog.emit([Event(
            event_id=f"redeemed:{merchant_id}:{result.redemption_id}", event_type="redeemed",
            merchant_id=merchant_id, campaign_id=answer[5],
            member_id=member, coupon_code=result.code, store_id=store_id, order_id=order_id,
            amount_fen=amount_fen, discount_fen=discount, cost_fen=discount,
            reason=f"gift_card_spent:{spent}" if spent else template.kind,
        )])
    return result


def _canonical(catalog: Catalog, ref: CodeRef, merchant_id: str) -> str:
    return make_code(secret=catalog.secret, merchant_id=merchant_id,
                     template_number=ref.template_number, serial=ref.serial)


def _discount(
    template: CouponTemplate, lines: tuple[OrderLine, ...], amount_fen: int
) -> tuple[int, str | None]:
    if template.kind == "gift_card":
        return 0, None
    if template.kind in ("count_card", "duration_card") and not template.item_sku:
        return 0, None  # a prepaid use: nothing off the order
    off, _, reason = coupon_discount(template, lines, [line.total_fen for line in lines])
    return off, reason


async def refund(
    catalog: Catalog, *, merchant_id: str, redemption: str, store_id: str = ""
) -> dict[str, Any]:
    """返还: give the use back. A second refund of the same redemption changes nothing and says
    so. ``store_id`` (a cashier's store) must be the store that redeemed."""
    number, n = parse_redemption_id(redemption)
    prefix = tag(merchant_id, number)
    reply = await catalog.scripts("refund", [prefix + "meta"], [prefix, n, store_id])
    words = [r.decode() if isinstance(r, bytes) else str(r) for r in reply]
    if words[0] == "not_found":
        raise NotFound(f"redemption {redemption} does not exist")
    if words[0] == "wrong_store":
        raise Refused("wrong_store", "the redemption was made at another store")
    if words[0] == "transferred":
        raise Refused("transferred", "the gift card was transferred since; refund to the order")
    member, serial, amount, discount, spent = words[1], int(words[2]), *map(int, words[3:6])
    if words[0] == "ok":
        catalog.emit([Event(
            event_id=f"refunded:{merchant_id}:{redemption}", event_type="refunded",
            merchant_id=merchant_id, campaign_id=words[6], member_id=member, store_id=words[7],
            amount_fen=amount, discount_fen=discount, cost_fen=discount,
            reason=f"gift_card_spent:{spent}" if spent else "",
            coupon_code=_canonical(catalog, CodeRef(number, serial), merchant_id),
        )])
    return {"redemption_id": redemption, "status": "refunded",
            "already_refunded": words[0] == "already_refunded", "member_id": member,
            "amount_fen": amount, "discount_fen": discount, "spent_fen": spent}


async def lookup(catalog: Catalog, *, merchant_id: str, code: str) -> dict[str, Any]:
    """One coupon by code (what a cashier sees after scanning)."""
    ref = parse_code(catalog, merchant_id, code)
    template = await catalog.template(merchant_id, ref.template_id)
    prefix = tag(merchant_id, ref.template_number)
    raw, days = await _record(catalog, prefix, ref.serial)
    if raw is None:
        raise NotFound(MESSAGES["not_found"])
    coupon = coupon_from_record(template, ref.serial, raw, days, secret=catalog.secret)
    body = coupon.to_json()
    body["member_id"] = parse_record(ref.serial, raw, 0).member_id
    body["usable_today"] = coupon.usable_on(catalog.today())
    return body


async def _record(catalog: Catalog, prefix: str, serial: int) -> tuple[Any, list[tuple[int, int]]]:
    pipe = catalog.client.pipeline(transaction=False)
    pipe.hget(f"{prefix}r:{serial // 128}", str(serial % 128))
    pipe.get(prefix + "days")
    raw, days = await pipe.execute()
    return raw, parse_days(days)


async def redemption_slip(catalog: Catalog, *, merchant_id: str, redemption: str) -> dict[str, Any]:
    """What a printer agent prints on a redemption slip."""
    number, n = parse_redemption_id(redemption)
    raw: dict[bytes, bytes] = await catalog.client.hgetall(  # type: ignore[misc,assignment]
        f"{tag(merchant_id, number)}rd:{n}")
    if not raw:
        raise NotFound(f"redemption {redemption} does not exist")
    rd = {k.decode(): v.decode() for k, v in raw.items()}
    template = await catalog.template(merchant_id, f"t{number}")
    serial = int(rd["serial"])
    code = _canonical(catalog, CodeRef(number, serial), merchant_id)
    return {"redemption_id": redemption, "template_name": template.name, "kind": template.kind,
            "code": display(code), "member_id": rd["member"], "store_id": rd["store"],
            "order_id": rd["order"], "amount_fen": int(rd["amount"]),
            "discount_fen": int(rd["discount"]), "spent_fen": int(rd["spent"]),
            "state": rd["state"]}
