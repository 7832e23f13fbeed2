"""Redis clients built from a URL; the composition roots call these, nothing else opens Redis."""

from __future__ import annotations

import redis
import redis.asyncio
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff


def make_redis(url: str) -> redis.Redis:
    """A synchronous client (bytes replies) with a health check suited to long-lived workers."""
    return redis.Redis.from_url(url, health_check_interval=30, socket_keepalive=True)


def make_async_redis(url: str, *, max_connections: int = 64) -> redis.asyncio.Redis:
    """An asyncio client whose pool makes callers wait for a free connection rather than fail
    when a burst (hundreds of callbacks at once) wants more than ``max_connections``.

    A command that meets a dead pooled connection (Redis restarted) is sent once more on a
    fresh one: Quanpai's state changes are idempotent scripts (each keyed by its campaign,
    order, code or reference), so a repeat cannot apply twice."""
    pool = redis.asyncio.BlockingConnectionPool.from_url(
        url, max_connections=max_connections, timeout=30, health_check_interval=30,
        socket_keepalive=True, retry=Retry(NoBackoff(), 1),
        retry_on_error=[redis.ConnectionError, redis.TimeoutError],
    )
    return redis.asyncio.Redis(connection_pool=pool)
