"""The console's routes: its pages and static files under ``/console/``, and the sign-in that
turns a role token into a session cookie.

    GET    /console/              the single page (Vue 3 + Element Plus + ECharts, vendored)
    GET    /console/static/...    its scripts, styles and vendored libraries
    POST   /console/session       {"token": "qp1..."} -> cookie + {"role", "csrf_token", ...}
    GET    /console/session       the current session (role, CSRF token) or 401
    DELETE /console/session       sign out (needs the CSRF token): the session is revoked

Everything else the pages do goes to ``/v1`` with the cookie and the CSRF token: the console
has no second way into Redis or ClickHouse.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from aiohttp import web

from infra.errors import Forbidden, InvalidInput, Unauthorized
from infra.http_api import SIGNED_OUT, respond
from infra.tokens import Principal, mint_bearer, verify_bearer
from infra.web_session import (
    SESSION_COOKIE,
    SESSION_SECONDS,
    CsrfRefused,
    SessionRevocations,
    cookie_attributes,
    csrf_ok,
    csrf_token,
    new_session_id,
)

STATIC = Path(__file__).parent / "static"
CONSOLE_ROLES = ("operator", "analyst")
# Vue compiles the page templates in the browser (no build step), which needs 'unsafe-eval';
# Element Plus positions popups with inline styles.
_CSP = ("default-src 'self'; script-src 'self' 'unsafe-eval'; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; "
        "form-action 'self'")


class ConsoleRoutes:
    """Handlers bound to the app's token secret, the merchant's timezone and the record of
    signed-out sessions."""

    def __init__(self, *, secret: bytes, timezone: str, sessions: SessionRevocations) -> None:
        self.secret = secret
        self.timezone = timezone
        self.sessions = sessions

    def _check(self, token: str) -> Principal | None:
        try:
            return verify_bearer(f"Bearer {token}", secret=self.secret)
        except Unauthorized:
            return None

    def _session(self, request: web.Request) -> tuple[str, Principal] | None:
        """The cookie's session token and principal, if it is a live console session (the
        app's middleware has already looked its id up among the signed-out ones)."""
        token = request.cookies.get(SESSION_COOKIE, "")
        who = self._check(token) if token else None
        if who is None or who.role not in CONSOLE_ROLES or not who.session_id:
            return None
        if request.get(SIGNED_OUT):
            return None
        return token, who

    def _session_body(self, token: str, who: Principal) -> dict[str, Any]:
        return {"role": who.role, "merchant_id": who.merchant_id, "timezone": self.timezone,
                "csrf_token": csrf_token(token, secret=self.secret)}

    async def index(self, request: web.Request) -> web.StreamResponse:
        response = web.FileResponse(STATIC / "index.html")
        response.headers["Content-Security-Policy"] = _CSP
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["Cache-Control"] = "no-store"
        return response

    async def sign_in(self, request: web.Request) -> web.Response:
        try:
            data = json.loads(await request.read())
        except (ValueError, UnicodeDecodeError):
            raise InvalidInput("body", "expected a JSON object") from None
        token = data.get("token") if isinstance(data, dict) else None
        if not isinstance(token, str) or not 0 < len(token.strip()) <= 2048:
            raise InvalidInput("token", "paste the operator or analyst token")
        token = token.strip().removeprefix("Bearer ").strip()
        who = self._check(token)
        if who is None:
            raise Unauthorized("token: not valid (expired, or for another deployment)")
        if who.role not in CONSOLE_ROLES:
            raise Forbidden(f"token: a {who.role} token cannot use the console "
                            "(operator or analyst only)")
        max_age = int(max(0, min(SESSION_SECONDS, who.expires - time.time())))
        # the cookie carries a token of its own: a working day long and revocable at sign-out
        session = mint_bearer(secret=self.secret, role=who.role, merchant_id=who.merchant_id,
                              ttl_seconds=max_age, session_id=new_session_id())
        response = respond(self._session_body(session, self._check(session) or who))
        response.set_cookie(SESSION_COOKIE, session,
                            **cookie_attributes(secure=request.secure, max_age=max_age))
        response.headers["Cache-Control"] = "no-store"
        return response

    async def current(self, request: web.Request) -> web.Response:
        found = self._session(request)
        if found is None:
            raise Unauthorized("not signed in")
        token, who = found
        response = respond(self._session_body(token, who))
        response.headers["Cache-Control"] = "no-store"
        return response

    async def sign_out(self, request: web.Request) -> web.Response:
        token = request.cookies.get(SESSION_COOKIE, "")
        if token and not csrf_ok(request.method, request.headers.get(CsrfRefused.header), token,
                                 secret=self.secret):
            raise CsrfRefused()
        who = self._check(token) if token else None
        if who is not None and who.session_id:
            await self.sessions.revoke(who.session_id, expires=who.expires)
        response = respond({"signed_out": True})
        response.del_cookie(SESSION_COOKIE, path="/")
        return response


async def _to_index(request: web.Request) -> web.StreamResponse:
    raise web.HTTPFound("/console/")


def add_routes(app: web.Application, *, secret: bytes, timezone: str,
               sessions: SessionRevocations) -> None:
    """Mount the console on ``app`` (made by ``infra.http_api.create_app`` with the same
    ``secret`` and ``sessions``); ``timezone`` is the merchant's, in which the pages show
    dates."""
    routes = ConsoleRoutes(secret=secret, timezone=timezone, sessions=sessions)
    app.router.add_get("/console", _to_index)
    app.router.add_get("/console/", routes.index)
    app.router.add_post("/console/session", routes.sign_in)
    app.router.add_get("/console/session", routes.current)
    app.router.add_delete("/console/session", routes.sign_out)
    app.router.add_static("/console/static/", STATIC, append_version=False)
