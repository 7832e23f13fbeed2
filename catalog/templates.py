"""Coupon templates: what a coupon is worth, where and when it may be used, and how many exist.

A template is a frozen value object. ``save_template`` gives it a per-merchant number and writes
two things: the definition (JSON, read by pricing and the API) and, in the template's own Redis
Cluster slot, the counters the issuance and redemption scripts need (stock, budget, per-member
limit, the card parameters), so that those scripts touch one slot only.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field, replace
from datetime import date, datetime, timedelta
from typing import Any, Literal, get_args

import redis

from catalog.errors import InvalidInput, NotFound

Kind = Literal[
    "threshold",  # 满减: spend >= threshold_fen, minus discount_fen
    "discount",  # 折扣: pay rate_permille of the price, at most cap_fen off
    "cash",  # 代金/无门槛: discount_fen off (threshold_fen may be 0)
    "exchange",  # 兑换: one unit of item_sku free
    "count_card",  # 次卡: uses redemptions
    "duration_card",  # 时长卡: valid duration_days, at most daily_limit uses a day
    "gift_card",  # 礼品卡: face_value_fen spent in parts, transferable once
]
KINDS: tuple[str, ...] = get_args(Kind)
CHANNELS = ("online", "offline")
EPOCH = date(2020, 1, 1)  # day numbers in the compact store count from here
_ID = re.compile(r"^[A-Za-z0-9_-]{1,32}$")


def day_number(moment: datetime | date) -> int:
    """Days since ``EPOCH`` of a local date (``moment`` already in the merchant's timezone)."""
    day = moment.date() if isinstance(moment, datetime) else moment
    return (day - EPOCH).days


def day_of(number: int) -> date:
    return EPOCH + timedelta(days=number)


def check_id(name: str, value: str) -> str:
    """Ids go into Redis key hash tags: a closed alphabet keeps ``{`` and ``}`` out."""
    if not isinstance(value, str) or not _ID.match(value):
        raise InvalidInput(name, "expected 1-32 letters, digits, '_' or '-'")
    return value


@dataclass(frozen=True)
class CouponTemplate:
    """One kind of coupon a merchant issues. Money in fen, rates in permille."""

    merchant_id: str
    kind: Kind
    name: str
    total_stock: int
    threshold_fen: int = 0
    discount_fen: int = 0
    rate_permille: int = 1000
    cap_fen: int = 0  # 0: no cap
    item_sku: str = ""
    uses: int = 0
    duration_days: int = 0
    duration_from: Literal["purchase", "first_use"] = "purchase"
    daily_limit: int = 0  # 0: no daily limit
    face_value_fen: int = 0
    activation_required: bool = False  # gift cards sold inactive (未激活) until the sale
    valid_days: int = 0  # N days from issue (the issue day counts as day 1)
    valid_from: date | None = None
    valid_until: date | None = None  # inclusive, merchant-local
    stores: tuple[str, ...] = ()  # empty: every store
    categories: tuple[str, ...] = ()
    skus: tuple[str, ...] = ()
    channels: tuple[str, ...] = CHANNELS
    stacking_group: str = ""  # at most one coupon per non-empty group; "" stacks freely
    exclusive: bool = False
    per_member_limit: int = 1
    budget_fen: int | None = None  # None: no budget
    template_id: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise ``InvalidInput`` naming the first bad field."""
        check_id("merchant_id", self.merchant_id)
        if self.kind not in KINDS:
            raise InvalidInput("kind", f"expected one of {', '.join(KINDS)}")
        if not self.name.strip():
            raise InvalidInput("name", "must not be empty")
        _positive_int("total_stock", self.total_stock)
        for name in ("threshold_fen", "discount_fen", "cap_fen", "uses", "duration_days",
                     "daily_limit", "face_value_fen", "valid_days"):
            _nonnegative_int(name, getattr(self, name))
        _positive_int("per_member_limit", self.per_member_limit)
        if self.budget_fen is not None:
            _nonnegative_int("budget_fen", self.budget_fen)
        kind = self.kind
        if kind == "threshold" and not 0 < self.discount_fen <= self.threshold_fen:
            raise InvalidInput("discount_fen", "expected 0 < discount_fen <= threshold_fen")
        if kind == "cash" and self.discount_fen <= 0:
            raise InvalidInput("discount_fen", "a cash voucher needs a positive face value")
        if kind == "discount":
            if not 0 < self.rate_permille < 1000:
                raise InvalidInput("rate_permille", "expected 1..999 (850 means pay 85%)")
            if self.budget_fen is not None and self.cap_fen == 0:
                raise InvalidInput("cap_fen", "a budgeted discount coupon needs a cap")
        if kind == "exchange" and not self.item_sku:
            raise InvalidInput("item_sku", "an exchange coupon names the free item")
        if kind == "count_card" and self.uses <= 0:
            raise InvalidInput("uses", "a count card needs at least one use")
        if kind == "duration_card" and self.duration_days <= 0:
            raise InvalidInput("duration_days", "a duration card needs a positive duration")
        if self.duration_from not in ("purchase", "first_use"):
            raise InvalidInput("duration_from", "expected 'purchase' or 'first_use'")
        if self.activation_required and kind != "gift_card":
            raise InvalidInput("activation_required", "only gift cards are activated on sale")
        if kind == "gift_card" and self.face_value_fen <= 0:
            raise InvalidInput("face_value_fen", "a gift card needs a positive face value")
        fixed = self.valid_from is not None or self.valid_until is not None
        if fixed and self.valid_days:
            raise InvalidInput("valid_days", "give fixed dates or a number of days, not both")
        if not fixed and not self.valid_days and kind != "duration_card":
            raise InvalidInput("valid_days", "give valid_days or valid_from/valid_until")
        if self.valid_from and self.valid_until and self.valid_from > self.valid_until:
            raise InvalidInput("valid_until", "must not be before valid_from")
        for name in ("stores", "categories", "skus", "channels"):
            values = getattr(self, name)
            if not isinstance(values, tuple) or not all(isinstance(v, str) for v in values):
                raise InvalidInput(name, "expected a list of strings")
        if not self.channels or any(c not in CHANNELS for c in self.channels):
            raise InvalidInput("channels", "expected a non-empty subset of online, offline")

    @property
    def cost_fen(self) -> int:
        """What one issued coupon can cost the merchant at most: counted against the budget."""
        return {
            "threshold": self.discount_fen,
            "cash": self.discount_fen,
            "discount": self.cap_fen,
            "gift_card": self.face_value_fen,
        }.get(self.kind, 0)

    @property
    def number(self) -> int:
        """The per-merchant template number that codes carry."""
        return int(self.template_id[1:])

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        for name in ("valid_from", "valid_until"):
            data[name] = data[name].isoformat() if data[name] else None
        for name in ("stores", "categories", "skus", "channels"):
            data[name] = list(data[name])
        return data

    @classmethod
    def from_json(cls, data: Any, *, merchant_id: str | None = None) -> CouponTemplate:
        """Build from a JSON object (API input or stored form); ``InvalidInput`` on bad fields."""
        if not isinstance(data, dict):
            raise InvalidInput("body", "expected a JSON object")
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(data) - known)
        if unknown:
            raise InvalidInput(unknown[0], "unknown field")
        values = dict(data)
        if merchant_id is not None:
            values["merchant_id"] = merchant_id
        for name in ("merchant_id", "kind", "name", "total_stock"):
            if name not in values:
                raise InvalidInput(name, "required")
        for name in ("valid_from", "valid_until"):
            if values.get(name) is not None:
                try:
                    values[name] = date.fromisoformat(values[name])
                except (TypeError, ValueError):
                    raise InvalidInput(name, "expected a date YYYY-MM-DD") from None
        for name in ("stores", "categories", "skus", "channels"):
            if name in values:
                if not isinstance(values[name], list):
                    raise InvalidInput(name, "expected a list of strings")
                values[name] = tuple(values[name])
        for name in ("name", "item_sku", "stacking_group", "template_id"):
            if name in values and not isinstance(values[name], str):
                raise InvalidInput(name, "expected a string")
        for name in ("exclusive", "activation_required"):
            if name in values and not isinstance(values[name], bool):
                raise InvalidInput(name, "expected true or false")
        return cls(**values)

    def expiry_day(self, issue_day: int) -> int:
        """Last valid day number of a coupon issued on ``issue_day`` (large if open-ended)."""
        if self.valid_days:
            return issue_day + self.valid_days - 1
        if self.valid_until is not None:
            return day_number(self.valid_until)
        return 1 << 30

    def first_day(self, issue_day: int) -> int:
        return day_number(self.valid_from) if self.valid_from else issue_day


def _positive_int(name: str, value: object) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise InvalidInput(name, "expected a positive integer")


def _nonnegative_int(name: str, value: object) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise InvalidInput(name, "expected a non-negative integer")


def tag(merchant_id: str, number: int) -> str:
    """Key prefix of one template: the ``{...}`` hash tag puts all its keys in one cluster slot."""
    return f"qp:{{{merchant_id}:t{number}}}:"


def _defs_key(merchant_id: str) -> str:
    return f"qp:{{{merchant_id}}}:templates"


def member_buckets(template: CouponTemplate) -> int:
    """Member-index hashes of a template: about 90 members each keeps every hash a small
    listpack. Derived from the template alone, so readers compute the bucket themselves."""
    return max(1, -(-template.total_stock // 90))


def _writes(template: CouponTemplate, number: int) -> tuple[CouponTemplate, dict[str, Any]]:
    saved = replace(template, template_id=f"t{number}")
    meta = {
        "kind": template.kind,
        "stock": template.total_stock,
        "budget": -1 if template.budget_fen is None else template.budget_fen,
        "cost": template.cost_fen,
        "limit": template.per_member_limit,
        "mbuckets": member_buckets(template),
        "seq": 0,
        "ncamp": 0,
        "init": _initial_extra(template),
        "dur": template.duration_days,
        "durfrom": template.duration_from,
        "state": "i" if template.activation_required else "a",
    }
    return saved, meta


def save_template(client: redis.Redis, template: CouponTemplate) -> str:
    """Store a new template and its counters; returns its id (``t<number>``)."""
    template.validate()
    number = int(client.incr(f"qp:{{{template.merchant_id}}}:template_seq"))
    saved, meta = _writes(template, number)
    # The definition first: the counters make the template issuable, so they come last.
    client.hset(_defs_key(template.merchant_id), saved.template_id, json.dumps(saved.to_json()))
    client.hset(tag(template.merchant_id, number) + "meta", mapping=meta)  # type: ignore[arg-type]
    return saved.template_id


async def save_template_async(client: Any, template: CouponTemplate) -> CouponTemplate:
    """``save_template`` for an asyncio client; returns the template with its id."""
    template.validate()
    number = int(await client.incr(f"qp:{{{template.merchant_id}}}:template_seq"))
    saved, meta = _writes(template, number)
    await client.hset(_defs_key(template.merchant_id), saved.template_id,
                      json.dumps(saved.to_json()))
    await client.hset(tag(template.merchant_id, number) + "meta", mapping=meta)
    return saved


def _initial_extra(template: CouponTemplate) -> str:
    """The card state a new coupon record starts with (see catalog/issue.lua)."""
    if template.kind == "count_card":
        return f"{template.uses},0,0"  # uses left, last use day, uses that day
    if template.kind == "gift_card":
        return f"{template.face_value_fen},0"  # balance, transfers so far
    return ""


def parse_template_id(template_id: object) -> int:
    """The number in ``t<number>``; ``InvalidInput`` otherwise."""
    if not isinstance(template_id, str) or not re.fullmatch(r"t[1-9][0-9]{0,6}", template_id):
        raise InvalidInput("template_id", "expected a template id such as t12")
    return int(template_id[1:])


def load_template(client: redis.Redis, merchant_id: str, template_id: str) -> CouponTemplate:
    """The stored template, or ``NotFound``."""
    raw = client.hget(_defs_key(merchant_id), template_id)
    if raw is None:
        raise NotFound(f"template {template_id} does not exist for merchant {merchant_id}")
    return CouponTemplate.from_json(json.loads(raw))


def load_templates(client: redis.Redis, merchant_id: str) -> dict[str, CouponTemplate]:
    """Every template of a merchant by id (one round trip)."""
    raw: dict[bytes, bytes] = client.hgetall(_defs_key(merchant_id))  # type: ignore[assignment]
    return {k.decode(): CouponTemplate.from_json(json.loads(v)) for k, v in raw.items()}


def stock_left(client: redis.Redis, merchant_id: str, template_id: str) -> tuple[int, int | None]:
    """(stock left, budget left in fen or None when unbudgeted)."""
    number = parse_template_id(template_id)
    stock, budget = client.hmget(tag(merchant_id, number) + "meta", ["stock", "budget"])
    if stock is None:
        raise NotFound(f"template {template_id} does not exist for merchant {merchant_id}")
    left = int(budget or -1)
    return int(stock), None if left < 0 else left


async def stock_left_async(
    client: Any, merchant_id: str, template_id: str
) -> tuple[int, int | None]:
    """``stock_left`` for an asyncio client."""
    number = parse_template_id(template_id)
    stock, budget = await client.hmget(tag(merchant_id, number) + "meta", ["stock", "budget"])
    if stock is None:
        raise NotFound(f"template {template_id} does not exist for merchant {merchant_id}")
    left = int(budget or -1)
    return int(stock), None if left < 0 else left
