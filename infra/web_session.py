"""Browser sessions for the console: a role token kept in an HttpOnly cookie, and its CSRF token.

A browser never holds the bearer token in JavaScript: the console exchanges it once for the
``qp_session`` cookie (HttpOnly, SameSite=Strict, Secure over TLS, path ``/``), and the ``/v1``
API accepts that cookie in place of ``Authorization: Bearer``. Because a cookie travels with any
request the browser makes, every state-changing request authenticated by the cookie must also
carry ``X-CSRF-Token``: an HMAC of the cookie under a key derived from the secret. It is
stateless (nothing to store or expire apart from the session itself), a page of another origin
cannot read it, and it changes with every session. Requests with a bearer header need no CSRF
token: no browser attaches that header on its own.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Any

from infra.errors import Forbidden

SESSION_COOKIE = "qp_session"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
SESSION_SECONDS = 8 * 3600  # a working day; the operator signs in again after it


def csrf_token(session: str, *, secret: bytes) -> str:
    """The CSRF token that goes with the session cookie ``session``."""
    key = hmac.new(secret, b"console-csrf", hashlib.sha256).digest()
    tag = hmac.new(key, session.encode(), hashlib.sha256).digest()[:24]
    return base64.urlsafe_b64encode(tag).decode().rstrip("=")


def csrf_ok(method: str, sent: str | None, session: str, *, secret: bytes) -> bool:
    """Whether a cookie-authenticated request may proceed: safe methods always, others with
    the session's CSRF token in ``X-CSRF-Token``."""
    if method.upper() in SAFE_METHODS:
        return True
    return bool(sent) and hmac.compare_digest(str(sent), csrf_token(session, secret=secret))


def bearer_from_cookie(session: str) -> str:
    """The ``Authorization`` header value the session cookie stands for."""
    return f"Bearer {session}"


class CsrfRefused(Forbidden):
    """A cookie-authenticated state change without the session's CSRF token."""

    header = CSRF_HEADER

    def __init__(self) -> None:
        super().__init__("missing or wrong: send the session's CSRF token (GET /console/session) "
                         "with every state-changing request")

    def body(self) -> dict[str, str]:
        return {**super().body(), "field": CSRF_HEADER}


def cookie_attributes(*, secure: bool, max_age: int) -> dict[str, Any]:
    """Keyword arguments for aiohttp's ``set_cookie`` (HttpOnly, SameSite=Strict, path /)."""
    return {"httponly": True, "samesite": "Strict", "secure": secure, "path": "/",
            "max_age": max_age}
