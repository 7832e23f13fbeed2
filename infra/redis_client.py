"""Redis clients built from a URL; the composition roots call these, nothing else opens Redis."""

from __future__ import annotations

import redis
import redis.asyncio


def make_redis(url: str) -> redis.Redis:
    """A synchronous client (bytes replies) with a health check suited to long-lived workers."""
    return redis.Redis.from_url(url, health_check_interval=30, socket_keepalive=True)


def make_async_redis(url: str) -> redis.asyncio.Redis:
    return redis.asyncio.Redis.from_url(url, health_check_interval=30, socket_keepalive=True)
