"""Catalog fixtures: the catalog API served on a loopback port (over one Redis or the session's
three-master Redis Cluster from tests/conftest.py) with an injectable clock."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable, Iterator
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
import pytest
import redis
import redis.asyncio
from aiohttp import web
from redis.cluster import RedisCluster

from analytics.stream import RedisStreamSink
from catalog.context import Catalog
from dispatcher.app import compose
from infra.ports import free_port
from infra.redis_server import RedisServer
from infra.tokens import mint_bearer

SECRET = b"test-secret"


@pytest.fixture
def cluster_client(redis_cluster_nodes: list[RedisServer]) -> Iterator[RedisCluster]:
    client = RedisCluster(host="127.0.0.1", port=redis_cluster_nodes[0].port)
    client.flushall(target_nodes=RedisCluster.PRIMARIES)
    yield client
    client.close()


class Clock:
    """The API's notion of now; tests move it to cross days (expiry, daily limits)."""

    def __init__(self) -> None:
        self.now = datetime(2026, 11, 23, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai"))

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


class ApiServer:
    """``quanpai serve``'s application on a real loopback port, in a thread of its own."""

    def __init__(self, *, client_factory: Any, sync_client: Any, merchant: str = "m1") -> None:
        self.merchant = merchant
        self.clock = Clock()
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._client_factory = client_factory
        self._sync_client = sync_client
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.catalog: Catalog | None = None

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._start())
        self._ready.set()
        self._loop.run_forever()

    async def _start(self) -> None:
        sink = RedisStreamSink(client=self._sync_client, stream="quanpai:events")
        self.catalog = Catalog(client=self._client_factory(), secret=SECRET,
                               tz=ZoneInfo("Asia/Shanghai"), sink=sink, template_ttl=0.0,
                               clock=self.clock, stream="quanpai:events")
        self.runner = web.AppRunner(compose(secret=SECRET, catalog=self.catalog),
                                    access_log=None)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.port).start()

    def start(self) -> ApiServer:
        self._thread.start()
        assert self._ready.wait(20), "API server did not start"
        return self

    def stop(self) -> None:
        async def shutdown() -> None:
            await self.runner.cleanup()
            assert self.catalog is not None
            await self.catalog.client.aclose()

        asyncio.run_coroutine_threadsafe(shutdown(), self._loop).result(20)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def token(self, role: str, *, store: str = "", member: str = "", merchant: str = "") -> str:
        return mint_bearer(secret=SECRET, role=role, merchant_id=merchant or self.merchant,
                          store_id=store, member_id=member)


class Http:
    """A tiny JSON client over aiohttp with a bearer token; returns (status, body)."""

    def __init__(self, session: aiohttp.ClientSession, base: str, token: str = "") -> None:
        self.session, self.base, self.token = session, base, token

    def as_(self, token: str) -> Http:
        return Http(self.session, self.base, token)

    async def __call__(self, method: str, path: str, body: Any = None,
                       headers: dict[str, str] | None = None) -> tuple[int, Any]:
        sent = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        sent.update(headers or {})
        async with self.session.request(method, self.base + path, json=body,
                                        headers=sent) as resp:
            return resp.status, await resp.json(content_type=None)


def run_http(server: ApiServer, scenario: Callable[[Http], Awaitable[None]]) -> None:
    """Run an async scenario against the server with a fresh session."""
    async def main() -> None:
        async with aiohttp.ClientSession() as session:
            await scenario(Http(session, server.url))

    asyncio.run(main())


@pytest.fixture
def single_api(redis_client: redis.Redis, redis_url: str) -> Iterator[ApiServer]:
    server = ApiServer(client_factory=lambda: redis.asyncio.Redis.from_url(redis_url),
                       sync_client=redis_client).start()
    yield server
    server.stop()


@pytest.fixture
def cluster_api(cluster_client: RedisCluster,
                redis_cluster_nodes: list[RedisServer]) -> Iterator[ApiServer]:
    from redis.asyncio.cluster import RedisCluster as AsyncRedisCluster

    port = redis_cluster_nodes[0].port
    server = ApiServer(client_factory=lambda: AsyncRedisCluster(host="127.0.0.1", port=port),
                       sync_client=cluster_client).start()
    yield server
    server.stop()


@pytest.fixture
def api(single_api: ApiServer) -> ApiServer:
    return single_api
