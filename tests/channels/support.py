"""Helpers for the channel tests: serve an aiohttp app on a free loopback port inside the
test's own event loop, and read a simulator's ``/_sim/stats``."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import aiohttp
from aiohttp import web

T = TypeVar("T")


def run(scenario: Callable[[], Awaitable[T]]) -> T:
    """Run an async test body in a fresh event loop."""
    return asyncio.run(scenario())  # type: ignore[arg-type]


@asynccontextmanager
async def serving(app: web.Application) -> AsyncIterator[str]:
    """Serve ``app`` on 127.0.0.1 and a free port; yields the base URL."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    server = site._server
    assert server is not None
    port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


async def sim_stats(session: aiohttp.ClientSession, base_url: str) -> dict[str, Any]:
    async with session.get(base_url.rstrip("/").removesuffix("/gateway.do") + "/_sim/stats") as r:
        assert r.status == 200
        data: dict[str, Any] = await r.json()
        return data


async def wait_for(predicate: Callable[[], Awaitable[bool]], timeout_s: float = 30.0) -> None:
    """Poll ``predicate`` until true; fail the test after ``timeout_s`` (generous: a busy
    machine delays callbacks by seconds, and a passing test returns as soon as it holds)."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not await predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.02)
