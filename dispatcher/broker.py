"""The Dramatiq broker on Redis, built from settings by each composition root."""

from __future__ import annotations

import time
from typing import Any

from dramatiq.brokers.redis import RedisBroker
from redis import Redis

QUEUE = "campaigns"
NAMESPACE = "quanpai-dq"
# A SIGKILLed worker's unacknowledged batches go back to the queue once its heartbeat is this
# old (Dramatiq's default: 60 s) and a live worker's broker call draws maintenance: at 100,000
# per million an idle worker polling every half second finds it within seconds. Workers call
# the broker (heartbeat) at every fetch and acknowledgement, far more often than this.
HEARTBEAT_TIMEOUT_MS = 15_000
MAINTENANCE_CHANCE = 100_000


def make_broker(
    redis_url: str, *, heartbeat_timeout_ms: int = HEARTBEAT_TIMEOUT_MS,
    maintenance_chance: int = MAINTENANCE_CHANCE,
) -> RedisBroker:
    """A Redis broker. ``heartbeat_timeout_ms`` is how long a silent worker keeps its unacked
    messages before another worker takes them back (a crashed worker's batches are redone).
    ``maintenance_chance`` (per million broker calls) is how often a call looks for such dead
    workers; Dramatiq's default of 1,000 can leave a crashed worker's batches waiting minutes."""
    return RedisBroker(
        url=redis_url,
        namespace=NAMESPACE,
        heartbeat_timeout=heartbeat_timeout_ms,
        maintenance_chance=maintenance_chance,
    )


def live_workers(client: Redis, *, exclude: str = "",
                 heartbeat_timeout_ms: int = HEARTBEAT_TIMEOUT_MS) -> int:
    """Broker users (worker processes) whose last heartbeat is younger than the timeout, but
    ``exclude`` (the caller's own broker id: enqueueing beats too)."""
    now_ms = int(time.time() * 1000)
    beating: Any = client.zrangebyscore(f"{NAMESPACE}:__heartbeats__",
                                        now_ms - heartbeat_timeout_ms, "+inf")
    return sum(1 for b in beating if b.decode() != exclude)
