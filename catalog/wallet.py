"""A member's wallet: every coupon and card they hold, read in one round trip.

On one Redis the wallet script reads all the merchant's templates in one call; on a cluster the
calls (one per template, each in its own slot) go out concurrently.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from catalog.codes import display, make_code
from catalog.context import Catalog
from catalog.store import STATES, issue_day_of, member_hash, parse_days, parse_record
from catalog.templates import CouponTemplate, check_id, day_of, member_buckets, tag


@dataclass(frozen=True)
class WalletCoupon:
    """One coupon or card as the member holds it."""

    code: str
    serial: int
    template: CouponTemplate
    state: str  # active, used, void, transferring, transferred
    first_day: int
    last_day: int
    uses_left: int | None = None  # count cards
    used_today: int = 0
    last_use_day: int = 0
    balance_fen: int | None = None  # gift cards
    transfers: int = 0

    def usable_on(self, day: int) -> bool:
        if self.state != "active" or not self.first_day <= day <= self.last_day:
            return False
        limit = self.template.daily_limit
        if limit and self.last_use_day == day and self.used_today >= limit:
            return False
        return not (self.uses_left is not None and self.uses_left <= 0)

    def to_json(self) -> dict[str, Any]:
        t = self.template
        return {
            "code": display(self.code),
            "template_id": t.template_id,
            "kind": t.kind,
            "name": t.name,
            "state": self.state,
            "valid_from": _iso(self.first_day),
            "valid_until": _iso(self.last_day),
            "uses_left": self.uses_left,
            "balance_fen": self.balance_fen,
            "transferable": t.kind == "gift_card" and self.transfers == 0,
            "stacking_group": t.stacking_group,
            "exclusive": t.exclusive,
        }


def _iso(day: int) -> str | None:
    return None if day >= 1 << 29 else day_of(day).isoformat()


def coupon_from_record(
    template: CouponTemplate, serial: int, raw: bytes | str, days: list[tuple[int, int]], *,
    secret: bytes,
) -> WalletCoupon:
    """Decode one stored record (see ``catalog.store``) into what a member or cashier sees."""
    issue_day = issue_day_of(serial, days)
    rec = parse_record(serial, raw, issue_day)
    first, last = template.first_day(issue_day), template.expiry_day(issue_day)
    extra: dict[str, Any] = {}
    if template.kind == "count_card":
        extra = {"uses_left": rec.extra[0], "last_use_day": rec.extra[1],
                 "used_today": rec.extra[2]}
    elif template.kind == "duration_card":
        expiry, last_use, used, _bought = rec.extra
        if expiry:  # 0 until the first use of a card valid "from first use"
            last = min(last, expiry)
        extra = {"last_use_day": last_use, "used_today": used}
    elif template.kind == "gift_card":
        extra = {"balance_fen": rec.extra[0], "transfers": rec.extra[1]}
    code = make_code(secret=secret, merchant_id=template.merchant_id,
                     template_number=template.number, serial=serial)
    return WalletCoupon(code=code, serial=serial, template=template,
                        state=STATES.get(rec.state, rec.state), first_day=first, last_day=last,
                        **extra)


# decoded coupons by (secret, merchant, template, that template's reply): a record changes with
# every state change, so an entry is never stale, and a POS reads the same wallets again and again
_Reply = tuple[Any, ...]
_decoded: dict[tuple[bytes, str, str, _Reply], tuple[CouponTemplate, list[WalletCoupon]]] = {}
_DECODED_MAX = 1 << 16
# each member's index keys and field, while the merchant's template set stays the same
_member_keys: dict[tuple[str, str], tuple[object, list[str], str]] = {}

_Plan = tuple[list[CouponTemplate], list[str], list[int]]
_plans: dict[str, tuple[dict[str, CouponTemplate], _Plan]] = {}


def _plan(
    merchant_id: str, templates: dict[str, CouponTemplate]
) -> tuple[list[CouponTemplate], list[str], list[int]]:
    """Templates in number order with their key prefixes and bucket counts, kept while the
    merchant's template set (the cached dict) stays the same object."""
    cached = _plans.get(merchant_id)
    if cached is not None and cached[0] is templates:
        return cached[1]
    ordered = sorted(templates.values(), key=lambda t: t.number)
    plan = (ordered, [tag(merchant_id, t.number) for t in ordered],
            [member_buckets(t) for t in ordered])
    _plans[merchant_id] = (templates, plan)
    return plan


async def read_wallet(
    catalog: Catalog, merchant_id: str, member_id: str, *, with_account: bool = False,
) -> tuple[list[WalletCoupon], list[Any] | None]:
    """Every coupon the member holds in any of the merchant's templates (used ones included),
    and with ``with_account`` the account's raw (tier, balance, points) in the same round trip."""
    check_id("member_id", member_id)
    templates = await catalog.templates(merchant_id)
    plan = _plan(merchant_id, templates)
    ordered, prefixes, buckets = plan
    known = _member_keys.get((merchant_id, member_id))
    if known is not None and known[0] is plan:
        mkeys, field = known[1], known[2]
    else:
        h = member_hash(member_id)
        field = str((h >> 32) % 8192)
        mkeys = [f"{p}m:{h % b}" for p, b in zip(prefixes, buckets, strict=True)]
        if len(_member_keys) >= _DECODED_MAX:
            _member_keys.clear()
        _member_keys[(merchant_id, member_id)] = (plan, mkeys, field)
    account_key = f"qp:{{{merchant_id}:u:{member_id}}}:acct"
    account: list[Any] | None = None
    if catalog.clustered:
        calls = [([k], [member_id, field, "0"]) for k in mkeys]
        replies = [r[0] for r in await catalog.scripts.calls("wallet", calls)]
        if with_account:
            account = await catalog.client.hmget(  # type: ignore[misc]
                account_key, ["tier", "balance", "points"])
    else:
        keys = [*mkeys, account_key] if with_account else mkeys
        replies = await catalog.scripts(
            "wallet", keys, [member_id, field, "1" if with_account else "0"])
        if with_account:
            account = replies.pop()
    out: list[WalletCoupon] = []
    secret = catalog.secret
    for template, reply in zip(ordered, replies, strict=True):
        if len(reply) < 2:
            continue
        key = (secret, merchant_id, template.template_id, tuple(reply))
        found = _decoded.get(key)
        if found is None or (found[0] is not template and found[0] != template):
            days = parse_days(reply[0])
            items = reply[1:]
            found = (template, [coupon_from_record(template, int(serial), raw, days,
                                                   secret=secret)
                                for serial, raw in zip(items[0::2], items[1::2], strict=True)])
            if len(_decoded) >= _DECODED_MAX:
                _decoded.clear()
            _decoded[key] = found
        out.extend(found[1])
    return out, account
