"""Channel fixtures: a three-master Redis Cluster for the session (shared limits, tokens and
receipts must work when the channels' Redis is a cluster)."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from infra.redis_server import RedisServer


def _cluster_port() -> int:
    """A free port whose cluster bus port (+10000) is free too."""
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
def channel_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """Port of one node of a fresh three-master cluster."""
    base: Path = tmp_path_factory.mktemp("channel-cluster")
    servers = []
    try:
        for i in range(3):
            directory = base / f"n{i}"
            server = RedisServer(
                directory=directory, port=_cluster_port(), appendonly=False,
                extra_args=("--cluster-enabled", "yes",
                            "--cluster-config-file", str((directory / "nodes.conf").resolve()),
                            "--cluster-node-timeout", "2000"))
            server.start()
            servers.append(server)
        subprocess.run(["redis-cli", "--cluster", "create",
                        *(f"127.0.0.1:{s.port}" for s in servers),
                        "--cluster-replicas", "0", "--cluster-yes"],
                       check=True, capture_output=True, timeout=60)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            probe = redis.Redis(port=servers[0].port)
            ready = "cluster_state:ok" in str(probe.execute_command("CLUSTER INFO"))
            probe.close()
            if ready:
                break
            time.sleep(0.2)
        yield servers[0].port
    finally:
        for server in servers:
            server.stop()
