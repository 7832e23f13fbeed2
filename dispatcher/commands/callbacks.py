"""``quanpai callbacks [--host H] [--port P]``: receive provider delivery callbacks.

Aliyun SmsReport pushes, WeChat TEMPLATESENDJOBFINISH / MASSSENDJOBFINISH events and Alipay
notifies arrive here (signatures checked by ``channels.callbacks``) and leave as ``delivered`` /
``failed`` events on the Redis stream, like every other event.
"""

from __future__ import annotations

import argparse

from aiohttp import web

from analytics.stream import RedisStreamSink
from channels.callbacks import add_routes
from channels.factory import build_callback_receiver
from dispatcher.receipt_counts import ReceiptCountingSink
from dispatcher.telemetry import CountingSink
from infra.cli_support import UsageError
from infra.redis_client import make_async_redis, make_redis
from infra.services import resolve_redis_url
from infra.settings import Settings


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("callbacks", help="receive provider delivery callbacks")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8090)
    parser.set_defaults(func=run)


def build_app(settings: Settings) -> web.Application:
    redis_url = resolve_redis_url(settings)
    # A failed delivery receipt is not a failed send: counted apart.
    client = make_redis(redis_url)
    sink = CountingSink(ReceiptCountingSink(
        client=client, events=RedisStreamSink(client=client, stream=settings.events_stream)),
        rename={"failed": "undelivered"})
    app = web.Application()
    receiver = build_callback_receiver(settings, redis=make_async_redis(redis_url), sink=sink)
    add_routes(app, receiver)
    return app


def run(args: argparse.Namespace, settings: Settings) -> int:
    if not 0 < args.port <= 65535:
        raise UsageError(f"--port {args.port}: expected a port between 1 and 65535")
    app = build_app(settings)
    print(f"callbacks on http://{args.host}:{args.port}", flush=True)
    web.run_app(app, host=args.host, port=args.port, print=None, access_log=None)
    return 0
