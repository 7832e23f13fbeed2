"""Catalog fixtures: a real three-master Redis Cluster started for the session."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from redis.cluster import RedisCluster

from infra.redis_server import RedisServer

SECRET = b"test-secret"


def _cluster_port() -> int:
    """A free port below 55535 whose cluster bus port (+10000) is free too."""
    for _ in range(200):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = int(probe.getsockname()[1])
        if port > 55000:
            port = 20000 + port % 30000
        try:
            for candidate in (port, port + 10000):
                with socket.socket() as s:
                    s.bind(("127.0.0.1", candidate))
        except OSError:
            continue
        return port
    raise RuntimeError("no free port pair for a cluster node")


@pytest.fixture(scope="session")
def redis_cluster_nodes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[RedisServer]]:
    base: Path = tmp_path_factory.mktemp("cluster")
    servers = []
    for i in range(3):
        directory = base / f"n{i}"
        server = RedisServer(
            directory=directory,
            port=_cluster_port(),
            extra_args=("--cluster-enabled", "yes",
                        "--cluster-config-file", str((directory / "nodes.conf").resolve()),
                        "--cluster-node-timeout", "2000"),
        )
        server.start()
        servers.append(server)
    try:
        subprocess.run(
            ["redis-cli", "--cluster", "create",
             *(f"127.0.0.1:{s.port}" for s in servers),
             "--cluster-replicas", "0", "--cluster-yes"],
            check=True, capture_output=True, timeout=60,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            probe = redis.Redis(port=servers[0].port)
            info = str(probe.execute_command("CLUSTER INFO"))
            probe.close()
            if "cluster_state:ok" in info:
                break
            time.sleep(0.2)
        yield servers
    finally:
        for server in servers:
            server.stop()


@pytest.fixture
def cluster_client(redis_cluster_nodes: list[RedisServer]) -> Iterator[RedisCluster]:
    client = RedisCluster(host="127.0.0.1", port=redis_cluster_nodes[0].port)
    client.flushall(target_nodes=RedisCluster.PRIMARIES)
    yield client
    client.close()
