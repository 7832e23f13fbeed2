"""Composition root of a worker process: builds its clients from settings, runs Dramatiq.

One process runs ``threads`` actor threads sharing one asyncio loop (channel HTTP clients) and
one Redis connection pool. ``--processes N`` starts N such processes.
"""

from __future__ import annotations

import signal
import threading
from dataclasses import dataclass
from types import FrameType

import aiohttp
import dramatiq

from channels.base import Channel
from channels.factory import build_channels
from dispatcher.actors import MAX_RETRIES, BatchProcessor, WorkerDeps, register_actors
from dispatcher.async_runner import AsyncRunner
from dispatcher.broker import HEARTBEAT_TIMEOUT_MS, MAINTENANCE_CHANCE, make_broker
from dispatcher.campaigns import CampaignStore
from dispatcher.killpoints import KillPoints
from dispatcher.telemetry import (
    BatchLogContext,
    CountingStreamSink,
    metered,
    prometheus_middleware,
)
from infra.redis_client import make_async_redis, make_redis
from infra.services import resolve_broker_url, resolve_redis_url
from infra.settings import Settings


@dataclass
class WorkerProcess:
    worker: dramatiq.Worker
    runner: AsyncRunner
    session: aiohttp.ClientSession

    def stop(self) -> None:
        self.worker.stop(timeout=30_000)
        self.runner.run(self.session.close())
        self.runner.close()


def start_worker(
    settings: Settings, *, threads: int = 8, heartbeat_timeout_ms: int = HEARTBEAT_TIMEOUT_MS,
    maintenance_chance: int = MAINTENANCE_CHANCE, max_retries: int = MAX_RETRIES,
) -> WorkerProcess:
    """Build everything a worker needs and start consuming; returns a handle to stop it.

    The worker prefetches one batch per thread (Dramatiq's default is two): batches a
    crashed worker had prefetched wait for the heartbeat timeout before another worker takes
    them back, so fewer of them means faster recovery."""
    redis_url = resolve_redis_url(settings)
    client = make_redis(redis_url)
    runner = AsyncRunner()

    async def open_clients() -> tuple[aiohttp.ClientSession, dict[str, Channel]]:
        session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=200, keepalive_timeout=60)
        )
        channels = build_channels(settings, session=session, redis=make_async_redis(redis_url))
        return session, channels

    session, channels = runner.run(open_clients())
    deps = WorkerDeps(
        redis=client,
        campaigns=CampaignStore(client=client),
        events=CountingStreamSink(client=client, stream=settings.events_stream),
        channels=metered(channels),
        runner=runner,
        secret=settings.secret_key.encode(),
        timezone=settings.timezone,
        kill=KillPoints(settings.test_kill_at),
        lease_ms=heartbeat_timeout_ms,
    )
    broker = make_broker(resolve_broker_url(settings, redis_url=redis_url),
                         heartbeat_timeout_ms=heartbeat_timeout_ms,
                         maintenance_chance=maintenance_chance)
    broker.add_middleware(BatchLogContext())
    if (prometheus := prometheus_middleware()) is not None:
        broker.add_middleware(prometheus)
    register_actors(broker, processor=BatchProcessor(deps=deps), max_retries=max_retries)
    broker.emit_after("process_boot")
    worker = dramatiq.Worker(broker, worker_threads=threads, worker_timeout=500)
    worker.queue_prefetch = threads
    worker.delay_prefetch = threads * 10
    worker.start()
    return WorkerProcess(worker=worker, runner=runner, session=session)


def run_until_signalled(
    settings: Settings, *, threads: int, heartbeat_timeout_ms: int, maintenance_chance: int,
    max_retries: int = MAX_RETRIES,
) -> None:
    """Run a worker until SIGTERM or SIGINT, then finish the batches in hand and stop."""
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    process = start_worker(settings, threads=threads, heartbeat_timeout_ms=heartbeat_timeout_ms,
                           maintenance_chance=maintenance_chance, max_retries=max_retries)
    print("worker ready", flush=True)
    stop.wait()
    process.stop()


