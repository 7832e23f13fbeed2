"""Gift card transfer (转赠): once per card, by a signed link the receiver accepts.

States: 已激活 (active) -> 转赠中 (transferring, the giver may cancel) -> 已转赠 (transferred; the
receiver holds a new card with the remaining balance, which cannot be transferred again).
"""

from __future__ import annotations

from typing import Any

from catalog.codes import display, make_code
from catalog.context import Catalog
from catalog.errors import NotFound, Refused
from catalog.redemption import parse_code
from catalog.signed import open_token, sign
from catalog.store import member_hash
from catalog.templates import check_id, tag

PURPOSE = "gt1"
TRANSFER_TTL = 3 * 86400
MESSAGES = {
    "not_holder": "the gift card belongs to another member",
    "not_a_gift_card": "only gift cards can be transferred",
    "not_inactive": "the gift card is already activated or used",
    "not_active": "the gift card is not active (used up, void or transferred)",
    "already_transferred_once": "a gift card can be transferred once only",
    "not_transferring": "the gift card is not being transferred",
    "already_transferred": "the transfer was accepted by another member",
    "same_member": "a member cannot accept their own transfer",
}


async def _gift(catalog: Catalog, merchant_id: str, number: int, op: str, serial: int,
                giver: str, receiver: str = "") -> int:
    prefix = tag(merchant_id, number)
    reply = await catalog.scripts("gift", [prefix + "meta", prefix + "xfer"], [
        prefix, op, serial, giver, receiver, member_hash(receiver) if receiver else 0,
        catalog.today()])
    word = reply[0].decode() if isinstance(reply[0], bytes) else str(reply[0])
    if word == "not_found":
        raise NotFound("no gift card was issued under this code")
    if word != "ok":
        raise Refused(word, MESSAGES.get(word, word))
    return int(reply[1])


async def activate(catalog: Catalog, *, merchant_id: str, code: str) -> dict[str, Any]:
    """未激活 -> 已激活 when the card is sold (idempotent)."""
    ref = parse_code(catalog, merchant_id, code)
    prefix = tag(merchant_id, ref.template_number)
    reply = await catalog.scripts("gift", [prefix + "meta", prefix + "xfer"], [
        prefix, "activate", ref.serial, "", "", 0, catalog.today()])
    word = reply[0].decode() if isinstance(reply[0], bytes) else str(reply[0])
    if word == "not_found":
        raise NotFound("no gift card was issued under this code")
    if word != "ok":
        raise Refused(word, MESSAGES.get(word, word))
    return {"state": "active"}


async def start_transfer(
    catalog: Catalog, *, merchant_id: str, code: str, member_id: str
) -> dict[str, Any]:
    """Mark the card 转赠中 and return the signed transfer token for the receiver."""
    check_id("member_id", member_id)
    ref = parse_code(catalog, merchant_id, code)
    await _gift(catalog, merchant_id, ref.template_number, "start", ref.serial, member_id)
    token = sign({"m": merchant_id, "t": ref.template_number, "s": ref.serial, "f": member_id},
                 secret=catalog.secret, purpose=PURPOSE, ttl_seconds=TRANSFER_TTL)
    return {"state": "transferring", "transfer_token": token}


async def cancel_transfer(
    catalog: Catalog, *, merchant_id: str, code: str, member_id: str
) -> dict[str, Any]:
    check_id("member_id", member_id)
    ref = parse_code(catalog, merchant_id, code)
    await _gift(catalog, merchant_id, ref.template_number, "cancel", ref.serial, member_id)
    return {"state": "active"}


async def accept_transfer(
    catalog: Catalog, *, merchant_id: str, token: str, member_id: str
) -> dict[str, Any]:
    """The receiver takes the card: a new code with the remaining balance."""
    check_id("member_id", member_id)
    payload = open_token(token, secret=catalog.secret, purpose=PURPOSE,
                         merchant_id=merchant_id, field="transfer_token", what="gift transfer",
                         expired="the transfer link has expired; ask for a new one")
    number = int(payload["t"])
    serial = await _gift(catalog, merchant_id, number, "accept", int(payload["s"]),
                         str(payload["f"]), member_id)
    code = make_code(secret=catalog.secret, merchant_id=merchant_id, template_number=number,
                     serial=serial)
    return {"state": "transferred", "code": display(code), "member_id": member_id}
