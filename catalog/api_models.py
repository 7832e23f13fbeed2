"""Request and response bodies of the catalog routes, as msgspec Structs with bounds.

Every integer is bounded: money at 10¹² fen (10 billion yuan, far beyond one order, and small
enough that sums stay exact in Redis's Lua numbers and in ClickHouse's Int64), quantities,
stock and days at what a merchant can mean. Requests refuse unknown fields. The OpenAPI
document is generated from these types (``infra.openapi``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta

from catalog.accounts import Account
from catalog.redemption import Redemption
from catalog.templates import CouponTemplate, Kind

MAX_FEN = 10**12
Fen = Annotated[int, Meta(ge=0, le=MAX_FEN, description="integer fen (分)")]
PositiveFen = Annotated[int, Meta(ge=1, le=MAX_FEN, description="integer fen (分), > 0")]
Points = Annotated[int, Meta(ge=0, le=MAX_FEN)]
Id = Annotated[str, Meta(pattern="^[A-Za-z0-9_-]{1,32}$", description="1-32 of A-Z a-z 0-9 _ -")]
OrderId = Annotated[str, Meta(pattern="^[^|]{1,64}$", description="1-64 characters, no '|'")]
Text = Annotated[str, Meta(min_length=1, max_length=64)]
Code = Annotated[str, Meta(min_length=1, max_length=128, description="coupon code or QR payload")]
TemplateId = Annotated[str, Meta(pattern="^t[1-9][0-9]{0,6}$")]
Days = Annotated[int, Meta(ge=0, le=36_500)]
Channel = Literal["online", "offline"]
# how an order was paid, as the POS knows it; kept on the analysts' orders rows
PaidChannel = Literal["wechat_pay", "alipay", "unionpay", "bank_card", "cash", "stored_value",
                      "other"]
Names = Annotated[list[Annotated[str, Meta(min_length=1, max_length=64)]],
                  Meta(max_length=1000)]
MAX_MEMBERS = 1000


class _Request(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Requests refuse fields they do not know (a typo must not be silently dropped)."""


class TemplateIn(_Request):
    kind: Kind
    name: Text
    total_stock: Annotated[int, Meta(ge=1, le=10**9)]
    threshold_fen: Fen = 0
    discount_fen: Fen = 0
    rate_permille: Annotated[int, Meta(ge=1, le=1000)] = 1000
    cap_fen: Fen = 0
    item_sku: Annotated[str, Meta(max_length=64)] = ""
    uses: Annotated[int, Meta(ge=0, le=100_000)] = 0
    duration_days: Days = 0
    duration_from: Literal["purchase", "first_use"] = "purchase"
    daily_limit: Annotated[int, Meta(ge=0, le=1000)] = 0
    face_value_fen: Fen = 0
    activation_required: bool = False
    valid_days: Days = 0
    valid_from: date | None = None
    valid_until: date | None = None
    stores: Names = msgspec.field(default_factory=list)
    categories: Names = msgspec.field(default_factory=list)
    skus: Names = msgspec.field(default_factory=list)
    channels: Annotated[list[Channel], Meta(min_length=1, max_length=2)] = msgspec.field(
        default_factory=lambda: ["online", "offline"])
    stacking_group: Annotated[str, Meta(max_length=32)] = ""
    exclusive: bool = False
    per_member_limit: Annotated[int, Meta(ge=1, le=1000)] = 1
    budget_fen: Fen | None = None


@dataclass(frozen=True)
class TemplateOut(CouponTemplate):
    """A saved template; ``GET /v1/templates/{id}`` adds what is left of its stock and budget."""

    stock_left: int | None = None
    budget_left_fen: int | None = None


class TemplateList(msgspec.Struct):
    templates: list[TemplateOut]


class IssueIn(_Request):
    template_id: TemplateId
    member_id: Id | None = None
    member_ids: Annotated[list[Id], Meta(min_length=1, max_length=MAX_MEMBERS)] | None = None
    campaign_id: Id | None = None


class IssuedCoupon(msgspec.Struct):
    member_id: str
    code: str
    status: str


class IssueOut(msgspec.Struct):
    campaign_id: str
    coupons: list[IssuedCoupon]


class WalletCoupon(msgspec.Struct, kw_only=True):
    code: str
    template_id: str
    kind: str
    name: str
    state: str
    valid_from: str | None
    valid_until: str | None
    uses_left: int
    balance_fen: int
    transferable: bool
    stacking_group: str
    exclusive: bool


class WalletOut(msgspec.Struct):
    member_id: str
    coupons: list[WalletCoupon]


class WalletQuery(msgspec.Struct, forbid_unknown_fields=True):
    all: Literal["0", "1", "true", "false"] = "0"


class CouponOut(WalletCoupon, kw_only=True):
    member_id: str
    usable_today: bool


class Line(_Request):
    sku: Text
    quantity: Annotated[int, Meta(ge=1, le=100_000)]
    unit_price_fen: Fen
    category: Annotated[str, Meta(max_length=64)] = ""


Lines = Annotated[list[Line], Meta(min_length=1, max_length=1000)]


class QuoteIn(_Request):
    member_id: Id
    store_id: Id
    lines: Lines
    channel: Channel = "offline"
    order_id: OrderId | None = None
    use_points: Points = 0
    pay_with_balance: bool = False


class QuoteOut(msgspec.Struct, kw_only=True):
    member_id: str
    store_id: str
    subtotal_fen: int
    steps: list[dict[str, Any]]
    coupons: list[dict[str, Any]]
    points_used: int
    final_fen: int


class RedemptionIn(_Request):
    code: Code
    order_id: OrderId
    store_id: Id
    amount_fen: Fen
    lines: Lines | None = None
    channel: Channel = "offline"
    member_id: Id | None = None
    # printed on the store's redemption slip
    cashier: Annotated[str, Meta(min_length=1, max_length=32)] | None = None


RedemptionOut = Redemption


class _Amounts(msgspec.Struct, kw_only=True):
    redemption_id: str
    member_id: str
    amount_fen: int
    discount_fen: int
    spent_fen: int


class SlipOut(_Amounts, kw_only=True):
    template_name: str
    kind: str
    code: str
    store_id: str
    order_id: str
    state: str


class RefundOut(_Amounts, kw_only=True):
    status: str
    already_refunded: bool


AccountOut = Account


class LedgerEntry(msgspec.Struct):
    ts_ms: int
    kind: str
    balance_fen: int
    points: int
    ref: str


@dataclass(frozen=True)
class AccountWithLedger(Account):
    ledger: list[LedgerEntry]


class RechargeIn(_Request):
    amount_fen: PositiveFen
    recharge_id: OrderId
    store_id: Id


class CodeStatus(msgspec.Struct):
    code: str
    status: str


class Installments(msgspec.Struct):
    monthly_fen: int
    months: int


class RechargeOut(msgspec.Struct, kw_only=True):
    status: str
    bonus_now_fen: int
    installments: Installments | None
    coupons: list[CodeStatus]
    account: AccountOut


class PaymentIn(_Request):
    store_id: Id
    order_id: OrderId
    amount_fen: PositiveFen
    member_id: Id | None = None
    from_balance: bool = False
    points_used: Points = 0
    paid_channel: PaidChannel | None = None  # default: stored_value when from_balance


class ClaimIn(_Request):
    store_id: Id
    order_id: OrderId
    amount_fen: PositiveFen


class ClaimOut(msgspec.Struct, kw_only=True):
    token: str
    qr_payload: str
    expires_at: str
    store_id: str
    order_id: str
    amount_fen: int


class PaymentOut(msgspec.Struct, kw_only=True):
    member: bool
    rewards: list[dict[str, Any]]
    replayed: bool  # the same payment sent again: nothing changed
    join_offer: ClaimOut | None = None
    points_earned: int | None = None
    account: AccountOut | None = None


class MemberIn(_Request):
    """Acting for a member: a member token's own when omitted."""

    member_id: Id | None = None


class _WithAccount(msgspec.Struct, kw_only=True):
    account: AccountOut  # the member's account after the change


class ClaimRedeemOut(_WithAccount, kw_only=True):
    points: int
    already_granted: bool
    joined: bool


class MallIn(_Request):
    template_id: TemplateId
    purchase_id: OrderId
    member_id: Id | None = None


class MallOut(_WithAccount, kw_only=True):
    points_spent: int
    code: str
    status: str


class GiftState(msgspec.Struct, kw_only=True, omit_defaults=True):
    state: str
    transfer_token: str | None = None
    code: str | None = None
    member_id: str | None = None


class HealthOut(msgspec.Struct):
    status: str
