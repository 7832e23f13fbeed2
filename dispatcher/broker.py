"""The Dramatiq broker on Redis, built from settings by each composition root."""

from __future__ import annotations

from dramatiq.brokers.redis import RedisBroker

QUEUE = "campaigns"


def make_broker(
    redis_url: str, *, heartbeat_timeout_ms: int = 60_000, maintenance_chance: int = 10_000
) -> RedisBroker:
    """A Redis broker. ``heartbeat_timeout_ms`` is how long a silent worker keeps its unacked
    messages before another worker takes them back (a crashed worker's batches are redone).
    ``maintenance_chance`` (per million broker calls) is how often a call looks for such dead
    workers; Dramatiq's default of 1,000 can leave a crashed worker's batches waiting minutes."""
    return RedisBroker(
        url=redis_url,
        namespace="quanpai-dq",
        heartbeat_timeout=heartbeat_timeout_ms,
        maintenance_chance=maintenance_chance,
    )
