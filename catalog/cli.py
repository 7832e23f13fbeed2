"""``quanpai serve``: the catalog HTTP API (aiohttp on uvloop), composition root of the API process.

    quanpai serve [--host H] [--port P] [--workers N]
    quanpai serve --print-token cashier --store S001     # mint a bearer token and exit

``--workers N`` runs N processes sharing the port (SO_REUSEPORT); each builds its own clients.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from typing import Any

from infra.cli_support import UsageError
from infra.settings import Settings


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("serve", help="run the catalog HTTP API")
    parser.add_argument("--host", default=None, help="bind address (default: settings api_host)")
    parser.add_argument("--port", type=int, default=None, help="port (default: settings api_port)")
    parser.add_argument("--workers", type=int, default=1, help="processes sharing the port")
    parser.add_argument("--redis-cluster", action="store_true",
                        help="REDIS_URL names a node of a Redis Cluster")
    parser.add_argument("--print-token", metavar="ROLE", default=None,
                        help="print a bearer token for ROLE (operator, cashier, printer, member)")
    parser.add_argument("--store", default="", help="store of a cashier or printer token")
    parser.add_argument("--member", default="", help="member of a member token")
    parser.set_defaults(func=run)


def build_app(settings: Settings, *, redis_url: str, cluster: bool = False) -> Any:
    """The aiohttp application with its clients (closed on shutdown)."""
    import redis
    import redis.asyncio
    from aiohttp import web

    from analytics.stream import RedisStreamSink
    from catalog.api import make_app
    from catalog.context import AsyncClient, Catalog

    client: AsyncClient
    if cluster:
        from redis.asyncio.cluster import RedisCluster

        client = RedisCluster.from_url(redis_url)
        sync_client: Any = redis.RedisCluster.from_url(redis_url)
    else:
        # an unbounded pool never fails a burst (connections are opened as needed and kept);
        # the blocking pool's condition and timer cost more CPU per command than a quote's
        # whole wallet decode
        pool = redis.asyncio.ConnectionPool.from_url(redis_url)
        client = redis.asyncio.Redis(connection_pool=pool)
        sync_client = redis.Redis.from_url(redis_url)
    sink = RedisStreamSink(client=sync_client, stream=settings.events_stream)
    catalog = Catalog(client=client, secret=settings.secret_key.encode(), tz=settings.timezone,
                      sink=sink)
    app = make_app(catalog)

    async def close(_: web.Application) -> None:
        await client.aclose()
        sync_client.close()

    app.on_cleanup.append(close)
    return app


def _serve(settings: Settings, host: str, port: int, redis_url: str, cluster: bool,
           reuse_port: bool) -> None:
    import uvloop
    from aiohttp import web

    uvloop.install()
    app = build_app(settings, redis_url=redis_url, cluster=cluster)
    web.run_app(app, host=host, port=port, reuse_port=reuse_port, access_log=None,
                print=None, handle_signals=True)


def run(args: argparse.Namespace, settings: Settings) -> int:
    if args.print_token:
        from catalog.auth import mint_token
        from catalog.errors import InvalidInput

        try:
            print(mint_token(secret=settings.secret_key.encode(), role=args.print_token,
                             merchant_id=settings.merchant_id, store_id=args.store,
                             member_id=args.member))
        except InvalidInput as exc:
            raise UsageError(f"--{exc.field.split('_')[0]}: {exc.message}") from None
        return 0
    if args.workers < 1:
        raise UsageError("--workers must be at least 1")
    from infra.services import resolve_redis_url

    redis_url = resolve_redis_url(settings)
    host = args.host or settings.api_host
    port = settings.api_port if args.port is None else args.port
    print(f"catalog API on http://{host}:{port} ({args.workers} worker(s))", file=sys.stderr)
    if args.workers == 1:
        _serve(settings, host, port, redis_url, args.redis_cluster, False)
        return 0
    children = []
    for _ in range(args.workers):
        pid = os.fork()
        if pid == 0:
            try:
                _serve(settings, host, port, redis_url, args.redis_cluster, True)
            finally:
                os._exit(0)
        children.append(pid)

    def stop(signum: int, _frame: Any) -> None:
        for child in children:
            os.kill(child, signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    for child in children:
        while True:
            try:
                os.waitpid(child, 0)
                break
            except ChildProcessError:
                break
            except InterruptedError:
                continue
    return 0


__all__ = ["build_app", "register", "run"]
