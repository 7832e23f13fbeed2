"""The loader, ``quanpai roi``, ``quanpai sql`` and the API as separate processes, on chDB and on
the ClickHouse server: a loader killed between insert and acknowledgement loses and repeats
nothing (events, orders, campaign members); reports answer while the loader runs (chDB: through
the process that owns it)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import pytest
import redis
from aiohttp import web

from analytics.events import Event
from analytics.stream import RedisStreamSink
from analytics.synthetic import planted_campaign
from dispatcher.app import build_app
from infra.clickhouse_server import ClickHouseServer
from infra.settings import load_settings
from infra.tokens import mint_bearer

STREAM = "quanpai:events"


@pytest.fixture(params=["chdb", "server"])
def env(request: pytest.FixtureRequest, redis_url: str, redis_client: redis.Redis,
        tmp_path: Path) -> dict[str, str]:
    """Environment of the processes: Redis, a var dir, and the server when it is its turn."""
    values = {**os.environ, "REDIS_URL": redis_url, "QUANPAI_VAR": str(tmp_path / "var"),
              "QUANPAI_MERCHANT": "m1", "QUANPAI_SECRET": "analytics-test-secret"}
    values.pop("CLICKHOUSE_URL", None)
    values.pop("QUANPAI_TEST_KILL_AT", None)
    if request.param == "server":
        server: ClickHouseServer = request.getfixturevalue("clickhouse_server")
        from infra.clickhouse import DriverClient

        admin = DriverClient(url=server.url)
        admin.execute("DROP DATABASE IF EXISTS p")
        admin.execute("CREATE DATABASE p")
        admin.close()
        values["CLICKHOUSE_URL"] = server.url.rsplit("/", 1)[0] + "/p"
    return values


def quanpai(env: dict[str, str], *args: str, timeout: float = 120
            ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "dispatcher.cli", *args], env=env,
                          capture_output=True, text=True, timeout=timeout)


def _sql(env: dict[str, str], statement: str) -> str:
    done = quanpai(env, "sql", statement)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def _events(n_members: int) -> list[Event]:
    ts = datetime(2026, 11, 11, 2, 0, tzinfo=UTC)
    out = []
    for m in range(n_members):
        out.append(Event(f"issued:c1:{m}", "issued", "m1", "c1", str(m), ts=ts))
        out.append(Event(f"points_granted:earn:S1|o{m}", "points_granted", "m1", member_id=str(m),
                         store_id="S1", order_id=f"o{m}", amount_fen=100 + m, reason="1", ts=ts))
    return out


def test_loader_killed_between_insert_and_ack_counts_exactly(
        env: dict[str, str], redis_client: redis.Redis) -> None:
    sink = RedisStreamSink(client=redis_client, stream=STREAM)
    events = _events(300)
    for first in range(0, len(events), 40):
        sink.emit(events[first:first + 40])
    killed = quanpai({**env, "QUANPAI_TEST_KILL_AT": "loader:after_insert"}, "loader", "--once")
    assert killed.returncode == -signal.SIGKILL
    assert redis_client.xlen(STREAM) > 0  # inserted, never acknowledged
    assert int(_sql(env, "SELECT count() FROM events")) > 0
    again = quanpai(env, "loader", "--once")
    assert again.returncode == 0, again.stderr
    assert redis_client.xlen(STREAM) == 0
    # raw rows, not distinct ids: nothing was stored twice, nothing lost
    assert _sql(env, "SELECT count(), uniqExact(event_id) FROM events") == "600\t600"
    assert _sql(env, "SELECT count(), sum(amount_fen) FROM orders") == \
        f"300\t{sum(100 + m for m in range(300))}"
    # every campaign member once, with the issued bit (256 + 2), whatever the crash wrote twice
    assert _sql(env, "SELECT count(), sum(f) FROM (SELECT member_id, groupBitOrMerge(flags) AS f "
                     "FROM campaign_members GROUP BY member_id)") == f"300\t{300 * 258}"


def test_reports_answer_while_the_loader_runs(env: dict[str, str], redis_client: redis.Redis,
                                              tmp_path: Path) -> None:
    loader = subprocess.Popen([sys.executable, "-m", "dispatcher.cli", "loader"], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert loader.stdout is not None
        assert "loader running" in loader.stdout.readline()
        campaign = planted_campaign(members=400, effect_fen=2000, seed=2, merchant_id="m1")
        RedisStreamSink(client=redis_client, stream=STREAM).emit(campaign.events())
        deadline = time.monotonic() + 60
        while redis_client.xlen(STREAM):
            assert time.monotonic() < deadline, "the loader did not load the events"
            time.sleep(0.2)
        assert int(_sql(env, "SELECT uniqExact(event_id) FROM events")) == \
            len(campaign.events())
        assert quanpai(env, "analytics", "migrate").returncode == 0
        report = quanpai(env, "roi", "--campaign", "c1", "--format", "json")
        assert report.returncode == 0, report.stderr
        row = json.loads(report.stdout)["campaigns"][0]["rows"][0]
        assert row["targeted"] == int((~campaign.held).sum())
        assert row["held_out"] == int(campaign.held.sum())
        missing = quanpai(env, "roi", "--campaign", "nosuch")
        assert missing.returncode == 2 and missing.stdout == ""
        assert len(missing.stderr.strip().splitlines()) == 1
        _api_answers(env)
        # segments computed in ClickHouse too (chDB: through the loader, never its lock)
        RedisStreamSink(client=redis_client, stream=STREAM).emit(
            [e for e in _events(60) if e.event_type == "points_granted"])
        while redis_client.xlen(STREAM):
            assert time.monotonic() < deadline + 60, "the loader did not load the payments"
            time.sleep(0.2)
        buyers = int(_sql(env, "SELECT uniqExact(member_id) FROM orders"))
        assert buyers == 60
        scores = tmp_path / "rfm.csv"
        rfm = quanpai(env, "segment", "rfm", "--clickhouse-table", "orders", "--out", str(scores))
        assert rfm.returncode == 0, rfm.stderr
        assert len(scores.read_text(encoding="utf-8").splitlines()) == buyers + 1
        status = quanpai(env, "loader", "status")
        assert status.returncode == 0 and "0 entries" in status.stdout
    finally:
        loader.send_signal(signal.SIGTERM)
        assert loader.wait(timeout=60) == 0


def _api_answers(env: dict[str, str]) -> None:
    settings = load_settings(env)
    secret = settings.secret_key.encode()

    def auth(role: str) -> dict[str, str]:
        token = mint_bearer(secret=secret, role=role, merchant_id="m1",
                            store_id="S1" if role == "cashier" else "")
        return {"Authorization": f"Bearer {token}"}

    async def main() -> None:
        assert settings.redis_url is not None
        runner = web.AppRunner(build_app(settings, redis_url=settings.redis_url),
                               access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        base = f"http://127.0.0.1:{port}/v1/campaigns"
        try:
            async with aiohttp.ClientSession() as http:
                async with http.get(f"{base}/c1/roi?by=channel", headers=auth("analyst")) as r:
                    assert r.status == 200, await r.text()
                    body = await r.json()
                    assert [x["value"] for x in body["campaigns"][0]["rows"]] == \
                        ["alipay", "sms", "wechat"]
                async with http.get(f"{base}/c1/roi", headers=auth("cashier")) as r:
                    assert r.status == 403
                async with http.get(f"{base}/nosuch/roi", headers=auth("operator")) as r:
                    assert r.status == 404
                async with http.get(f"{base}/c1/roi?by=planet", headers=auth("analyst")) as r:
                    assert r.status == 422 and (await r.json())["field"] == "by"
        finally:
            await runner.cleanup()

    asyncio.run(main())


@pytest.fixture
def down_env(redis_url: str, tmp_path: Path) -> Iterator[dict[str, str]]:
    from infra.ports import free_port

    yield {**os.environ, "REDIS_URL": redis_url, "QUANPAI_VAR": str(tmp_path / "var"),
           "CLICKHOUSE_URL": f"clickhouse://127.0.0.1:{free_port()}/default"}


def test_clickhouse_down_events_wait_in_redis(down_env: dict[str, str],
                                              redis_client: redis.Redis) -> None:
    RedisStreamSink(client=redis_client, stream=STREAM).emit(_events(5))
    loader = subprocess.Popen([sys.executable, "-m", "dispatcher.cli", "loader"], env=down_env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not redis_client.hget(f"{STREAM}:loader", "last_error"):
            assert time.monotonic() < deadline, "the loader recorded no error"
            time.sleep(0.2)
        status = quanpai(down_env, "loader", "status")
        assert status.returncode == 1
        assert "1 entries" in status.stdout and "last error" in status.stdout
        assert redis_client.xlen(STREAM) == 1  # still there, waiting
    finally:
        loader.send_signal(signal.SIGTERM)
        loader.wait(timeout=60)
    # ClickHouse back (the embedded one here): everything arrives
    up = {k: v for k, v in down_env.items() if k != "CLICKHOUSE_URL"}
    assert quanpai(up, "loader", "--once").returncode == 0
    assert _sql(up, "SELECT count() FROM events") == "10"


def test_sql_named_queries_and_bad_input(tmp_path: Path, redis_url: str) -> None:
    env = {**os.environ, "QUANPAI_VAR": str(tmp_path / "var"), "REDIS_URL": redis_url}
    env.pop("CLICKHOUSE_URL", None)
    listed = quanpai(env, "sql", "--list")
    assert listed.returncode == 0 and "roi_groups_by_segment" in listed.stdout
    named = quanpai(env, "sql", "--query", "campaign_counts", "--param", "merchant=x'); DROP",
                    "--param", "campaign=")
    assert named.returncode == 0 and named.stdout == ""
    for bad in (("sql", "--query", "nosuch"), ("sql", "--query", "campaign_counts"),
                ("sql", "--query", "orders_by_day", "--param", "since=yesterday",
                 "--param", "merchant=m", "--param", "tz=UTC"),
                ("sql", "SELEC nonsense")):
        done = quanpai(env, *bad)
        assert done.returncode == 2, (bad, done.stderr)
        assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert quanpai(env, "roi", "--by", "planet").returncode == 2  # argparse's usage error
    prompt = subprocess.run([sys.executable, "-m", "dispatcher.cli", "sql"], env=env,
                            input="SELECT 1 +\n 1;\nSELECT 'x';\nquit\n", capture_output=True,
                            text=True, timeout=120)
    assert prompt.returncode == 0 and "2" in prompt.stdout and "x" in prompt.stdout


def test_data_load_is_idempotent_and_roi_renders(tmp_path: Path, redis_url: str) -> None:
    from segmentation.synthetic import generate

    data = generate(members=300, out_dir=tmp_path / "data", seed=1, timezone="Asia/Shanghai")
    env = {**os.environ, "QUANPAI_VAR": str(tmp_path / "var"), "REDIS_URL": redis_url,
           "QUANPAI_MERCHANT": "m1"}
    env.pop("CLICKHOUSE_URL", None)
    for _ in range(2):
        assert quanpai(env, "data", "load", str(tmp_path / "data")).returncode == 0
    assert _sql(env, "SELECT count() FROM orders") == str(data.transaction_count)
    assert quanpai(env, "data", "load", str(tmp_path / "nothing.parquet")).returncode == 2
    # a campaign over those members: CSV (with BOM), and a chart
    redis_client = redis.Redis.from_url(redis_url)
    campaign = planted_campaign(members=300, effect_fen=0, seed=1, merchant_id="m1")
    RedisStreamSink(client=redis_client, stream=STREAM).emit(campaign.events())
    chart = tmp_path / "roi.png"
    done = quanpai(env, "roi", "--format", "csv", "--by", "segment", "--chart", str(chart))
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("\ufeffcampaign_id,")
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    english = quanpai({**env, "QUANPAI_LANG": "en"}, "roi")
    assert "Campaign ROI" in english.stdout
