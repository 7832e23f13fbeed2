"""Real services for the tests: a private redis-server and clickhouse-server on free ports in
temporary directories, and chDB. Nothing here is mocked; every fixture stops what it starts."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from infra.clickhouse import ChdbClient, DriverClient
from infra.clickhouse_server import ClickHouseServer
from infra.redis_cluster import start_cluster, stop_cluster
from infra.redis_server import RedisServer


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(directory=tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    return redis_server.url


@pytest.fixture
def redis_client(redis_server: RedisServer) -> Iterator[redis.Redis]:
    """A client on an empty database (flushed before each test)."""
    client = redis.Redis.from_url(redis_server.url)
    client.flushall()
    yield client
    client.close()


@pytest.fixture(scope="session")
def redis_cluster_nodes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[RedisServer]]:
    """A three-master Redis Cluster (``redis-cli --cluster create``) for the session."""
    servers = start_cluster(tmp_path_factory.mktemp("cluster"))
    yield servers
    stop_cluster(servers)


@pytest.fixture(scope="session")
def clickhouse_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClickHouseServer]:
    server = ClickHouseServer(directory=tmp_path_factory.mktemp("clickhouse"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def clickhouse_driver(clickhouse_server: ClickHouseServer) -> Iterator[DriverClient]:
    """A client on a fresh database of the real server."""
    admin = DriverClient(url=clickhouse_server.url)
    admin.execute("DROP DATABASE IF EXISTS t")
    admin.execute("CREATE DATABASE t")
    admin.close()
    client = DriverClient(url=clickhouse_server.url.rsplit("/", 1)[0] + "/t")
    yield client
    client.close()


@pytest.fixture
def chdb_client(tmp_path: Path) -> Iterator[ChdbClient]:
    client = ChdbClient(path=tmp_path / "chdb")
    yield client
    client.close()
