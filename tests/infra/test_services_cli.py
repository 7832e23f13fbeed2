"""``quanpai services`` starts and stops a real private redis-server; bad settings exit 2."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import redis

from infra.clickhouse import DriverClient
from infra.clickhouse_server import ClickHouseServer


def quanpai(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "dispatcher.cli", *args], env=env,
                          capture_output=True, text=True, timeout=60)


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "CLICKHOUSE_URL")}
    return {**env, "QUANPAI_VAR": str(tmp_path / "var"), **extra}


def test_services_up_status_down(tmp_path: Path) -> None:
    env = _env(tmp_path)
    up = quanpai("services", "up", env=env)
    assert up.returncode == 0, up.stderr
    url = up.stdout.splitlines()[0].removeprefix("REDIS_URL=")
    client = redis.Redis.from_url(url)
    try:
        assert client.ping()
        assert client.config_get("appendonly")["appendonly"] == "yes"
        assert client.config_get("maxmemory-policy")["maxmemory-policy"] == "noeviction"
        assert client.config_get("dir")["dir"] == str((tmp_path / "var" / "redis").resolve())
        again = quanpai("services", "up", env=env)  # idempotent: same server
        assert again.stdout.splitlines()[0] == up.stdout.splitlines()[0]
        assert quanpai("services", "status", env=env).stdout.startswith(f"REDIS_URL={url}")
    finally:
        down = quanpai("services", "down", env=env)
    assert down.returncode == 0
    assert "REDIS_URL=stopped" in down.stdout
    assert quanpai("services", "status", env=env).stdout.startswith("REDIS_URL=stopped")


def test_wrong_setting_gives_one_line_and_exit_2(tmp_path: Path) -> None:
    result = quanpai("services", "status", env=_env(tmp_path, REDIS_URL="nonsense"))
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0
    assert "REDIS_URL" in result.stderr and "Traceback" not in result.stderr


def test_bad_cli_input_exits_2_without_writing(tmp_path: Path) -> None:
    out = tmp_path / "data"
    result = quanpai("data", "generate", "--members", "0", "--out", str(out), env=_env(tmp_path))
    assert result.returncode == 2
    assert "--members" in result.stderr
    assert not out.exists()


def test_clickhouse_server_starts_and_stops(tmp_path: Path) -> None:
    server = ClickHouseServer(directory=tmp_path / "ch")
    server.start()
    try:
        client = DriverClient(url=server.url)
        assert client.query("SELECT 1 + 1") == [(2,)]
        client.close()
    finally:
        server.stop()
    assert server.process is None
