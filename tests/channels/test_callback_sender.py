"""The simulators' callback sender over real HTTP: callbacks due together share keep-alive
connections, a refused or unanswered push is retried after each delay, and a receiver that
never accepts ends in ``callback_gave_up``."""

from __future__ import annotations

import asyncio
from collections import Counter
from contextlib import AsyncExitStack

from aiohttp import web

from channels.simulators.common import Callback, CallbackSender, SimStats
from tests.channels.support import run, serving, wait_for


def _receiver(refuse_first: int) -> tuple[web.Application, Counter[bytes], set[int]]:
    """An app that answers 500 to its first ``refuse_first`` pushes, then 200; it counts the
    bodies it accepted and the client ports (one per connection) it saw."""
    accepted: Counter[bytes] = Counter()
    ports: set[int] = set()
    seen = {"n": 0}

    async def handle(request: web.Request) -> web.Response:
        body = await request.read()
        assert request.content_type == "application/json"
        peer = request.transport.get_extra_info("peername") if request.transport else None
        if peer:
            ports.add(peer[1])
        seen["n"] += 1
        if seen["n"] <= refuse_first:
            return web.Response(status=500)
        accepted[body] += 1
        return web.json_response({"code": 0})

    app = web.Application()
    app.router.add_post("/callbacks/x", handle)
    return app, accepted, ports


def _simulator(sender: CallbackSender) -> web.Application:
    """An application that runs ``sender`` for its lifetime, as the simulators do."""
    app = web.Application()
    app.cleanup_ctx.append(sender.context)
    return app


async def _send(sender: CallbackSender, url: str, n: int) -> list[bytes]:
    bodies = [b'{"n":%d}' % i for i in range(n)]
    for body in bodies:
        sender.push(Callback(url, body, "application/json"))
    return bodies


def test_callbacks_share_connections_and_are_retried() -> None:
    async def scenario() -> None:
        app, accepted, ports = _receiver(refuse_first=40)
        stats = SimStats()
        sender = CallbackSender(stats=stats, delay_s=0.01, retry_delays_s=(0.05, 0.05, 0.05),
                                connections=4)
        async with AsyncExitStack() as stack:
            url = await stack.enter_async_context(serving(app))
            await stack.enter_async_context(serving(_simulator(sender)))
            bodies = await _send(sender, url + "/callbacks/x", 300)

            async def done() -> bool:
                return stats.counts["callbacks_delivered"] >= 300

            await wait_for(done)
        assert set(accepted) == set(bodies)  # every push arrived, each accepted once
        assert all(count == 1 for count in accepted.values())
        assert stats.counts["callback_retries"] == 40
        assert not stats.errors
        assert len(ports) <= 8  # a few kept-alive connections, not one per push

    run(scenario)


def test_a_receiver_that_never_accepts_ends_in_gave_up() -> None:
    async def scenario() -> None:
        app, accepted, _ = _receiver(refuse_first=10**9)
        stats = SimStats()
        sender = CallbackSender(stats=stats, delay_s=0.01, retry_delays_s=(0.02, 0.02))
        async with AsyncExitStack() as stack:
            url = await stack.enter_async_context(serving(app))
            await stack.enter_async_context(serving(_simulator(sender)))
            await _send(sender, url + "/callbacks/x", 5)

            async def gave_up() -> bool:
                return stats.errors["callback_gave_up"] >= 5

            await wait_for(gave_up)
            await asyncio.sleep(0.1)  # nothing more is tried after giving up
        assert not accepted
        assert stats.counts["callback_retries"] == 15  # three attempts each
        assert stats.errors["callback_gave_up"] == 5

    run(scenario)


def test_no_callback_leaves_before_its_delay() -> None:
    """Callbacks share runs, yet each waits its full delay from its own push (a provider's
    notify must not overtake the reply the client is still recording)."""
    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        arrived: dict[bytes, float] = {}

        async def handle(request: web.Request) -> web.Response:
            arrived[await request.read()] = loop.time()
            return web.Response(text="success")

        app = web.Application()
        app.router.add_post("/cb", handle)
        stats = SimStats()
        sender = CallbackSender(stats=stats, delay_s=0.2)
        pushed: dict[bytes, float] = {}
        async with AsyncExitStack() as stack:
            url = await stack.enter_async_context(serving(app))
            await stack.enter_async_context(serving(_simulator(sender)))
            for i in range(20):
                body = b"%d" % i
                pushed[body] = loop.time()
                sender.push(Callback(url + "/cb", body, "text/plain"))
                await asyncio.sleep(0.02)

            # The receiver has a body before the sender has read the reply that counts it.
            async def done() -> bool:
                return len(arrived) == 20 and stats.counts["callbacks_delivered"] == 20

            await wait_for(done)
        assert min(arrived[b] - pushed[b] for b in pushed) >= 0.19
        assert stats.counts["callbacks_delivered"] == 20

    run(scenario)
