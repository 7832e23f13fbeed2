"""Errors of the catalog package, documented in one place.

The HTTP-facing errors are the shared ones of ``infra.errors`` (every package's routes answer
them the same way); the catalog adds only ``StoreUnavailable``.

``CatalogError`` (``infra.errors.ApiError``)
    ``InvalidInput``      bad input naming the field (HTTP 422, CLI exit 2); nothing was changed.
    ``NotFound``          a template, coupon, redemption or member does not exist (HTTP 404).
    ``Refused``           a legal request the rules refuse: already redeemed, expired, wrong store,
                          daily limit, insufficient balance (HTTP 409 with a ``reason``).
    ``Forbidden``         the caller's role, merchant or store does not allow the action (HTTP 403).
    ``Unauthorized``      no valid bearer token (HTTP 401).
    ``StoreUnavailable``  Redis could not be reached or answered busy: retryable; nothing is
                          half-applied because every state change is one Lua script.

``retryable`` tells a Dramatiq actor (``throws=``) or an HTTP client whether to try again.
"""

from __future__ import annotations

from infra.errors import ApiError as CatalogError
from infra.errors import Forbidden, InvalidInput, NotFound, Refused, Unauthorized, Unavailable


class StoreUnavailable(Unavailable):
    """Redis is down or busy (loading after a restart): try again shortly."""


__all__ = ["CatalogError", "Forbidden", "InvalidInput", "NotFound", "Refused",
           "StoreUnavailable", "Unauthorized"]
