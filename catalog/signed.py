"""One-purpose catalog tokens (points claims, gift transfers) in the shared signed-token format
of ``infra.tokens``; this module only turns a bad or expired token into the catalog's errors."""

from __future__ import annotations

from typing import Any

from catalog.errors import InvalidInput, Refused
from infra.tokens import sign, unsign


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
    if payload.get("m") != merchant_id:
        raise InvalidInput(field, f"the {what} belongs to another merchant")
    return payload


__all__ = ["open_token", "sign", "unsign"]
