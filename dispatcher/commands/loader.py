"""``quanpai loader [--once | status | expire]``: move events from the Redis stream into
ClickHouse.

The running loader owns the embedded chDB and answers other processes' queries over its socket
(``infra.chdb_service``), and runs the catalog's expiry sweep at start and every hour.
``status`` shows what waits in Redis and the loader's last error; it exits 1 when the loader
reported an error on its last attempt. ``expire`` runs the expiry sweep now.
"""

from __future__ import annotations

import argparse
import signal
import socket
import threading
import time
from datetime import datetime

import redis

from analytics.loader import drain, loader_status, run_loader, status_key
from analytics.stream import StreamReader
from dispatcher.telemetry import StreamBacklog
from infra.chdb_service import open_clickhouse
from infra.metrics import add_collector
from infra.redis_client import make_redis
from infra.services import resolve_redis_url
from infra.settings import Settings


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("loader", help="load events from Redis into ClickHouse")
    parser.add_argument("--once", action="store_true", help="load what is there, then exit")
    actions = parser.add_subparsers(dest="action")
    status = actions.add_parser("status", help="events waiting in Redis, the loader's last error")
    status.set_defaults(func=show_status)
    expire = actions.add_parser("expire", help="emit expired events for lapsed coupons now")
    expire.set_defaults(func=run_expire)
    parser.set_defaults(func=run)


def _reader(settings: Settings) -> tuple[StreamReader, redis.Redis]:
    client = make_redis(resolve_redis_url(settings))
    # one stable consumer per host: a restarted loader finds its own unacknowledged entries
    reader = StreamReader(client=client, stream=settings.events_stream,
                          consumer=f"loader-{socket.gethostname()}")
    return reader, client


def run(args: argparse.Namespace, settings: Settings) -> int:
    reader, client = _reader(settings)
    ch = open_clickhouse(settings)
    add_collector(StreamBacklog(reader=reader))
    try:
        if args.once:
            print(f"loaded {drain(reader=reader, ch=ch, kill_at=settings.test_kill_at):,} "
                  "events")
            return 0
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        signal.signal(signal.SIGINT, lambda *_: stop.set())
        threading.Thread(target=_expire_hourly, args=(settings, client, stop),
                         name="expiry-sweep", daemon=True).start()
        print(f"loader running ({ch.kind})", flush=True)
        total = run_loader(reader=reader, ch=ch, stop=stop, client=client,
                           stream=settings.events_stream,
                           reconnect=lambda: open_clickhouse(settings),
                           kill_at=settings.test_kill_at)
        print(f"loaded {total:,} events")
        return 0
    finally:
        ch.close()


def _sweep(settings: Settings, client: redis.Redis) -> int:
    from analytics.stream import RedisStreamSink
    from catalog.expiry import sweep_expired

    return sweep_expired(client=client, sink=RedisStreamSink(client=client,
                                                             stream=settings.events_stream),
                         merchant_id=settings.merchant_id,
                         today=datetime.now(settings.timezone).date(), tz=settings.timezone)


def _expire_hourly(settings: Settings, client: redis.Redis, stop: threading.Event) -> None:
    """The expiry sweep beside the loader: at start, then every hour (errors wait an hour)."""
    while not stop.is_set():
        try:
            _sweep(settings, client)
        except (redis.RedisError, OSError) as exc:
            client.hset(status_key(settings.events_stream), "expiry_error", str(exc)[:300])
        stop.wait(3600)


def run_expire(args: argparse.Namespace, settings: Settings) -> int:
    _, client = _reader(settings)
    print(f"emitted {_sweep(settings, client):,} expired events")
    return 0


def show_status(args: argparse.Namespace, settings: Settings) -> int:
    reader, client = _reader(settings)
    status = loader_status(reader=reader, client=client,
                           stream=settings.events_stream)
    b, state = status.backlog, status.state
    age = f"{time.time() - b.oldest_ms / 1000:,.0f}s" if b.oldest_ms else "-"
    print(f"waiting in Redis: {b.entries:,} entries ({b.pending:,} delivered, not acknowledged);"
          f" oldest {age}")
    if state:
        last_ok = int(state.get("last_ok", "0") or 0)
        print(f"loader pid {state.get('pid', '?')} ({state.get('clickhouse', '?')}): "
              f"loaded {int(state.get('loaded', '0') or 0):,} events; last success "
              f"{time.time() - last_ok:,.0f}s ago" if last_ok else "loader: no success yet")
    else:
        print("loader: never ran against this stream")
    error = state.get("last_error", "")
    if error:
        print(f"last error: {error}")
        return 1
    return 0
