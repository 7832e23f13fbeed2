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
from collections import Counter, deque
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import asdict, dataclass, replace
from typing import Any

from aiohttp import web

from channels.transport import Http1Pool, RequestFrame, origin_of, pipelining_allowed

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
    """Pushes callbacks after ``delay_s``, retrying per ``retry_delays_s`` like the providers do.

    Callbacks that fall due together go out as one run over ``connections`` keep-alive
    connections per receiver (pipelined on loopback, ``channels.transport``) instead of one
    general client request each: a campaign makes a push per Alipay voucher, and the general
    client's request setup, not the receiver, was most of the simulator's CPU per push."""

    # Providers push a receipt after delivering, seconds after their reply. 0.2 s: a client on
    # a loaded machine records a batch's receipts only after reading every reply, and a receipt
    # that finds no record is refused (503) and pushed again after the retry delays.
    def __init__(self, *, stats: SimStats, delay_s: float = 0.2,
                 retry_delays_s: tuple[float, ...] = (0.2, 0.5, 1.0), connections: int = 8,
                 timeout_s: float = 5.0) -> None:
        self._stats = stats
        self._delay_s = delay_s
        self._retry_delays_s = retry_delays_s
        self._connections = connections
        self._timeout_s = timeout_s
        # (when due, callback), in the order pushed: due times only grow.
        self._due: deque[tuple[float, Callback]] = deque()
        self._pushed = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        self._pools: dict[str, tuple[Http1Pool, str]] = {}
        self._frames: dict[tuple[str, str], RequestFrame] = {}

    def push(self, callback: Callback) -> None:
        """Send ``callback`` ``delay_s`` from now (called on the running loop)."""
        self._due.append((asyncio.get_running_loop().time() + self._delay_s, callback))
        self._pushed.set()

    def _framed(self, callback: Callback) -> tuple[Http1Pool, bytes]:
        """The pool for the callback's receiver and the whole request for it."""
        found = self._pools.get(callback.url)
        if found is None:
            origin = origin_of(callback.url)
            pool = Http1Pool(origin, size=self._connections, timeout_s=self._timeout_s,
                             pipelining=pipelining_allowed(callback.url))
            target = callback.url[len(origin):] or "/"
            found = self._pools[callback.url] = (pool, target)
        pool, target = found
        frame = self._frames.get((callback.url, callback.content_type))
        if frame is None:
            frame = self._frames[callback.url, callback.content_type] = pool.frame(
                target, callback.content_type)
        return pool, frame.build(b"", callback.body)

    async def _deliver(self, callbacks: list[Callback], attempt: int) -> None:
        """One attempt for each of ``callbacks``; those refused or unanswered try again
        after the next retry delay, until the delays run out."""
        by_pool: dict[Http1Pool, list[tuple[Callback, bytes]]] = {}
        for callback in callbacks:
            pool, data = self._framed(callback)
            by_pool.setdefault(pool, []).append((callback, data))
        failed: list[Callback] = []
        for pool, items in by_pool.items():
            replies = await pool.pipeline([data for _, data in items],
                                          connections=self._connections)
            for (callback, _), reply in zip(items, replies, strict=True):
                if isinstance(reply, tuple) and reply[0] == 200:
                    self._stats.add("callbacks_delivered")
                    continue
                log.debug("callback attempt %d failed: %s", attempt, reply)
                self._stats.add("callback_retries")
                failed.append(callback)
        if not failed:
            return
        if attempt >= len(self._retry_delays_s):
            for _ in failed:
                self._stats.error("callback_gave_up")
            return
        await asyncio.sleep(self._retry_delays_s[attempt])
        await self._deliver(failed, attempt + 1)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            if not self._due:
                self._pushed.clear()
                await self._pushed.wait()
                continue
            pause = self._due[0][0] - loop.time()
            if pause > 0:
                await asyncio.sleep(pause)
            # Every callback already due goes in this run; none leaves before its time.
            now, due = loop.time(), []
            while self._due and self._due[0][0] <= now:
                due.append(self._due.popleft()[1])
            task = asyncio.create_task(self._deliver(due, 0))
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
        for pool, _ in self._pools.values():
            pool.close()
