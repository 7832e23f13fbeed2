"""Typed HTTP routes for every package's part of the one ``/v1`` API (aiohttp + msgspec).

A package describes each operation once, as a ``Route``: method, path, summary, the roles that
may call it, the msgspec ``Struct`` of its JSON body, the models of its responses and the types
of its path and query parameters. ``add_routes`` mounts routes on the app; the wrapper checks the
bearer token and the role, validates path and query parameters, decodes the body (bounds,
required fields, no unknown fields) and only then calls the handler, as ``handler(request)``
or, when the route has a body, ``handler(request, body)``. ``infra.openapi`` builds the OpenAPI
document from the same routes, so the document cannot drift from what the server accepts.

Errors are JSON ``{"error", "message", "field"?, "reason"?}`` (``infra.errors.ApiError``); a
decode error names the field (``lines[0].quantity``). Packages import this module, never each
other's routes; the composition root (``dispatcher/app.py``) mounts them all.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import msgspec
from aiohttp import web

from infra.errors import ApiError, InvalidInput, Unauthorized, Unavailable
from infra.tokens import BEARER, Principal, Role, unsign, verify_bearer
from infra.web_session import (
    CSRF_HEADER,
    SESSION_COOKIE,
    CsrfRefused,
    SessionRevocations,
    bearer_from_cookie,
    csrf_ok,
)

log = logging.getLogger("quanpai.http")
Handler = Callable[..., Awaitable[web.StreamResponse]]
TOKEN_SECRET = web.AppKey("token_secret", bytes)
ROUTES = web.AppKey("routes", list)
UNAVAILABLE = web.AppKey("unavailable_errors", tuple)
PRINCIPAL = web.RequestKey("principal", Principal)
SESSIONS = web.AppKey("sessions", SessionRevocations)
SIGNED_OUT = web.RequestKey("signed_out", bool)
QUERY = web.RequestKey("query", object)
MAX_BODY = 1 << 20
MAX_DEPTH = 32  # JSON nesting a request body may have (any deeper is refused, not recursed)


class ErrorBody(msgspec.Struct, omit_defaults=True):
    """Every error response."""

    error: str
    message: str
    field: str | None = None  # the bad field of a 422
    reason: str | None = None  # the rule's word of a 409 (already_redeemed, expired, ...)


@dataclass(frozen=True)
class Route:
    """One operation of the API; see the module docstring."""

    method: str
    path: str
    handler: Handler
    summary: str
    roles: tuple[Role, ...] = ()  # empty: no token needed
    body: type | None = None  # a msgspec Struct (forbid_unknown_fields=True)
    responses: Mapping[int, Any] = field(default_factory=lambda: {200: None})
    path_params: Mapping[str, Any] = field(default_factory=dict)  # name -> type (default str)
    query: type | None = None  # a msgspec Struct of the query parameters
    headers: Mapping[str, Any] = field(default_factory=dict)  # request header -> type
    content_type: str = "application/json"  # of the success responses
    tags: tuple[str, ...] = ()

    @property
    def operation_id(self) -> str:
        return self.handler.__name__


_encoder = msgspec.json.Encoder()


def respond(data: Any, *, status: int = 200) -> web.Response:
    """A JSON response of a Struct, a dict or a list (msgspec encodes all of them)."""
    return web.Response(body=_encoder.encode(data), status=status,
                        content_type="application/json")


def error_response(exc: ApiError) -> web.Response:
    return respond(exc.body(), status=exc.status)


_WHERE = re.compile(r" - at `\$(.*)`$")
_NAMED = re.compile(r"(?:unknown|missing required) field `([^`]+)`")


def field_of(exc: msgspec.ValidationError, *, default: str = "body") -> tuple[str, str]:
    """(field, message) of a msgspec validation error: ``$.lines[0].quantity`` becomes
    ``lines[0].quantity``; a missing or unknown key is named itself."""
    text = str(exc)
    where = _WHERE.search(text)
    path = where.group(1).lstrip(".") if where else ""
    message = text[: where.start()] if where else text
    named = _NAMED.search(message)
    if named:
        path = f"{path}.{named.group(1)}" if path else named.group(1)
    return path or default, message[:1].lower() + message[1:]


def _depth(raw: bytes) -> int:
    """The deepest nesting of ``[`` and ``{`` outside strings; cheap enough for bodies of 1 MB
    and bounded, unlike a recursive decoder."""
    if raw.count(b"[") + raw.count(b"{") <= MAX_DEPTH:
        return 0
    depth = deepest = 0
    in_string = escaped = False
    for byte in raw:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):
            depth += 1
            deepest = max(deepest, depth)
            if deepest > MAX_DEPTH:
                return deepest
        elif byte in (0x5D, 0x7D):
            depth -= 1
    return deepest


def decode(raw: bytes, decoder: msgspec.json.Decoder[Any]) -> Any:
    """The body decoded with ``decoder``; ``InvalidInput`` naming the field otherwise."""
    if not raw:
        raise InvalidInput("body", "expected a JSON object")
    if _depth(raw) > MAX_DEPTH:
        raise InvalidInput("body", f"JSON nested deeper than {MAX_DEPTH} levels")
    try:
        return decoder.decode(raw)
    except msgspec.ValidationError as exc:
        raise InvalidInput(*field_of(exc)) from None
    except msgspec.DecodeError:
        raise InvalidInput("body", "not valid JSON") from None


_verified: dict[tuple[bytes, str], tuple[float, Principal]] = {}
_VERIFIED_MAX = 10_000
_VERIFIED_FOR = 60.0  # seconds a verified token is trusted without checking its tag again


def principal(request: web.Request) -> Principal:
    """The caller, from the bearer token or the console's session cookie (401 without a valid
    one; 403 for a cookie-authenticated state change without its CSRF token).

    A POS sends the same token thousands of times; verified tokens are remembered for a minute
    (and never past their expiry) to keep the HMAC and JSON off every request."""
    found: Principal | None = request.get(PRINCIPAL)
    if found is not None:
        return found
    secret = request.app[TOKEN_SECRET]
    header = request.headers.get("Authorization")
    session = request.cookies.get(SESSION_COOKIE) if not header else None
    if session:
        # the console's browser session: its cookie stands for the bearer token, and a state
        # change must also carry the session's CSRF token (infra.web_session)
        if request.get(SIGNED_OUT):
            raise Unauthorized("this session was signed out: sign in again")
        if not csrf_ok(request.method, request.headers.get(CSRF_HEADER), session, secret=secret):
            raise CsrfRefused()
        header = bearer_from_cookie(session)
    key = (secret, header or "")
    now = time.monotonic()
    cached = _verified.get(key)
    if cached is not None and cached[0] > now:
        found = cached[1]
    else:
        found = verify_bearer(key[1], secret=secret)
        if len(_verified) >= _VERIFIED_MAX:
            _verified.clear()
        _verified[key] = (now + min(_VERIFIED_FOR, found.expires - time.time()), found)
    request[PRINCIPAL] = found
    return found


def _params_struct(route: Route) -> type | None:
    names = re.findall(r"{([^}:]+)", route.path)
    if not names:
        return None
    return msgspec.defstruct(f"{route.operation_id}_path",
                             [(n, route.path_params.get(n, str)) for n in names])


def _wrap(route: Route) -> Handler:
    body_decoder: msgspec.json.Decoder[Any] | None = (
        msgspec.json.Decoder(route.body) if route.body is not None else None)
    path_type = _params_struct(route)
    query_type = route.query
    roles = route.roles

    async def handle(request: web.Request) -> web.StreamResponse:
        if roles:
            principal(request).require(*roles)
        if path_type is not None:
            try:
                msgspec.convert(dict(request.match_info), path_type, strict=False)
            except msgspec.ValidationError as exc:
                raise InvalidInput(*field_of(exc, default="path")) from None
        if query_type is not None:
            try:
                request[QUERY] = msgspec.convert(dict(request.query), query_type,
                                                   strict=False)
            except msgspec.ValidationError as exc:
                raise InvalidInput(*field_of(exc, default="query")) from None
        if body_decoder is None:
            return await route.handler(request)
        return await route.handler(request, decode(await request.read(), body_decoder))

    handle.__name__ = route.operation_id
    return handle


def query_of(request: web.Request, model: type[Any]) -> Any:
    """The validated query parameters of a route declared with ``query=model``."""
    found = request.get(QUERY)
    return found if isinstance(found, model) else model()


def add_routes(app: web.Application, routes: Iterable[Route]) -> None:
    """Mount typed routes on an app made by ``create_app`` (and list them for OpenAPI)."""
    for route in routes:
        app[ROUTES].append(route)
        app.router.add_route(route.method.upper(), route.path, _wrap(route))


def _closed_transport(exc: Exception) -> bool:
    # asyncio's (and uvloop's) word for writing to a connection the peer has closed: a store
    # that restarted under a pooled connection, not a bug of the request
    return isinstance(exc, RuntimeError) and "unable to perform operation on" in str(exc)


@web.middleware
async def errors_middleware(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Every failure as a JSON body: ``ApiError`` with its status, a backing store's connection
    error as 503 (retryable: each state change is one script, nothing is half-applied), an
    aiohttp HTTP error with its own status, anything else as a logged 500."""
    try:
        return await handler(request)
    except ApiError as exc:
        return error_response(exc)
    except web.HTTPException as exc:
        if exc.status >= 400:
            return respond({"error": exc.reason, "message": exc.text or exc.reason},
                           status=exc.status)
        raise
    except Exception as exc:
        if isinstance(exc, request.app[UNAVAILABLE]) or _closed_transport(exc):
            return error_response(Unavailable(f"a backing store is unavailable ({exc}); "
                                              "retry shortly"))
        log.exception("unhandled error on %s %s", request.method, request.path)
        return respond({"error": "InternalError", "message": "the request failed; retry or "
                        "report it with the time of the request"}, status=500)


@web.middleware
async def signed_out_middleware(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Marks a request whose session cookie was signed out (``principal`` and the console's
    session route then refuse it). Only requests with the cookie pay the Redis lookup;
    bearer-token callers (POS, agents) send none."""
    session = request.cookies.get(SESSION_COOKIE)
    if session:
        payload, _ = unsign(session, secret=request.app[TOKEN_SECRET], purpose=BEARER)
        session_id = payload.get("x") if payload else None
        if isinstance(session_id, str) and session_id:
            request[SIGNED_OUT] = await request.app[SESSIONS].revoked(session_id)
    return await handler(request)


def create_app(
    *, secret: bytes, unavailable: tuple[type[BaseException], ...] = (),
    client_max_size: int = MAX_BODY, sessions: SessionRevocations | None = None,
) -> web.Application:
    """An empty API app: JSON errors, bearer tokens under ``secret``; ``unavailable`` lists the
    exception types that mean a backing store is down (answered 503, not 500); ``sessions``
    records signed-out console sessions, checked on every cookie request."""
    middlewares = [errors_middleware]
    if sessions is not None:
        middlewares.append(signed_out_middleware)
    app = web.Application(middlewares=middlewares, client_max_size=client_max_size)
    if sessions is not None:
        app[SESSIONS] = sessions
    app[TOKEN_SECRET] = secret
    app[ROUTES] = []
    app[UNAVAILABLE] = unavailable
    return app
