"""The one HTTP app (``quanpai serve``): composition root of the API process.

Each package offers its routes through one function and this module mounts them, one line each
(see docs/architecture.md, "Adding routes"); no domain package imports another's routes or this
module. ``build_app`` builds the clients from settings and closes them on shutdown; ``compose``
mounts the routes on services already built (tests pass their own, with a fixed clock).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import redis
from aiohttp import web

from catalog.context import AsyncClient, Catalog
from dispatcher.launch import LaunchDeps
from dispatcher.operations import build_launch_deps
from infra.errors import SettingsError
from infra.http_api import create_app
from infra.openapi import add_openapi
from infra.ops_http import add_operations, clickhouse_check
from infra.redis_client import make_async_redis
from infra.settings import Settings
from infra.web_session import SessionRevocations
from segmentation.api import SegmentService

if TYPE_CHECKING:
    from analytics.api import RoiService

# what means "a backing store is down": answered 503 (retry), never 500
UNAVAILABLE: tuple[type[BaseException], ...] = (
    redis.ConnectionError, redis.TimeoutError, redis.BusyLoadingError)
DESCRIPTION = ("Coupons, 到手价 pricing, 核销, stored value and points, campaigns and ROI. "
               "Money in integer fen, rates in permille. Send Authorization: Bearer <token> "
               "(quanpai serve --print-token ROLE).")


def compose(*, secret: bytes, catalog: Catalog,
            campaigns: LaunchDeps | None = None,
            segments: SegmentService | None = None,
            roi: RoiService | None = None,
            schedule_data: dict[str, Any] | None = None) -> web.Application:
    """The app with every package's routes mounted, on services built by the caller."""
    from catalog.api import add_routes as catalog_routes
    from console.routes import add_routes as console_routes
    from dispatcher.api import add_campaign_routes
    from segmentation.api import add_routes as segment_routes

    sessions = SessionRevocations(client=catalog.client)
    app = create_app(secret=secret, unavailable=UNAVAILABLE, sessions=sessions)
    catalog_routes(app, catalog=catalog)
    if campaigns is not None:
        add_campaign_routes(app, launch=campaigns)
        from dispatcher.scheduler.api import add_schedule_routes

        add_schedule_routes(app, client=campaigns.client, timezone=campaigns.timezone,
                            default_data=schedule_data)
    if segments is not None:
        segment_routes(app, service=segments)
    console_routes(app, secret=secret, timezone=str(catalog.tz), sessions=sessions)
    if roi is not None:
        from analytics.api import add_roi_routes

        add_roi_routes(app, service=roi)
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
    catalog = Catalog(client=client, secret=secret, tz=settings.timezone, sink=sink,
                      stream=settings.events_stream)
    segments = segment_service(settings, sync_client)
    app = compose(secret=secret, catalog=catalog,
                  campaigns=build_launch_deps(settings, redis_url=redis_url), segments=segments,
                  roi=roi_service(settings), schedule_data=segment_data(settings))
    add_operations(app, checks={"redis": client.ping,
                                "clickhouse": clickhouse_check(settings.clickhouse_url)})

    async def close(_: web.Application) -> None:
        await client.aclose()
        sync_client.close()
        if segments.clickhouse is not None:
            segments.clickhouse.close()

    app.on_cleanup.append(close)
    return app


def segment_service(settings: Settings, sync_client: Any) -> SegmentService:
    """The /v1/segments service: the rules file of QUANPAI_SEGMENT_RULES (its data), tags on
    the catalog's Redis, and the catalog's coupon facts for coupon conditions."""
    import pandas as pd

    from catalog.holdings import coupon_facts
    from segmentation.errors import SegmentationError
    from segmentation.rules import load_rules
    from segmentation.tags import RedisTags

    rules = None
    clickhouse = None
    if settings.segment_rules is not None:
        try:
            rules = load_rules(settings.segment_rules)
        except SegmentationError as exc:
            raise SettingsError(f"QUANPAI_SEGMENT_RULES: {exc}") from None
        members = rules.members
        if rules.transactions.clickhouse_table or (members and members.clickhouse_table):
            from infra.chdb_service import open_clickhouse

            clickhouse = open_clickhouse(settings)
    return SegmentService(
        merchant_id=settings.merchant_id, rules=rules,
        tags=RedisTags(client=sync_client, merchant_id=settings.merchant_id),
        snapshots=settings.var_dir / "snapshots", clickhouse=clickhouse,
        coupon_facts=lambda: pd.DataFrame(coupon_facts(sync_client, settings.merchant_id)))


def segment_data(settings: Settings) -> dict[str, Any] | None:
    """The ``transactions`` and ``members`` of the segment rules file (paths made absolute):
    the data a schedule made in the console reads, the same the segment pages count."""
    if settings.segment_rules is None:
        return None
    import yaml

    from infra.textfiles import read_text

    raw = yaml.safe_load(read_text(settings.segment_rules))  # checked by segment_service
    folder = settings.segment_rules.resolve().parent
    data = {}
    for key in ("transactions", "members"):
        spec = raw.get(key) if isinstance(raw, dict) else None
        if isinstance(spec, dict):
            if "path" in spec:
                spec = {**spec, "path": str(folder / str(spec["path"]))}
            data[key] = spec
    return data


def roi_service(settings: Settings) -> RoiService:
    """The ROI route's ClickHouse (opened per request) and configuration, from ``settings``."""
    from analytics.api import RoiService
    from analytics.report import roi_config
    from dispatcher.commands.roi import campaign_infos, send_prices
    from infra.chdb_service import open_clickhouse

    return RoiService(open_clickhouse=lambda: open_clickhouse(settings),
                      config=roi_config(settings, send_price_fen=send_prices(settings)),
                      campaigns=lambda: campaign_infos(settings))
