"""Channel fixtures: a three-master Redis Cluster for the session (shared limits, tokens and
receipts must work when the channels' Redis is a cluster)."""

from __future__ import annotations

import pytest

from infra.redis_server import RedisServer


@pytest.fixture(scope="session")
def channel_cluster(redis_cluster_nodes: list[RedisServer]) -> int:
    """Port of one node of the session's three-master cluster."""
    return redis_cluster_nodes[0].port
