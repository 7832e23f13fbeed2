"""Signed one-purpose tokens (points claims, gift transfers): ``<prefix>.<payload>.<tag>``.

The payload is base64url JSON with an expiry; the tag a truncated HMAC-SHA256 under a key derived
from the secret and the purpose, so a token minted for one purpose never verifies for another.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any

from catalog.errors import InvalidInput, Refused


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _tag(secret: bytes, purpose: str, body: str) -> bytes:
    key = hmac.new(secret, purpose.encode(), hashlib.sha256).digest()
    return hmac.new(key, body.encode(), hashlib.sha256).digest()[:16]


def sign(payload: dict[str, Any], *, secret: bytes, purpose: str, ttl_seconds: int) -> str:
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
    if not isinstance(payload, dict):
        return None, "invalid"
    if payload.get("e", 0) < time.time():
        return None, "expired"
    return payload, ""


def open_token(
    token: str, *, secret: bytes, purpose: str, merchant_id: str, field: str, what: str,
    expired: str,
) -> dict[str, Any]:
    """The payload of a valid, unexpired ``purpose`` token of ``merchant_id``; otherwise
    ``Refused('expired', expired)`` or ``InvalidInput(field, ...)`` naming ``what`` it is."""
    payload, problem = unsign(token, secret=secret, purpose=purpose)
    if payload is None:
        if problem == "expired":
            raise Refused("expired", expired)
        raise InvalidInput(field, f"not a valid {what} token")
    if payload["m"] != merchant_id:
        raise InvalidInput(field, f"the {what} belongs to another merchant")
    return payload
