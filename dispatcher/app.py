"""The one HTTP app (``quanpai serve``): composition root of the API process.

Each package offers its routes through one function and this module mounts them, one line each
(see docs/architecture.md, "Adding routes"); no domain package imports another's routes or this
module. ``build_app`` builds the clients from settings and closes them on shutdown; ``compose``
mounts the routes on services already built (tests pass their own, with a fixed clock).
"""

from __future__ import annotations

from typing import Any

import redis
from aiohttp import web

from catalog.context import AsyncClient, Catalog
from dispatcher.launch import LaunchDeps
from dispatcher.operations import build_launch_deps
from infra.http_api import create_app
from infra.openapi import add_openapi
from infra.redis_client import make_async_redis
from infra.settings import Settings

# what means "a backing store is down": answered 503 (retry), never 500
UNAVAILABLE: tuple[type[BaseException], ...] = (
    redis.ConnectionError, redis.TimeoutError, redis.BusyLoadingError)
DESCRIPTION = ("Coupons, 到手价 pricing, 核销, stored value and points, campaigns and ROI. "
               "Money in integer fen, rates in permille. Send Authorization: Bearer <token> "
               "(quanpai serve --print-token ROLE).")


def compose(*, secret: bytes, catalog: Catalog,
            campaigns: LaunchDeps | None = None) -> web.Application:
    """The app with every package's routes mounted, on services built by the caller."""
    from catalog.api import add_routes as catalog_routes
    from dispatcher.api import add_campaign_routes

    app = create_app(secret=secret, unavailable=UNAVAILABLE)
    catalog_routes(app, catalog=catalog)
    if campaigns is not None:
        add_campaign_routes(app, launch=campaigns)
    add_openapi(app, title="Quanpai API", version="1", description=DESCRIPTION)
    return app


def build_app(settings: Settings, *, redis_url: str, cluster: bool = False) -> web.Application:
    """The app with its clients built from ``settings`` (closed on shutdown)."""
    import redis.asyncio

    from analytics.stream import RedisStreamSink

    client: AsyncClient
    if cluster:
        from redis.asyncio.cluster import RedisCluster

        client = RedisCluster.from_url(redis_url)
        sync_client: Any = redis.RedisCluster.from_url(redis_url)
    else:
        # a bounded pool sized by QUANPAI_REDIS_POOL: a burst waits for a connection instead
        # of failing with "Too many connections"; dead connections are retried on fresh ones
        client = make_async_redis(redis_url, max_connections=settings.redis_pool_size)
        sync_client = redis.Redis.from_url(redis_url)
    secret = settings.secret_key.encode()
    sink = RedisStreamSink(client=sync_client, stream=settings.events_stream)
    catalog = Catalog(client=client, secret=secret, tz=settings.timezone, sink=sink)
    app = compose(secret=secret, catalog=catalog,
                  campaigns=build_launch_deps(settings, redis_url=redis_url))

    async def close(_: web.Application) -> None:
        await client.aclose()
        sync_client.close()

    app.on_cleanup.append(close)
    return app
