"""Points claim tokens for receipts, and what happens after a payment (支付后营销).

A store's printer agent asks for a claim token when it prints a receipt; the QR code on the
receipt carries it. The member scans it: the points are granted once (per store and order, not
per token, so two tokens for one order cannot both pay out), and a non-member becomes a member.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from catalog.accounts import (
    REFUSALS,
    change,
    forget_request,
    grant_points,
    load_merchant_rules,
    read_account,
    remember_request,
    upgrade_tier,
)
from catalog.codes import display
from catalog.context import Catalog
from catalog.errors import InvalidInput, Refused
from catalog.issuance import issue_batch_async
from catalog.signed import open_token, sign, unsign
from catalog.templates import check_id

PURPOSE = "pc1"
CLAIM_TTL = 7 * 86400


def _order(order_id: object) -> str:
    if not isinstance(order_id, str) or not 0 < len(order_id) <= 64 or "|" in order_id:
        raise InvalidInput("order_id", "expected 1-64 characters")
    return order_id


def mint_claim(
    catalog: Catalog, *, merchant_id: str, store_id: str, order_id: str, amount_fen: int,
    ttl_seconds: int = CLAIM_TTL,
) -> dict[str, Any]:
    """A one-time token for the points an order earns; the QR payload is the token itself."""
    check_id("store_id", store_id)
    _order(order_id)
    if not isinstance(amount_fen, int) or isinstance(amount_fen, bool) or amount_fen <= 0:
        raise InvalidInput("amount_fen", "expected a positive integer")
    token = sign({"m": merchant_id, "s": store_id, "o": order_id, "a": amount_fen},
                 secret=catalog.secret, purpose=PURPOSE, ttl_seconds=ttl_seconds)
    expires = datetime.fromtimestamp(unsign(token, secret=catalog.secret, purpose=PURPOSE)[0]
                                     ["e"], catalog.tz)  # type: ignore[index]
    return {"token": token, "qr_payload": token, "expires_at": expires.isoformat(),
            "store_id": store_id, "order_id": order_id, "amount_fen": amount_fen}


async def redeem_claim(
    catalog: Catalog, *, merchant_id: str, token: str, member_id: str
) -> dict[str, Any]:
    """Grant a claim's points to ``member_id`` once; opens the membership if needed."""
    check_id("member_id", member_id)
    payload = open_token(token, secret=catalog.secret, purpose=PURPOSE,
                         merchant_id=merchant_id, field="token", what="points claim",
                         expired="the points claim has expired")
    store_id, order_id, amount = payload["s"], payload["o"], int(payload["a"])
    key = f"qp:{{{merchant_id}}}:claims"
    field = f"{store_id}|{order_id}"
    # who claimed first wins; the same member retrying (after a crash) goes on to the grant
    await catalog.client.hsetnx(key, field, member_id)  # type: ignore[misc]
    holder = await catalog.client.hget(key, field)  # type: ignore[misc]
    if isinstance(holder, bytes):
        holder = holder.decode()
    if holder is not None and holder != member_id:
        raise Refused("already_claimed", "these points were already claimed")
    before = await read_account(catalog, merchant_id, member_id)
    rules = await load_merchant_rules(catalog, merchant_id)
    points = rules.earn_points(before.tier, amount)
    word, account = await grant_points(
        catalog, merchant_id, member_id, points=points, ref=f"claim:{field}",
        store_id=store_id, order_id=order_id, amount_fen=amount, spend_fen=amount)
    account = await upgrade_tier(catalog, rules, merchant_id, account)
    return {"points": points, "already_granted": word == "duplicate",
            "joined": not before.is_member, "account": account.to_json()}


async def after_payment(
    catalog: Catalog, *, merchant_id: str, store_id: str, order_id: str, amount_fen: int,
    member_id: str = "", from_balance: bool = False, points_used: int = 0,
    paid_channel: str = "",
) -> dict[str, Any]:
    """支付后营销: points by tier, then every matching rule's rewards within its limits.
    ``paid_channel`` (wechat_pay, alipay, cash, ...) goes with the order to the analysts.

    A payer who is not a member gets a join-to-claim offer: a claim token for this order.
    ``points_used`` (from the quote's points step) are taken from the member first, once per
    order; too few points refuse the whole payment before anything else changes. A replay of
    the same payment answers again with ``replayed`` true and changes nothing; the same order
    with another amount, member or method is refused (``InvalidInput('order_id')``).
    """
    check_id("store_id", store_id)
    _order(order_id)
    if not isinstance(amount_fen, int) or isinstance(amount_fen, bool) or amount_fen <= 0:
        raise InvalidInput("amount_fen", "expected a positive integer")
    ref = f"pay:{store_id}|{order_id}"
    replayed = await remember_request(
        catalog, merchant_id, ref=ref,
        fingerprint=f"{member_id}|{amount_fen}|{int(from_balance)}|{points_used}",
        field="order_id")
    try:
        result = await _apply_payment(
            catalog, merchant_id=merchant_id, store_id=store_id, order_id=order_id,
            amount_fen=amount_fen, member_id=member_id, from_balance=from_balance,
            points_used=points_used, paid_channel=paid_channel)
    except (Refused, InvalidInput):
        if not replayed:
            await forget_request(catalog, merchant_id, ref=ref)
        raise
    return {**result, "replayed": replayed}


async def _apply_payment(
    catalog: Catalog, *, merchant_id: str, store_id: str, order_id: str, amount_fen: int,
    member_id: str, from_balance: bool, points_used: int, paid_channel: str,
) -> dict[str, Any]:
    if not member_id or not (await read_account(catalog, merchant_id, member_id)).is_member:
        if from_balance:
            raise InvalidInput("from_balance", "only members pay from a stored-value balance")
        offer = mint_claim(catalog, merchant_id=merchant_id, store_id=store_id,
                           order_id=order_id, amount_fen=amount_fen)
        return {"member": False, "join_offer": offer, "rewards": []}
    if from_balance or points_used:
        # balance and points in one script: a refusal of either leaves both untouched
        word, _ = await change(catalog, merchant_id, member_id, kind="pay",
                               ref=f"pay:{store_id}|{order_id}", points=-points_used,
                               balance=-amount_fen if from_balance else 0, store_id=store_id)
        if word in REFUSALS:
            raise Refused(word, REFUSALS[word])
    rules = await load_merchant_rules(catalog, merchant_id)
    before = await read_account(catalog, merchant_id, member_id)
    earned = rules.earn_points(before.tier, amount_fen)
    _, account = await grant_points(
        catalog, merchant_id, member_id, points=earned, ref=f"earn:{store_id}|{order_id}",
        store_id=store_id, order_id=order_id, amount_fen=amount_fen, spend_fen=amount_fen,
        paid_channel=paid_channel)
    rewards: list[dict[str, Any]] = []
    for rule in rules.post_payment:
        if amount_fen < rule.min_amount_fen:
            continue
        if (rule.stores and store_id not in rule.stores) or (
                rule.tiers and before.tier not in rule.tiers):
            continue
        campaign = f"pp:{rule.rule_id}:{store_id}:{order_id}"[:64]
        word, account = await change(
            catalog, merchant_id, member_id, kind="reward", ref=campaign, points=rule.points,
            experience=rule.experience, reward_rule=rule.rule_id, store_id=store_id,
            per_store_limit=rule.per_store_limit, total_limit=rule.total_limit)
        if word == "limit":
            rewards.append({"rule_id": rule.rule_id, "status": "limit_reached"})
            continue
        codes = []
        for template_id in rule.template_ids:
            issued = await issue_batch_async(
                catalog.client, merchant_id=merchant_id, campaign_id=campaign,
                template_id=template_id, member_ids=[member_id], now=catalog.now(),
                secret=catalog.secret, tz=catalog.tz)
            codes += [{"template_id": template_id, "status": c.status,
                       "code": display(c.code) if c.code else ""}
                      for c in issued]
        rewards.append({"rule_id": rule.rule_id, "status": "duplicate" if word == "duplicate"
                        else "granted", "points": rule.points, "experience": rule.experience,
                        "coupons": codes})
    account = await upgrade_tier(catalog, rules, merchant_id, account)
    return {"member": True, "points_earned": earned, "rewards": rewards,
            "account": account.to_json()}
