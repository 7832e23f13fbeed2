"""Aliyun SMS channel against its simulator: recipients/second and client CPU per recipient.

The simulators run as ``quanpai simulate`` in their own process and their CPU is reported
apart; the client runs here on uvloop through ``build_channels`` (the production path: rate
limiter, receipt index in a private Redis, shared limits). ``Harness`` is shared with the
WeChat and Alipay channel scenarios.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import aiohttp
import psutil
import redis.asyncio
import uvloop

from bench.report import Result
from channels.base import Message
from channels.factory import build_channels
from infra.ports import free_port, wait_port
from infra.redis_server import RedisServer
from infra.settings import Settings, load_settings

SIZES = {"quick": 100_000, "full": 1_000_000}
BATCH = 1000  # one campaign-worker batch = one channel.send call
VARIABLES = {"name": "会员", "coupon": "满100减20券", "expiry": "2026-12-31", "store": "南京西路店"}


def _cpu(pid: int) -> float:
    times = psutil.Process(pid).cpu_times()
    return float(times.user + times.system)


class Harness:
    """A private Redis and ``quanpai simulate`` on free ports, with matching ``Settings``."""

    def __init__(self) -> None:
        self._tmp = tempfile.TemporaryDirectory()
        directory = Path(self._tmp.name)
        self.redis = RedisServer(directory=directory / "redis", appendonly=False)
        ports = {name: free_port() for name in ("wechat", "sms", "alipay")}
        self.env = {
            "QUANPAI_VAR": str(directory), "SMS_QUIET_HOURS": "off",
            "WECHAT_DAILY_QUOTA": str(10**9), "WECHAT_REQUESTS_PER_S": str(10**6),
            "ALIPAY_REQUESTS_PER_S": str(10**6),
            "WECHAT_BASE_URL": f"http://127.0.0.1:{ports['wechat']}",
            "SMS_BASE_URL": f"http://127.0.0.1:{ports['sms']}/",
            "ALIPAY_BASE_URL": f"http://127.0.0.1:{ports['alipay']}/gateway.do",
        }
        self.ports = ports
        self.settings: Settings = load_settings(self.env)
        self.sim: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Harness:
        (Path(self._tmp.name) / "redis").mkdir()
        self.redis.start()
        self.sim = subprocess.Popen(
            [sys.executable, "-m", "dispatcher.cli", "simulate",
             "--wechat-port", str(self.ports["wechat"]), "--sms-port", str(self.ports["sms"]),
             "--alipay-port", str(self.ports["alipay"])],
            env={**os.environ, **self.env}, stdout=subprocess.DEVNULL)
        for port in self.ports.values():
            if not wait_port("127.0.0.1", port, timeout=30):
                raise RuntimeError("simulators did not start")
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self.sim is not None:
            self.sim.send_signal(signal.SIGTERM)
            self.sim.wait(timeout=30)
        self.redis.stop()
        self._tmp.cleanup()

    def sim_cpu(self) -> float:
        assert self.sim is not None
        return _cpu(self.sim.pid)

    def redis_cpu(self) -> float:
        pid = self.redis.pid()
        return _cpu(pid) if pid else 0.0


@dataclass(frozen=True)
class Run:
    count: int  # messages sent (status "sent")
    seconds: float
    client_cpu_s: float
    sim_cpu_s: float
    redis_cpu_s: float


def drive(harness: Harness, channel_name: str, batches: Sequence[Sequence[Message]], *,
          parallel: int = 2, settings: Settings | None = None) -> Run:
    """Send ``batches`` through the named channel, ``parallel`` batches in flight (as several
    worker coroutines would); CPU and wall time measured around the sends only."""

    async def main() -> Run:
        client = redis.asyncio.Redis.from_url(harness.redis.url)
        connector = aiohttp.TCPConnector(limit=256)
        async with aiohttp.ClientSession(connector=connector) as session:
            channel = build_channels(settings or harness.settings, session=session,
                                     redis=client)[channel_name]
            queue = list(batches)
            sent = 0

            async def worker() -> None:
                nonlocal sent
                while queue:
                    results = await channel.send(queue.pop())
                    sent += sum(1 for r in results if r.status == "sent")

            sim0, redis0 = harness.sim_cpu(), harness.redis_cpu()
            cpu0, wall0 = time.process_time(), time.perf_counter()
            await asyncio.gather(*(worker() for _ in range(parallel)))
            cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
            sim, red = harness.sim_cpu() - sim0, harness.redis_cpu() - redis0
        await client.aclose()
        return Run(sent, wall, cpu, sim, red)

    return uvloop.run(main())


def results(scenario: str, unit: str, run: Run, *, target_us: float | None) -> list[Result]:
    """The standard rows: rate, client CPU per unit (with target), simulator and Redis CPU."""
    per = max(run.count, 1)
    return [
        Result(scenario, f"{unit}s per second", round(run.count / run.seconds), f"{unit}/s",
               better="higher"),
        Result(scenario, f"client CPU per {unit}", round(run.client_cpu_s / per * 1e6, 2),
               "µs", target=target_us),
        Result(scenario, f"simulator CPU per {unit} (separate process)",
               round(run.sim_cpu_s / per * 1e6, 2), "µs"),
        Result(scenario, f"redis CPU per {unit} (separate process)",
               round(run.redis_cpu_s / per * 1e6, 2), "µs"),
    ]


def run(*, size: str) -> list[Result]:
    count = SIZES[size]
    messages = [Message(member_id=f"M{i:08d}", address=f"139{i:08d}", coupon_code=f"C{i}",
                        idempotency_key=f"bench:M{i:08d}", variables=VARIABLES,
                        campaign_id="bench") for i in range(count)]
    batches = [messages[i:i + BATCH] for i in range(0, count, BATCH)]
    with Harness() as harness:
        measured = drive(harness, "sms", batches)
    if measured.count != count:
        raise RuntimeError(f"only {measured.count} of {count} SMS were accepted")
    return results("channels_sms", "recipient", measured, target_us=5.0)
