"""``quanpai doctor`` against real services: a healthy set, then Redis down and a wrong
ClickHouse URL, each reported in exactly one failing row."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator

import pytest

from dispatcher.commands.doctor import whole_second_offset
from dispatcher.local_stack import stop_process
from infra.clickhouse_server import ClickHouseServer
from infra.ports import free_port
from infra.redis_server import RedisServer
from tests.dispatcher.conftest import Simulators, start_simulators


@pytest.fixture(scope="module")
def sims() -> Iterator[Simulators]:
    running = start_simulators()
    yield running
    stop_process(running.process)


def doctor(env: dict[str, str], *args: str) -> tuple[int, str]:
    done = subprocess.run([sys.executable, "-m", "dispatcher.cli", "doctor", *args],
                          env={**os.environ, **env}, capture_output=True, text=True,
                          timeout=120)
    return done.returncode, done.stdout


def rows(env: dict[str, str]) -> tuple[int, dict[str, dict[str, str]]]:
    code, out = doctor(env, "--format", "json")
    return code, {row["name"]: row for row in json.loads(out)}


def test_healthy_dependencies_pass(redis_server: RedisServer,
                                   clickhouse_server: ClickHouseServer, sims: Simulators) -> None:
    code, checks = rows({"REDIS_URL": redis_server.url,
                         "CLICKHOUSE_URL": clickhouse_server.url, **sims.env()})
    assert code == 0, checks
    assert all(c["status"] in ("ok", "warn") for c in checks.values()), checks
    assert checks["Redis"]["status"] == "ok"
    assert "noeviction" in checks["Redis"]["detail"]
    assert "Redis broker" not in checks  # the broker shares REDIS_URL unless set apart
    assert "ClickHouse 18" in checks["ClickHouse"]["detail"]
    assert checks["时钟 clock"]["status"] == "ok"


def test_redis_down_and_wrong_clickhouse_url_one_row_each(sims: Simulators) -> None:
    env = {"REDIS_URL": f"redis://127.0.0.1:{free_port()}/0",
           "CLICKHOUSE_URL": f"clickhouse://127.0.0.1:{free_port()}/default", **sims.env()}
    code, checks = rows(env)
    assert code == 1
    failed = sorted(name for name, c in checks.items() if c["status"] == "fail")
    assert failed == ["ClickHouse", "Redis"]
    assert "REDIS_URL" in checks["Redis"]["fix"]
    assert "CLICKHOUSE_URL" in checks["ClickHouse"]["fix"]
    assert checks["时钟 clock"]["status"] == "skip"  # no server clock to compare with
    code, table = doctor(env, "--lang", "en")
    assert code == 1
    assert table.count("FAILED") == 2


def test_eviction_policy_and_unreachable_provider_are_named(
    tmp_path, sims: Simulators
) -> None:
    server = RedisServer(directory=tmp_path / "r", extra_args=("--maxmemory-policy",
                                                               "allkeys-lru"))
    server.start()
    try:
        env = {"REDIS_URL": server.url, **sims.env(),
               "QUANPAI_BROKER_URL": f"redis://127.0.0.1:{free_port()}/0",
               "SMS_BASE_URL": f"http://127.0.0.1:{free_port()}"}
        code, checks = rows(env)
    finally:
        server.stop()
    assert code == 1
    assert checks["Redis"]["status"] == "fail"
    assert "allkeys-lru" in checks["Redis"]["detail"]
    assert "noeviction" in checks["Redis"]["fix"]
    assert checks["Redis broker"]["status"] == "fail"
    assert "QUANPAI_BROKER_URL" in checks["Redis broker"]["fix"]
    assert checks["短信 SMS"]["status"] == "fail"
    assert checks["微信 WeChat"]["status"] == "ok"


def test_a_whole_second_clock_is_not_read_as_skew() -> None:
    """ClickHouse 18.16 tells its time in whole seconds: a reading up to a second behind the
    local clock (the fraction dropped) is no skew; beyond what truncation and the round trip
    explain, the rest is."""
    before, after = 1_000.95, 1_001.40
    assert whole_second_offset(1_000, before=before, after=after) == 0.0
    assert whole_second_offset(1_001, before=before, after=after) == 0.0
    assert whole_second_offset(998, before=before, after=after) == pytest.approx(-1.95)
    assert whole_second_offset(1_004, before=before, after=after) == pytest.approx(2.6)
