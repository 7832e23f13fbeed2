"""Errors of the catalog package, documented in one place.

``CatalogError``
    ``InvalidInput``      bad input naming the field (HTTP 422, CLI exit 2); nothing was changed.
    ``NotFound``          a template, coupon, redemption or member does not exist (HTTP 404).
    ``Refused``           a legal request the rules refuse: already redeemed, expired, wrong store,
                          daily limit, insufficient balance (HTTP 409 with a ``reason``).
    ``Forbidden``         the caller's role, merchant or store does not allow the action (HTTP 403).
    ``StoreUnavailable``  Redis could not be reached or answered busy: retryable; nothing is
                          half-applied because every state change is one Lua script.

``retryable`` tells a Dramatiq actor (``throws=``) or an HTTP client whether to try again.
"""

from __future__ import annotations


class CatalogError(Exception):
    """Base of every error the catalog raises on purpose."""

    retryable = False
    status = 400


class InvalidInput(CatalogError):
    """A field of a request or template is missing or malformed."""

    status = 422

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class NotFound(CatalogError):
    status = 404


class Refused(CatalogError):
    """The rules refuse the request; ``reason`` is a stable machine-readable word."""

    status = 409

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class Forbidden(CatalogError):
    status = 403


class Unauthorized(CatalogError):
    status = 401


class StoreUnavailable(CatalogError):
    """Redis is down or busy (loading after a restart): try again shortly."""

    retryable = True
    status = 503
