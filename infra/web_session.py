"""Browser sessions for the console: a role token kept in an HttpOnly cookie, and its CSRF token.

A browser never holds the bearer token in JavaScript: the console exchanges it once for the
``qp_session`` cookie (HttpOnly, SameSite=Strict, Secure over TLS, path ``/``), and the ``/v1``
API accepts that cookie in place of ``Authorization: Bearer``. Because a cookie travels with any
request the browser makes, every state-changing request authenticated by the cookie must also
carry ``X-CSRF-Token``: an HMAC of the cookie under a key derived from the secret. It is
stateless (nothing to store or expire apart from the session itself), a page of another origin
cannot read it, and it changes with every session. Requests with a bearer header need no CSRF
token: no browser attaches that header on its own.

The cookie never holds the token the operator pasted (often valid for a year): sign-in mints a
session token of its own, valid for the working day and carrying a random session id. Signing
out revokes that id in Redis until the token would have expired (``SessionRevocations``), so a
copied cookie stops working at sign-out on every API process, not only in the browser that
signed out.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from typing import Any, Protocol

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


def new_session_id() -> str:
    """A random id for a console session (what signing out revokes)."""
    return secrets.token_urlsafe(16)


class _AsyncKeys(Protocol):
    """What the store needs of an asyncio Redis client (plain or cluster)."""

    def set(self, name: str, value: str, *, exat: int) -> Any: ...
    def exists(self, *names: str) -> Any: ...


class SessionRevocations:
    """Signed-out session ids, kept in Redis until their token's own expiry (then the token
    is refused anyway and the key goes). One key per id carries a hash tag of its own, so the
    store works on Redis Cluster too."""

    def __init__(self, *, client: _AsyncKeys, prefix: str = "qp:session") -> None:
        self._client = client
        self._prefix = prefix

    def _key(self, session_id: str) -> str:
        return f"{self._prefix}:{{{session_id}}}:revoked"

    async def revoke(self, session_id: str, *, expires: float) -> None:
        # a token already past its expiry needs no record; keep a second for clock rounding
        until = max(int(expires) + 1, int(time.time()) + 1)
        await self._client.set(self._key(session_id), "1", exat=until)

    async def revoked(self, session_id: str) -> bool:
        return bool(await self._client.exists(self._key(session_id)))


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
