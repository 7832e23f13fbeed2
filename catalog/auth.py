"""Bearer tokens with roles, bound to a merchant and (for cashiers and printer agents) a store.

A token is ``qp1.<payload>.<tag>``: the payload is base64url JSON (role, merchant, store, member,
expiry), the tag a truncated HMAC-SHA256 under a key derived from the secret. Verification needs
no lookup. Roles:

- ``operator``  everything within its merchant (templates, issuance, rules, refunds anywhere)
- ``cashier``   wallet, quote, redeem, refund, recharge, payments — at its own store only
- ``printer``   points-claim tokens and redemption slips — at its own store only
- ``member``    its own wallet, gift transfers and points claims
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from dataclasses import dataclass
from typing import Literal

from catalog.errors import Forbidden, InvalidInput, Unauthorized
from catalog.templates import check_id

Role = Literal["operator", "cashier", "printer", "member"]
ROLES = ("operator", "cashier", "printer", "member")


@dataclass(frozen=True, slots=True)
class Principal:
    role: Role
    merchant_id: str
    store_id: str = ""
    member_id: str = ""
    expires: float = float("inf")  # epoch seconds

    def require(self, *roles: Role) -> None:
        if self.role not in roles:
            raise Forbidden(f"a {self.role} token may not do this (needs {' or '.join(roles)})")

    def require_store(self, store_id: str) -> None:
        """Cashiers and printer agents act only for the store their token is bound to."""
        if self.role in ("cashier", "printer") and store_id != self.store_id:
            raise Forbidden(f"store_id: this token acts for store {self.store_id} only")

    def require_member(self, member_id: str) -> None:
        if self.role == "member" and member_id != self.member_id:
            raise Forbidden("member_id: a member token acts for its own member only")


def _key(secret: bytes) -> bytes:
    return hmac.new(secret, b"api-token", hashlib.sha256).digest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def mint_token(
    *, secret: bytes, role: str, merchant_id: str, store_id: str = "", member_id: str = "",
    ttl_seconds: int = 365 * 86400,
) -> str:
    """A signed token; cashier and printer tokens need a store, member tokens a member."""
    if role not in ROLES:
        raise InvalidInput("role", f"expected one of {', '.join(ROLES)}")
    check_id("merchant_id", merchant_id)
    if role in ("cashier", "printer"):
        check_id("store_id", store_id)
    if role == "member":
        check_id("member_id", member_id)
    payload = {"r": role, "m": merchant_id, "s": store_id, "u": member_id,
               "e": int(time.time()) + ttl_seconds}
    body = _b64(json.dumps(payload, separators=(",", ":")).encode())
    tag = hmac.new(_key(secret), body.encode(), hashlib.sha256).digest()[:18]
    return f"qp1.{body}.{_b64(tag)}"


def verify_token(header: str | None, *, secret: bytes) -> Principal:
    """The principal of an ``Authorization: Bearer`` header, or ``Unauthorized``."""
    if not header or not header.startswith("Bearer "):
        raise Unauthorized("send Authorization: Bearer <token>")
    parts = header[7:].strip().split(".")
    if len(parts) != 3 or parts[0] != "qp1":
        raise Unauthorized("malformed token")
    try:
        tag = _unb64(parts[2])
        expected = hmac.new(_key(secret), parts[1].encode(), hashlib.sha256).digest()[:18]
        if not hmac.compare_digest(tag, expected):
            raise Unauthorized("token signature does not verify")
        payload = json.loads(_unb64(parts[1]))
    except (ValueError, json.JSONDecodeError):
        raise Unauthorized("malformed token") from None
    if payload.get("e", 0) < time.time():
        raise Unauthorized("token expired")
    if payload.get("r") not in ROLES:
        raise Unauthorized("token has an unknown role")
    return Principal(role=payload["r"], merchant_id=payload["m"], store_id=payload.get("s", ""),
                     member_id=payload.get("u", ""), expires=float(payload["e"]))
