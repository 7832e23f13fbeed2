"""The OpenAPI 3.1 document served at ``/v1/openapi.json``, built from one table of operations."""

from __future__ import annotations

from typing import Any

from aiohttp import web

STR, INT, BOOL, LIST, OBJ = "string", "integer", "boolean", "array", "object"
LINES = {"type": LIST, "items": {"type": OBJ, "required": ["sku", "quantity", "unit_price_fen"],
                              "properties": {"sku": {"type": STR}, "category": {"type": STR},
                                             "quantity": {"type": INT, "minimum": 1},
                                             "unit_price_fen": {"type": INT, "minimum": 0}}}}

_TEMPLATE_INTS = ("threshold_fen", "discount_fen", "rate_permille", "cap_fen", "uses",
                  "duration_days", "daily_limit", "face_value_fen", "valid_days",
                  "per_member_limit", "budget_fen")
TEMPLATE_FIELDS: dict[str, tuple[Any, bool]] = {
    "kind": (STR, True), "name": (STR, True), "total_stock": (INT, True),
    **{n: (INT, False) for n in _TEMPLATE_INTS},
    **{n: (STR, False) for n in ("item_sku", "duration_from", "valid_from", "valid_until",
                                 "stacking_group")},
    **{n: (LIST, False) for n in ("stores", "categories", "skus", "channels")},
    "exclusive": (BOOL, False), "activation_required": (BOOL, False),
}

# method, path, summary, roles, request body fields {name: (type or schema, required)}
OPERATIONS: list[tuple[str, str, str, str, dict[str, tuple[Any, bool]]]] = [
    ("post", "/v1/templates",
     "Create a coupon template (满减, 折扣, 代金, 兑换, 次卡, 时长卡, 礼品卡)",
     "operator", TEMPLATE_FIELDS),
    ("get", "/v1/templates", "List the merchant's templates", "operator, cashier", {}),
    ("get", "/v1/templates/{template_id}", "A template with stock and budget left",
     "operator, cashier", {}),
    ("post", "/v1/coupons", "Issue a template to members, once per (campaign, member)",
     "operator", {"template_id": (STR, True), "member_ids": (LIST, False),
                  "member_id": (STR, False), "campaign_id": (STR, False)}),
    ("get", "/v1/coupons/{code}", "Look up a coupon by code or QR payload", "operator, cashier",
     {}),
    ("get", "/v1/members/{member_id}/wallet", "A member's coupons and cards (?all=1: used too)",
     "operator, cashier, member", {}),
    ("post", "/v1/checkout/quote", "到手价: the best legal coupon combination and each step",
     "operator, cashier, member", {"member_id": (STR, True), "store_id": (STR, True),
                                   "lines": (LINES, True), "channel": (STR, False),
                                   "order_id": (STR, False), "use_points": (INT, False),
                                   "pay_with_balance": (BOOL, False)}),
    ("post", "/v1/redemptions", "核销 one coupon use exactly once (send Idempotency-Key)",
     "operator, cashier", {"code": (STR, True), "order_id": (STR, True), "store_id": (STR, True),
                           "amount_fen": (INT, True), "lines": (LINES, False),
                           "channel": (STR, False), "member_id": (STR, False)}),
    ("get", "/v1/redemptions/{redemption_id}", "A redemption slip", "operator, cashier, printer",
     {}),
    ("post", "/v1/redemptions/{redemption_id}/refund", "返还 the use of a cancelled order",
     "operator, cashier", {}),
    ("get", "/v1/members/{member_id}/account", "Stored value, points, tier and ledger",
     "operator, cashier, member", {}),
    ("post", "/v1/members/{member_id}/recharges", "充值 with the matching bonus",
     "operator, cashier", {"amount_fen": (INT, True), "recharge_id": (STR, True),
                           "store_id": (STR, True)}),
    ("post", "/v1/payments", "支付后营销: points and rewards after a payment",
     "operator, cashier", {"store_id": (STR, True), "order_id": (STR, True),
                           "amount_fen": (INT, True), "member_id": (STR, False),
                           "from_balance": (BOOL, False), "points_used": (INT, False)}),
    ("post", "/v1/points/claims", "Mint a one-time points claim token for a receipt QR",
     "printer, cashier, operator", {"store_id": (STR, True), "order_id": (STR, True),
                                    "amount_fen": (INT, True)}),
    ("post", "/v1/points/claims/{token}/redeem", "Grant a claim's points once (joins if needed)",
     "member, cashier, operator", {"member_id": (STR, False)}),
    ("post", "/v1/points/mall", "Buy a coupon with points", "member, cashier, operator",
     {"template_id": (STR, True), "purchase_id": (STR, True), "member_id": (STR, False)}),
    ("post", "/v1/gift-cards/{code}/activate", "Activate a gift card sold inactive (未激活)",
     "cashier, operator", {}),
    ("post", "/v1/gift-cards/{code}/transfer", "Start a gift card transfer (once per card)",
     "member, operator", {"member_id": (STR, False)}),
    ("post", "/v1/gift-cards/{code}/transfer/cancel", "Cancel a pending transfer",
     "member, operator", {"member_id": (STR, False)}),
    ("post", "/v1/gift-cards/transfers/{token}/accept", "Accept a gift card transfer",
     "member, operator", {"member_id": (STR, False)}),
    ("put", "/v1/rules", "Set tiers, stored-value discounts, points, recharge and post-payment "
     "rules", "operator", {}),
    ("get", "/v1/rules", "The merchant's rules", "operator, cashier", {}),
]


def _schema(kind: Any) -> dict[str, Any]:
    if isinstance(kind, dict):
        return kind
    if kind == LIST:
        return {"type": LIST, "items": {"type": STR}}
    return {"type": kind}


def document() -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for method, path, summary, roles, fields in OPERATIONS:
        op: dict[str, Any] = {
            "summary": summary,
            "description": f"Roles: {roles}.",
            "security": [{"bearer": []}],
            "parameters": [{"name": p.strip("{}"), "in": "path", "required": True,
                            "schema": {"type": STR}}
                           for p in path.split("/") if p.startswith("{")],
            "responses": {
                "200": {"description": "OK"},
                "401": {"description": "missing or invalid bearer token"},
                "403": {"description": "role, merchant or store not allowed"},
                "404": {"description": "not found"},
                "409": {"description": "refused by the rules; body has a reason word"},
                "422": {"description": "bad input; body names the field"},
            },
        }
        if path == "/v1/redemptions":
            op["parameters"].append({"name": "Idempotency-Key", "in": "header",
                                     "schema": {"type": STR, "maxLength": 128}})
        if fields:
            op["requestBody"] = {"required": True, "content": {"application/json": {"schema": {
                "type": OBJ,
                "required": [n for n, (_, required) in fields.items() if required],
                "properties": {n: _schema(k) for n, (k, _) in fields.items()},
            }}}}
        paths.setdefault(path, {})[method] = op
    return {
        "openapi": "3.1.0",
        "info": {"title": "Quanpai catalog API", "version": "1",
                 "description": "Coupons, 到手价 pricing, 核销, stored value and points. Money "
                                "in integer fen, rates in permille."},
        "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
        "paths": paths,
    }


async def handler(request: web.Request) -> web.Response:
    return web.json_response(document())
