"""What every simulator shares: counters served at ``GET /_sim/stats``, fault injection, and the
background sender that pushes delivery callbacks to the configured URL.

Faults are drawn from a seeded generator so a test run is repeatable. Members "unsubscribed" or
numbers "invalid" are chosen by a stable hash of the address, so the same address gets the same
answer on every send and from every simulator process.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import zlib
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import asdict, dataclass, replace
from typing import Any

from aiohttp import ClientSession, ClientTimeout, web

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Faults:
    """Fault injection for one simulator. Shares are fractions in [0, 1]."""

    latency_ms: float = 0.0  # added to every business request
    error_share: float = 0.0  # answer HTTP 503
    timeout_share: float = 0.0  # hold the request for ``timeout_hold_s`` (the client times out)
    timeout_hold_s: float = 30.0
    quota_share: float = 0.0  # answer the provider's quota error
    system_error_share: float = 0.0  # "system busy": WeChat -1, isp.SYSTEM_ERROR, Alipay 20000
    unsubscribed_share: float = 0.0  # WeChat: 43004; Alipay: user does not exist
    invalid_share: float = 0.0  # SMS: accepted but the receipt says undeliverable
    duplicate_callback_share: float = 0.0  # push a receipt twice (at-least-once delivery)
    seed: int = 7


def address_in_share(address: str, share: float, salt: str) -> bool:
    """Stable choice of ``share`` of all addresses (same answer in every process)."""
    if share <= 0:
        return False
    return zlib.crc32(f"{salt}:{address}".encode()) % 10_000 < share * 10_000


class SimStats:
    """Counters of what a simulator accepted and refused, for tests and the demo."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.errors: Counter[str] = Counter()

    def add(self, name: str, n: int = 1) -> None:
        self.counts[name] += n

    def error(self, code: str | int) -> None:
        self.errors[str(code)] += 1

    def snapshot(self) -> dict[str, Any]:
        return {"counts": dict(self.counts), "errors": dict(self.errors)}


class FaultBox:
    """The faults in force; ``POST /_sim/faults`` replaces them while the simulator runs."""

    def __init__(self, faults: Faults) -> None:
        self.faults = faults


STATS = web.AppKey("sim_stats", SimStats)
FAULT_BOX = web.AppKey("sim_faults", FaultBox)
RANDOM = web.AppKey("sim_random", random.Random)


def faults_of(app: web.Application) -> Faults:
    return app[FAULT_BOX].faults


async def stats_handler(request: web.Request) -> web.Response:
    return web.json_response(request.app[STATS].snapshot())


async def faults_handler(request: web.Request) -> web.Response:
    """Replace the faults: a JSON object of ``Faults`` fields (others keep their value)."""
    try:
        body = await request.json()
    except ValueError:
        return web.json_response({"error": "expected a JSON object", "field": "body"}, status=400)
    if not isinstance(body, dict):
        return web.json_response({"error": "expected a JSON object", "field": "body"}, status=400)
    current = asdict(faults_of(request.app))
    for name, value in body.items():
        if name not in current:
            return web.json_response({"error": "unknown fault", "field": name}, status=400)
        if not isinstance(value, int | float) or isinstance(value, bool) or value < 0 or (
                name.endswith("_share") and value > 1):
            return web.json_response({"error": "expected a number (shares 0..1)",
                                      "field": name}, status=400)
    updated = replace(faults_of(request.app), **body)
    request.app[FAULT_BOX].faults = updated
    return web.json_response(asdict(updated))


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def fault_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Latency, 5xx and hung requests for everything except the ``/_sim`` endpoints."""
    if request.path.startswith("/_sim"):
        return await handler(request)
    faults, rng, stats = faults_of(request.app), request.app[RANDOM], request.app[STATS]
    if faults.latency_ms > 0:
        await asyncio.sleep(faults.latency_ms / 1000)
    draw = rng.random()
    if draw < faults.error_share:
        stats.error("http_503")
        return web.json_response({"error": "service unavailable"}, status=503)
    if draw < faults.error_share + faults.timeout_share:
        stats.error("timeout")
        # The request has arrived whole: a slow provider still acts on it after the client
        # gave up, which is what makes a timed-out SMS send ambiguous.
        await request.read()
        await asyncio.sleep(faults.timeout_hold_s)
    return await handler(request)


def base_app(faults: Faults) -> web.Application:
    """An application with stats, faults and the ``/_sim/stats`` route installed."""
    app = web.Application(middlewares=[fault_middleware], client_max_size=16 * 2**20)
    app[STATS] = SimStats()
    app[FAULT_BOX] = FaultBox(faults)
    app[RANDOM] = random.Random(faults.seed)
    app.router.add_get("/_sim/stats", stats_handler)
    app.router.add_post("/_sim/faults", faults_handler)
    return app


@dataclass(frozen=True)
class Callback:
    """One HTTP push: ``body`` as bytes with its content type, to ``url``."""

    url: str
    body: bytes
    content_type: str


class CallbackSender:
    """Pushes callbacks after ``delay_s``, retrying per ``retry_delays_s`` like the providers do."""

    def __init__(self, *, stats: SimStats, delay_s: float = 0.05,
                 retry_delays_s: tuple[float, ...] = (0.2, 0.5, 1.0)) -> None:
        self._stats = stats
        self._delay_s = delay_s
        self._retry_delays_s = retry_delays_s
        self._queue: asyncio.Queue[Callback] = asyncio.Queue()
        self._tasks: set[asyncio.Task[None]] = set()

    def push(self, callback: Callback) -> None:
        self._queue.put_nowait(callback)

    async def _deliver(self, session: ClientSession, callback: Callback) -> None:
        for attempt, pause in enumerate((self._delay_s, *self._retry_delays_s)):
            await asyncio.sleep(pause)
            try:
                async with session.post(callback.url, data=callback.body,
                                        headers={"Content-Type": callback.content_type}) as resp:
                    await resp.read()
                    if resp.status == 200:
                        self._stats.add("callbacks_delivered")
                        return
            except (TimeoutError, OSError) as exc:
                log.debug("callback attempt %d failed: %s", attempt, exc)
            self._stats.add("callback_retries")
        self._stats.error("callback_gave_up")

    async def _run(self) -> None:
        async with ClientSession(timeout=ClientTimeout(total=5)) as session:
            while True:
                callback = await self._queue.get()
                task = asyncio.create_task(self._deliver(session, callback))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)

    async def context(self, app: web.Application) -> AsyncIterator[None]:
        """``cleanup_ctx`` entry: run the sender for the application's lifetime."""
        runner = asyncio.create_task(self._run())
        yield
        runner.cancel()
        for task in list(self._tasks):
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await runner
