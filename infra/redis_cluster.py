"""A local Redis Cluster of private ``redis-server`` masters, for tests of cluster-safe scripts."""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path

import redis

from infra.errors import ServiceError
from infra.redis_server import RedisServer


def cluster_port() -> int:
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
    raise ServiceError("no free port pair for a cluster node")


def _cluster_ok(port: int) -> bool:
    probe = redis.Redis(port=port)
    try:
        info = probe.execute_command("CLUSTER INFO")
    finally:
        probe.close()
    # redis-py parses the reply into a dict; older versions return the raw text
    state = info.get("cluster_state") if isinstance(info, dict) else str(info)
    return state in ("ok", b"ok") or "cluster_state:ok" in str(state)


def start_cluster(base: Path, *, masters: int = 3, timeout: float = 30.0) -> list[RedisServer]:
    """Start ``masters`` cluster-enabled servers (AOF on) under ``base``, join them with
    ``redis-cli --cluster create`` and wait until the cluster answers ``ok``."""
    servers: list[RedisServer] = []
    try:
        for i in range(masters):
            directory = base / f"n{i}"
            server = RedisServer(
                directory=directory, port=cluster_port(),
                extra_args=("--cluster-enabled", "yes",
                            "--cluster-config-file", str((directory / "nodes.conf").resolve()),
                            "--cluster-node-timeout", "2000"),
            )
            server.start()
            servers.append(server)
        subprocess.run(
            ["redis-cli", "--cluster", "create", *(f"127.0.0.1:{s.port}" for s in servers),
             "--cluster-replicas", "0", "--cluster-yes"],
            check=True, capture_output=True, timeout=60,
        )
        deadline = time.monotonic() + timeout
        while not _cluster_ok(servers[0].port):
            if time.monotonic() > deadline:
                raise ServiceError(f"the cluster did not reach state ok in {timeout}s")
            time.sleep(0.2)
    except BaseException:
        stop_cluster(servers)
        raise
    return servers


def stop_cluster(servers: list[RedisServer]) -> None:
    for server in servers:
        server.stop()
