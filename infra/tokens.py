"""Signed tokens, one format for every purpose: bearer tokens, points claims, gift transfers.

A token is ``<purpose>.<payload>.<tag>``: the payload is base64url JSON with an expiry ``e``
(epoch seconds), the tag the first 16 bytes of HMAC-SHA256 (RFC 2104, the standard library's
``hmac``) over the payload under a key derived from the secret and the purpose, compared in
constant time. A token minted for one purpose never verifies for another, and verification
needs no lookup.

Bearer tokens (purpose ``qp1``) carry a role, a merchant and, where the role needs one, a store
or a member:

- ``operator``  everything within its merchant (templates, issuance, rules, campaigns)
- ``cashier``   wallet, quote, redeem, refund, recharge, payments — at its own store only
- ``printer``   points-claim tokens, redemption slips, print jobs — at its own store only
- ``member``    its own wallet, gift transfers and points claims
- ``analyst``   reads campaign results and ROI; changes nothing
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, get_args

from infra.errors import Forbidden, InvalidInput, Unauthorized

Role = Literal["operator", "cashier", "printer", "member", "analyst"]
ROLES: tuple[str, ...] = get_args(Role)
BEARER = "qp1"
TAG_BYTES = 16
_ID = re.compile(r"^[A-Za-z0-9_-]{1,32}$")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _tag(secret: bytes, purpose: str, body: str) -> bytes:
    key = hmac.new(secret, purpose.encode(), hashlib.sha256).digest()
    return hmac.new(key, body.encode(), hashlib.sha256).digest()[:TAG_BYTES]


def sign(payload: Mapping[str, Any], *, secret: bytes, purpose: str, ttl_seconds: int) -> str:
    """A token for ``purpose`` carrying ``payload`` (JSON values) for ``ttl_seconds``."""
    body = _b64(json.dumps({**payload, "e": int(time.time()) + ttl_seconds},
                           separators=(",", ":"), ensure_ascii=False).encode())
    return f"{purpose}.{body}.{_b64(_tag(secret, purpose, body))}"


def unsign(token: str, *, secret: bytes, purpose: str) -> tuple[dict[str, Any] | None, str]:
    """(payload, '') when valid, else (None, 'invalid' | 'expired')."""
    parts = token.split(".")
    if len(parts) != 3 or parts[0] != purpose:
        return None, "invalid"
    try:
        if not hmac.compare_digest(_unb64(parts[2]), _tag(secret, purpose, parts[1])):
            return None, "invalid"
        payload = json.loads(_unb64(parts[1]))
    except (ValueError, json.JSONDecodeError):
        return None, "invalid"
    if not isinstance(payload, dict) or not isinstance(payload.get("e"), int):
        return None, "invalid"
    if payload["e"] < time.time():
        return None, "expired"
    return payload, ""


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the verified content of a bearer token."""

    role: Role
    merchant_id: str
    store_id: str = ""
    member_id: str = ""
    expires: float = float("inf")  # epoch seconds
    session_id: str = ""  # set on a console session's token: what signing out revokes

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


def _check_id(name: str, value: str) -> None:
    if not _ID.match(value):
        raise InvalidInput(name, "expected 1-32 letters, digits, '_' or '-'")


def mint_bearer(
    *, secret: bytes, role: str, merchant_id: str, store_id: str = "", member_id: str = "",
    ttl_seconds: int = 365 * 86400, session_id: str = "",
) -> str:
    """A bearer token; cashier and printer tokens need a store, member tokens a member.
    ``session_id`` marks a console session's token (infra.web_session), revocable one by one."""
    if role not in ROLES:
        raise InvalidInput("role", f"expected one of {', '.join(ROLES)}")
    _check_id("merchant_id", merchant_id)
    if role in ("cashier", "printer"):
        _check_id("store_id", store_id)
    if role == "member":
        _check_id("member_id", member_id)
    payload = {"r": role, "m": merchant_id, "s": store_id, "u": member_id}
    if session_id:
        payload["x"] = session_id
    return sign(payload, secret=secret, purpose=BEARER, ttl_seconds=ttl_seconds)


def verify_bearer(header: str | None, *, secret: bytes) -> Principal:
    """The principal of an ``Authorization: Bearer <token>`` header, or ``Unauthorized``."""
    if not header or not header.startswith("Bearer "):
        raise Unauthorized("send Authorization: Bearer <token>")
    payload, problem = unsign(header[7:].strip(), secret=secret, purpose=BEARER)
    if payload is None:
        raise Unauthorized("token expired" if problem == "expired"
                           else "malformed token or its signature does not verify")
    role, merchant = payload.get("r"), payload.get("m")
    if role not in ROLES or not isinstance(merchant, str):
        raise Unauthorized("token has an unknown role")
    return Principal(role=role, merchant_id=merchant, store_id=str(payload.get("s", "")),
                     member_id=str(payload.get("u", "")), expires=float(payload["e"]),
                     session_id=str(payload.get("x", "")))
