"""The catalog's part of the HTTP API: its routes, offered to the composition root.

``add_routes(app, catalog=...)`` mounts the coupon routes (``api_coupons``: templates, issuance,
wallet, quote, redemption) and the member routes (``api_members``: stored value, points, claims,
payments, gift transfers, rules) on an app made by ``infra.http_api.create_app``. The bodies are
the typed models of ``api_models``; the generic part (bearer tokens, roles, decoding, JSON
errors, OpenAPI) is ``infra``'s. Nothing is half-applied because each state change is one Redis
script.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import redis
from aiohttp import web

from catalog.api_models import HealthOut
from catalog.context import Catalog
from infra.http_api import Route, respond
from infra.http_api import add_routes as mount

CATALOG = web.AppKey("catalog", Catalog)
log = logging.getLogger("quanpai.catalog.api")


def catalog_of(request: web.Request) -> Catalog:
    return request.app[CATALOG]


async def health(request: web.Request) -> web.Response:
    await catalog_of(request).client.ping()  # type: ignore[misc]
    return respond(HealthOut(status="ok"))


def add_routes(app: web.Application, *, catalog: Catalog) -> None:
    """Mount every catalog route; ``catalog`` is built and closed by the composition root."""
    from catalog import api_coupons, api_members, api_print

    app[CATALOG] = catalog
    mount(app, [Route("GET", "/v1/health", health, "Liveness: Redis answers a ping",
                      responses={200: HealthOut}, tags=("meta",))])
    mount(app, api_coupons.ROUTES)
    mount(app, api_members.ROUTES)
    mount(app, api_print.ROUTES)

    async def events(app: web.Application) -> AsyncIterator[None]:
        try:
            await catalog.scripts.load_all()
        except redis.RedisError as exc:  # loaded on first use instead (EVALSHA falls back)
            log.warning("could not preload the catalog scripts: %s", exc)
        catalog.events.start()
        yield
        await catalog.events.stop()

    app.cleanup_ctx.append(events)
