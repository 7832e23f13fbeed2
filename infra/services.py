"""``quanpai services up|down|status``: the embedded local services under ``./var``.

Redis runs as a private ``redis-server`` whose port and pid are recorded in
``var/services.json``; every process that has no ``REDIS_URL`` finds it there. ClickHouse needs no
process: the embedded default is chDB, opened in-process under ``var/chdb``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from infra.errors import ServiceError
from infra.redis_server import RedisServer
from infra.settings import Settings


@dataclass(frozen=True)
class ServiceStatus:
    redis_url: str
    redis_running: bool
    redis_pid: int | None
    clickhouse: str


def _state_file(settings: Settings) -> Path:
    return settings.var_dir / "services.json"


def _read_state(settings: Settings) -> dict[str, int]:
    try:
        data = json.loads(_state_file(settings).read_text())
        return {"port": int(data["redis"]["port"])}
    except (OSError, ValueError, KeyError, TypeError):
        return {}


def _server(settings: Settings, port: int) -> RedisServer:
    return RedisServer(directory=settings.var_dir / "redis", port=port)


def clickhouse_target(settings: Settings) -> str:
    return settings.clickhouse_url or f"chdb:{settings.chdb_path}"


def resolve_redis_url(settings: Settings) -> str:
    """``REDIS_URL`` when set, else the private server recorded by ``quanpai services up``."""
    if settings.redis_url:
        return settings.redis_url
    state = _read_state(settings)
    if not state:
        raise ServiceError("no Redis: run `quanpai services up` or set REDIS_URL")
    return f"redis://127.0.0.1:{state['port']}/0"


def resolve_broker_url(settings: Settings, *, redis_url: str | None = None) -> str:
    """``QUANPAI_BROKER_URL`` when set (the queues on a Redis of their own, ``noeviction``),
    else the catalog's Redis (``redis_url`` or ``REDIS_URL``)."""
    return settings.broker_url or redis_url or resolve_redis_url(settings)


def status(settings: Settings) -> ServiceStatus:
    if settings.redis_url:
        return ServiceStatus(settings.redis_url, True, None, clickhouse_target(settings))
    state = _read_state(settings)
    if not state:
        return ServiceStatus("", False, None, clickhouse_target(settings))
    server = _server(settings, state["port"])
    running = server.ping()  # one try: its socket waits up to 0.5 s for an answer
    return ServiceStatus(server.url, running, server.pid(), clickhouse_target(settings))


def up(settings: Settings) -> ServiceStatus:
    """Start the private redis-server unless it already runs; idempotent."""
    if settings.redis_url:
        return status(settings)
    current = status(settings)
    if current.redis_running:
        return current
    state = _read_state(settings)
    port = settings.redis_port or state.get("port", 0)
    server = _server(settings, port)
    try:
        server.start(detach=True)
    except ServiceError:
        if not port or settings.redis_port:
            raise
        server = _server(settings, 0)  # the recorded port was taken meanwhile: pick a new one
        server.start(detach=True)
    settings.var_dir.mkdir(parents=True, exist_ok=True)
    _state_file(settings).write_text(json.dumps({"redis": {"port": server.port}}))
    settings.chdb_path.mkdir(parents=True, exist_ok=True)
    return status(settings)


def down(settings: Settings) -> ServiceStatus:
    """Stop the private redis-server (AOF is flushed on SIGTERM); idempotent."""
    state = _read_state(settings)
    if state and not settings.redis_url:
        _server(settings, state["port"]).stop()
    return status(settings)
