"""``quanpai loader [--once]``: move events from the Redis stream into ClickHouse."""

from __future__ import annotations

import argparse
import os
import signal
import threading

from analytics.loader import drain, run_loader
from analytics.stream import StreamReader
from dispatcher.telemetry import StreamBacklog
from infra.clickhouse import make_clickhouse
from infra.metrics import add_collector
from infra.redis_client import make_redis
from infra.services import resolve_redis_url
from infra.settings import Settings


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("loader", help="load events from Redis into ClickHouse")
    parser.add_argument("--once", action="store_true", help="load what is there, then exit")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    client = make_redis(resolve_redis_url(settings))
    reader = StreamReader(client=client, stream=settings.events_stream,
                          consumer=f"loader-{os.getpid()}")
    ch = make_clickhouse(settings)
    add_collector(StreamBacklog(client=client, stream=settings.events_stream))
    try:
        if args.once:
            print(f"loaded {drain(reader=reader, ch=ch):,} events")
            return 0
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        signal.signal(signal.SIGINT, lambda *_: stop.set())
        print(f"loader running ({ch.kind})", flush=True)
        print(f"loaded {run_loader(reader=reader, ch=ch, stop=stop):,} events")
        return 0
    finally:
        ch.close()
