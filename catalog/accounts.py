"""Stored value (储值) and points: balances in fen with a ledger, recharge bonuses paid now and in
monthly installments, points earned by tier and spent in the points mall, tier upgrades.

Every change is one Lua call on the member's own hash tag and carries a reference (order id,
recharge id, claim) so a retried request changes nothing twice.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from analytics.events import Event
from catalog.codes import display
from catalog.context import Catalog
from catalog.errors import InvalidInput, Refused
from catalog.issuance import IssuedCoupon, issue_batch_async
from catalog.rules import MerchantRules
from catalog.templates import check_id

REFUSALS = {
    "insufficient_balance": "the stored-value balance is too low",
    "insufficient_points": "the member does not have enough points",
    "limit": "the member has reached this reward's limit",
    "over_limit": "the balance or points would pass 10^13, the most an account holds",
}


@dataclass(frozen=True)
class Account:
    member_id: str
    balance_fen: int
    points: int
    spend_fen: int
    recharged_fen: int
    experience: int
    tier: str
    is_member: bool

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def account_prefix(merchant_id: str, member_id: str) -> str:
    return f"qp:{{{merchant_id}:u:{member_id}}}:"


async def load_merchant_rules(catalog: Catalog, merchant_id: str) -> MerchantRules:
    return await catalog.rules(merchant_id)


async def change(
    catalog: Catalog, merchant_id: str, member_id: str, *, kind: str, ref: str = "",
    balance: int = 0, points: int = 0, spend: int = 0, recharge: int = 0, experience: int = 0,
    monthly: int = 0, months: int = 0, reward_rule: str = "", store_id: str = "",
    per_store_limit: int = 0, total_limit: int = 0,
) -> tuple[str, Account]:
    """Apply one account change; returns ('ok' | 'duplicate' | a refusal word, account after)."""
    check_id("member_id", member_id)
    prefix = account_prefix(merchant_id, member_id)
    now = catalog.now()
    reply = await catalog.scripts(
        "account", [prefix + "acct", prefix + "ledger"],
        [prefix, ref, catalog.today(now), int(now.timestamp() * 1000), kind, balance, points,
         spend, recharge, experience, monthly, months, reward_rule, store_id, per_store_limit,
         total_limit],
    )
    word = reply[0].decode() if isinstance(reply[0], bytes) else str(reply[0])
    values = [v.decode() if isinstance(v, bytes) else v for v in reply[1:]]
    account = Account(member_id=member_id, balance_fen=int(values[0]), points=int(values[1]),
                      spend_fen=int(values[2]), recharged_fen=int(values[3]),
                      experience=int(values[4]), tier=str(values[5]), is_member=bool(values[6]))
    return word, account


async def read_account(catalog: Catalog, merchant_id: str, member_id: str) -> Account:
    return (await change(catalog, merchant_id, member_id, kind="read"))[1]


async def upgrade_tier(
    catalog: Catalog, rules: MerchantRules, merchant_id: str, account: Account
) -> Account:
    """Move the member up when spend, recharge or points reach a higher tier."""
    tier = rules.tier_for(spend_fen=account.spend_fen, recharge_fen=account.recharged_fen,
                          points=account.points, current=account.tier)
    if tier == account.tier:
        return account
    await catalog.client.hset(account_prefix(merchant_id, account.member_id) + "acct",
                              "tier", tier)  # type: ignore[misc]
    return Account(**{**asdict(account), "tier": tier})


def _requests_key(merchant_id: str) -> str:
    return f"qp:{{{merchant_id}}}:requests"


async def remember_request(
    catalog: Catalog, merchant_id: str, *, ref: str, fingerprint: str, field: str
) -> bool:
    """Record what request ``ref`` (an order, a recharge id) asked for; True when it was seen
    before with the same content (a replay), ``InvalidInput(field)`` when with other content:
    a replay must repeat the request, or it would answer for what it did not do."""
    key = _requests_key(merchant_id)
    if await catalog.client.hsetnx(key, ref, fingerprint):  # type: ignore[misc]
        return False
    seen = await catalog.client.hget(key, ref)  # type: ignore[misc]
    if seen is not None and (seen.decode() if isinstance(seen, bytes) else seen) != fingerprint:
        raise InvalidInput(field, "already used for a request with another amount, member or "
                                  "payment method; a retry must repeat the same request")
    return True


async def forget_request(catalog: Catalog, merchant_id: str, *, ref: str) -> None:
    """Drop a request refused by the rules, so a corrected one may use the same reference."""
    await catalog.client.hdel(_requests_key(merchant_id), ref)  # type: ignore[misc]


def _refuse(word: str) -> None:
    if word in REFUSALS:
        raise Refused(word, REFUSALS[word])


def positive(name: str, value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise InvalidInput(name, "expected a positive integer")
    return value


async def recharge(
    catalog: Catalog, merchant_id: str, member_id: str, *, amount_fen: int, ref: str,
    store_id: str,
) -> dict[str, Any]:
    """充值: credit the amount and the matching bonus (now + installments) and issue its coupons."""
    positive("amount_fen", amount_fen)
    await remember_request(catalog, merchant_id, ref=f"recharge:{member_id}|{ref}",
                           fingerprint=f"{amount_fen}|{store_id}", field="recharge_id")
    rules = await load_merchant_rules(catalog, merchant_id)
    rule = rules.recharge_rule(amount_fen)
    bonus = rule.bonus_now_fen if rule else 0
    word, account = await change(
        catalog, merchant_id, member_id, kind="recharge", ref=f"recharge:{ref}",
        balance=amount_fen + bonus, recharge=amount_fen,
        monthly=rule.monthly_fen if rule else 0, months=rule.months if rule else 0,
        store_id=store_id)
    if word in REFUSALS:
        await forget_request(catalog, merchant_id, ref=f"recharge:{member_id}|{ref}")
        _refuse(word)
    coupons: list[IssuedCoupon] = []
    if rule:
        # issued after the credit: a retry re-issues nothing (one campaign per recharge)
        for template_id in rule.template_ids:
            coupons += await issue_batch_async(
                catalog.client, merchant_id=merchant_id, campaign_id=f"recharge:{ref}",
                template_id=template_id, member_ids=[member_id], now=catalog.now(),
                secret=catalog.secret, tz=catalog.tz)
    account = await upgrade_tier(catalog, rules, merchant_id, account)
    return {"status": "duplicate" if word == "duplicate" else "ok", "bonus_now_fen": bonus,
            "installments": {"monthly_fen": rule.monthly_fen, "months": rule.months}
            if rule and rule.months else None,
            "coupons": [{"code": display(c.code) if c.code else "", "status": c.status}
                        for c in coupons],
            "account": account.to_json()}


async def buy_in_points_mall(
    catalog: Catalog, merchant_id: str, member_id: str, *, template_id: str, ref: str
) -> dict[str, Any]:
    """Spend points on a coupon (积分商城). Points are taken first; the coupon issue is
    idempotent per reference, so a retry after a crash completes the purchase."""
    rules = await load_merchant_rules(catalog, merchant_id)
    price = rules.points_mall.get(template_id)
    if price is None:
        raise InvalidInput("template_id", "this coupon is not sold in the points mall")
    word, account = await change(catalog, merchant_id, member_id, kind="spend_points",
                                 ref=f"mall:{ref}", points=-price)
    _refuse(word)
    issued = await issue_batch_async(
        catalog.client, merchant_id=merchant_id, campaign_id=f"mall:{ref}",
        template_id=template_id, member_ids=[member_id], now=catalog.now(),
        secret=catalog.secret, tz=catalog.tz)
    code = display(issued[0].code) if issued[0].code else ""
    return {"points_spent": price, "code": code, "status": issued[0].status,
            "account": account.to_json()}


async def grant_points(
    catalog: Catalog, merchant_id: str, member_id: str, *, points: int, ref: str,
    store_id: str = "", order_id: str = "", amount_fen: int = 0, spend_fen: int = 0,
    paid_channel: str = "",
) -> tuple[str, Account]:
    """Add points (and the spend that earned them) once per reference; emits points_granted,
    also for an order that earned no points: the event is how a member's paid order (with
    ``paid_channel`` in its ``channel``) reaches the analysts' ``orders`` table."""
    word, account = await change(catalog, merchant_id, member_id, kind="earn", ref=ref,
                                 points=points, spend=spend_fen, store_id=store_id)
    if word == "ok" and (points or order_id):
        catalog.emit([Event(event_id=f"points_granted:{ref}", event_type="points_granted",
                            merchant_id=merchant_id, member_id=member_id, store_id=store_id,
                            order_id=order_id, amount_fen=amount_fen, reason=str(points),
                            channel=paid_channel)])
    return word, account


async def ledger(
    catalog: Catalog, merchant_id: str, member_id: str, *, limit: int = 50
) -> list[dict[str, Any]]:
    """The newest ledger entries: time (ms), kind, balance change, points change, reference."""
    check_id("member_id", member_id)
    raw = await catalog.client.lrange(  # type: ignore[misc]
        account_prefix(merchant_id, member_id) + "ledger", -limit, -1)
    out = []
    for item in raw:
        text = item.decode() if isinstance(item, bytes) else item
        ts, kind, balance, points, ref = text.split("|", 4)
        out.append({"ts_ms": int(ts), "kind": kind, "balance_fen": int(balance),
                    "points": int(points), "ref": ref})
    return out
