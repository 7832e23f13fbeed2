"""The catalog HTTP API (aiohttp): app factory, authentication, errors as JSON, input helpers.

Handlers live in ``api_coupons`` (templates, issuance, wallet, quote, redemption) and
``api_members`` (stored value, points, claims, payments, gift transfers, rules). Every error is a
JSON body ``{"error": ..., "message": ..., "field"?: ..., "reason"?: ...}``; nothing is
half-applied because each state change is one Redis script.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import msgspec
import redis
from aiohttp import web

from catalog.auth import Principal, verify_token
from catalog.context import Catalog
from catalog.errors import CatalogError, InvalidInput, Refused, StoreUnavailable

CATALOG = web.AppKey("catalog", Catalog)
PRINCIPAL = web.RequestKey("principal", Principal)
log = logging.getLogger("quanpai.catalog.api")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder()


def respond(data: Any, *, status: int = 200) -> web.Response:
    return web.Response(body=_encoder.encode(data), status=status,
                        content_type="application/json")


def error_body(exc: CatalogError) -> dict[str, Any]:
    body: dict[str, Any] = {"error": type(exc).__name__, "message": str(exc)}
    if isinstance(exc, InvalidInput):
        body.update(field=exc.field, message=exc.message)
    if isinstance(exc, Refused):
        body["reason"] = exc.reason
    return body


@web.middleware
async def errors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except CatalogError as exc:
        return respond(error_body(exc), status=exc.status)
    except (redis.ConnectionError, redis.TimeoutError, redis.BusyLoadingError) as exc:
        # retryable: every state change is one script, so nothing was half-applied
        unavailable = StoreUnavailable(f"Redis is unavailable ({exc}); retry shortly")
        return respond(error_body(unavailable), status=unavailable.status)
    except web.HTTPException as exc:
        if exc.status >= 400:
            return respond({"error": exc.reason, "message": exc.text or exc.reason},
                           status=exc.status)
        raise
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return respond({"error": "InternalError", "message": "the request failed; retry or "
                        "report it with the time of the request"}, status=500)


def catalog_of(request: web.Request) -> Catalog:
    return request.app[CATALOG]


_verified: dict[tuple[bytes, str], tuple[float, Principal]] = {}
_VERIFIED_MAX = 10_000
_VERIFIED_FOR = 60.0  # seconds a verified token is trusted without checking its tag again


def principal(request: web.Request) -> Principal:
    """The caller, from the bearer token (401 without a valid one).

    A POS sends the same token thousands of times; verified tokens are remembered for a minute
    (and never past their expiry) to keep the HMAC and JSON off every request."""
    found: Principal | None = request.get(PRINCIPAL)
    if found is not None:
        return found
    secret = catalog_of(request).secret
    key = (secret, request.headers.get("Authorization") or "")
    now = time.monotonic()
    cached = _verified.get(key)
    if cached is not None and cached[0] > now:
        found = cached[1]
    else:
        found = verify_token(key[1], secret=secret)
        if len(_verified) >= _VERIFIED_MAX:
            _verified.clear()
        _verified[key] = (now + min(_VERIFIED_FOR, found.expires - time.time()), found)
    request[PRINCIPAL] = found
    return found


async def json_body(request: web.Request) -> dict[str, Any]:
    raw = await request.read()
    try:
        data = _decoder.decode(raw) if raw else None
    except msgspec.DecodeError:
        raise InvalidInput("body", "not valid JSON") from None
    if not isinstance(data, dict):
        raise InvalidInput("body", "expected a JSON object")
    return data


def text_field(data: dict[str, Any], name: str, *, required: bool = True,
               default: str = "", limit: int = 64) -> str:
    value = data.get(name)
    if value is None:
        if required:
            raise InvalidInput(name, "required")
        return default
    if not isinstance(value, str) or not 0 < len(value) <= limit:
        raise InvalidInput(name, f"expected a string of 1-{limit} characters")
    return value


def int_field(data: dict[str, Any], name: str, *, required: bool = True, default: int = 0,
              minimum: int = 0) -> int:
    value = data.get(name)
    if value is None:
        if required:
            raise InvalidInput(name, "required")
        return default
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise InvalidInput(name, f"expected an integer >= {minimum}")
    return value


def bool_field(data: dict[str, Any], name: str) -> bool:
    value = data.get(name, False)
    if not isinstance(value, bool):
        raise InvalidInput(name, "expected true or false")
    return value


async def _health(request: web.Request) -> web.Response:
    await catalog_of(request).client.ping()  # type: ignore[misc]
    return respond({"status": "ok"})


def make_app(catalog: Catalog) -> web.Application:
    """The application; ``catalog`` is built by the composition root and closed by it."""
    from catalog import api_coupons, api_members, openapi

    app = web.Application(middlewares=[errors_middleware], client_max_size=1 << 20)
    app[CATALOG] = catalog
    app.router.add_get("/v1/health", _health)
    api_coupons.add_routes(app)
    api_members.add_routes(app)
    app.router.add_get("/v1/openapi.json", openapi.handler)

    async def events(app: web.Application) -> AsyncIterator[None]:
        try:
            await catalog.scripts.load_all()
        except redis.RedisError as exc:  # loaded on first use instead (EVALSHA falls back)
            log.warning("could not preload the catalog scripts: %s", exc)
        catalog.events.start()
        yield
        await catalog.events.stop()

    app.cleanup_ctx.append(events)
    return app
