"""The API under a burst larger than its Redis pool, and across a Redis restart: requests wait
for a connection instead of failing, a restart answers 503 (never 500), and afterwards stale
pooled connections are replaced without the caller noticing."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from pathlib import Path

import redis

from infra.redis_client import make_async_redis
from infra.redis_server import RedisServer

from .conftest import ApiServer, Http, run_http


def test_a_burst_larger_than_the_pool_waits_instead_of_failing(redis_client: redis.Redis,
                                                               redis_url: str) -> None:
    api = ApiServer(client_factory=lambda: make_async_redis(redis_url, max_connections=4),
                    sync_client=redis_client).start()
    try:
        async def scenario(http: Http) -> None:
            member = http.as_(api.token("member", member="M1"))
            statuses = await asyncio.gather(*(member("GET", "/v1/members/M1/wallet")
                                              for _ in range(300)))
            assert Counter(s for s, _ in statuses) == {200: 300}

        run_http(api, scenario)
    finally:
        api.stop()


def test_redis_restart_is_503_never_500_and_recovers(tmp_path: Path) -> None:
    server = RedisServer(directory=tmp_path / "redis")
    server.start()
    sync = redis.Redis.from_url(server.url)
    api = ApiServer(client_factory=lambda: make_async_redis(server.url, max_connections=16),
                    sync_client=sync).start()
    try:
        async def scenario(http: Http) -> None:
            member = http.as_(api.token("member", member="M1"))

            async def burst() -> Counter[int]:
                found = await asyncio.gather(*(member("GET", "/v1/members/M1/account")
                                               for _ in range(64)))
                return Counter(s for s, _ in found)

            async def restart() -> None:
                server.start()
                deadline = time.monotonic() + 20
                while not server.ping() and time.monotonic() < deadline:
                    await asyncio.sleep(0.1)

            assert await burst() == {200: 64}  # the pool now holds open connections
            server.stop()
            await restart()
            # every pooled connection died with the old server; each is replaced by a fresh one
            # on first use, so not one request fails once Redis answers again
            assert await burst() == {200: 64}
            server.stop()
            down = await burst()
            assert set(down) == {503}, down
            await restart()
            for _ in range(3):
                assert await burst() == {200: 64}

        run_http(api, scenario)
    finally:
        api.stop()
        server.stop()
