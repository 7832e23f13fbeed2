"""``quanpai simulate`` as a real process: serves, counts, stops cleanly on SIGTERM; bad options
exit 2 with one line."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import aiohttp
import redis.asyncio
from aiohttp import web

from analytics.events import MemorySink
from channels import callbacks
from channels.base import Message
from channels.factory import build_callback_receiver, build_channels
from infra.ports import free_port, wait_port
from infra.settings import load_settings
from tests.channels.support import run, wait_for

VARS = {"name": "会员", "coupon": "满100减20券", "code": "QP7K2M9X4B6N8R3T",
        "expiry": "2026-12-31", "store": "南京西路店"}


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "dispatcher.cli", "simulate", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, **(env or {})})


def test_simulate_serves_stats_and_stops_on_sigterm(tmp_path: Path) -> None:
    ports = [free_port() for _ in range(3)]
    proc = _cli("--wechat-port", str(ports[0]), "--sms-port", str(ports[1]),
                "--alipay-port", str(ports[2]), env={"QUANPAI_VAR": str(tmp_path)})
    try:
        for port in ports:
            assert wait_port("127.0.0.1", port, timeout=20), proc.stderr
        for port in ports:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/_sim/stats") as resp:
                assert json.loads(resp.read()) == {"counts": {}, "errors": {}}
        # The development Alipay keys were created where the worker will look for them.
        assert (tmp_path / "alipay" / "app_private.pem").is_file()
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    assert "simulators stopped" in out
    # ready-to-paste settings, each of which the settings parser accepts
    pasted = dict(line.split("=", 1) for line in out.splitlines() if "_BASE_URL=" in line)
    assert pasted == {"WECHAT_BASE_URL": f"http://127.0.0.1:{ports[0]}",
                      "SMS_BASE_URL": f"http://127.0.0.1:{ports[1]}",
                      "ALIPAY_BASE_URL": f"http://127.0.0.1:{ports[2]}/gateway.do"}
    settings = load_settings(pasted)
    assert settings.alipay.base_url == pasted["ALIPAY_BASE_URL"]


def test_simulate_only_serves_the_providers_named(tmp_path: Path) -> None:
    """One provider a process (as the local stack runs them): the others' ports stay free."""
    ports = [free_port() for _ in range(3)]
    proc = _cli("--wechat-port", str(ports[0]), "--sms-port", str(ports[1]),
                "--alipay-port", str(ports[2]), "--only", "sms",
                env={"QUANPAI_VAR": str(tmp_path)})
    try:
        assert wait_port("127.0.0.1", ports[1], timeout=20)
        with urllib.request.urlopen(f"http://127.0.0.1:{ports[1]}/_sim/stats") as resp:
            assert json.loads(resp.read()) == {"counts": {}, "errors": {}}
        assert not wait_port("127.0.0.1", ports[0], timeout=0.5)
        assert not wait_port("127.0.0.1", ports[2], timeout=0.5)
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    assert [line.split("=")[0] for line in out.splitlines() if "_BASE_URL=" in line] == \
        ["SMS_BASE_URL"]


def test_bad_share_exits_2_with_one_line() -> None:
    proc = _cli("--error-share", "1.5")
    _out, err = proc.communicate(timeout=30)
    assert proc.returncode == 2
    assert err.strip().splitlines() == ["quanpai: --error-share=1.5 must be between 0 and 1"]


def test_simulate_process_and_worker_agree_end_to_end(tmp_path: Path, redis_url: str) -> None:
    """A worker and ``quanpai simulate`` started from the same environment agree on every key
    and secret, and the simulators' callbacks reach the receiver as events."""
    ports = {name: free_port() for name in ("wechat", "sms", "alipay", "callbacks")}
    env = {"QUANPAI_VAR": str(tmp_path), "SMS_QUIET_HOURS": "off",
           "WECHAT_BASE_URL": f"http://127.0.0.1:{ports['wechat']}",
           "SMS_BASE_URL": f"http://127.0.0.1:{ports['sms']}/",
           "ALIPAY_BASE_URL": f"http://127.0.0.1:{ports['alipay']}/gateway.do",
           "WECHAT_SECRET": "e2e-secret", "SMS_ACCESS_KEY_SECRET": "e2e-sms-secret",
           "WECHAT_CALLBACK_TOKEN": "e2e-token"}
    settings = load_settings(env)
    proc = _cli("--wechat-port", str(ports["wechat"]), "--sms-port", str(ports["sms"]),
                "--alipay-port", str(ports["alipay"]),
                "--callback-url", f"http://127.0.0.1:{ports['callbacks']}", env=env)

    async def scenario() -> None:
        client = redis.asyncio.Redis.from_url(redis_url)
        sink = MemorySink()
        receiver = build_callback_receiver(settings, redis=client, sink=sink)
        runner = web.AppRunner(callbacks.make_app(receiver), access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", ports["callbacks"]).start()
        try:
            async with aiohttp.ClientSession() as session:
                channels = build_channels(settings, session=session, redis=client)
                addresses = {"sms": "1390000{:04d}", "wechat": "oMember{:06d}xyz",
                             "alipay": "2088{:012d}"}
                for name, pattern in addresses.items():
                    batch = [Message(member_id=f"{name}{i}", address=pattern.format(i),
                                     coupon_code=f"C{i}", idempotency_key=f"e2e:{name}{i}",
                                     variables=VARS, campaign_id="e2e") for i in range(3)]
                    results = await channels[name].send(batch)
                    assert {r.status for r in results} == {"sent"}, (name, results)
                await wait_for(lambda: _at_least(sink, 9), timeout_s=15)
        finally:
            await runner.cleanup()
            await client.aclose()
        by_channel = {(e.channel, e.event_type) for e in sink.events}
        assert by_channel == {("sms", "delivered"), ("wechat", "delivered"),
                              ("alipay", "delivered")}
        assert {e.campaign_id for e in sink.events} == {"e2e"}

    try:
        for port in (ports["wechat"], ports["sms"], ports["alipay"]):
            assert wait_port("127.0.0.1", port, timeout=20)
        run(scenario)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=20)
    assert proc.returncode == 0


async def _at_least(sink: MemorySink, n: int) -> bool:
    return len(sink.events) >= n
