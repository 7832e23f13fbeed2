"""The channel simulators as their own process (``quanpai simulate``) and settings that point a
worker at them and at the test Redis."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from dispatcher.local_stack import stop_process as stop
from infra.ports import free_port, wait_port
from infra.settings import Settings, load_settings


@dataclass
class Simulators:
    ports: dict[str, int]
    process: subprocess.Popen[bytes]

    def env(self) -> dict[str, str]:
        return {
            "WECHAT_BASE_URL": f"http://127.0.0.1:{self.ports['wechat']}",
            "SMS_BASE_URL": f"http://127.0.0.1:{self.ports['sms']}",
            "ALIPAY_BASE_URL": f"http://127.0.0.1:{self.ports['alipay']}/gateway.do",
        }


def start_simulators(*extra: str) -> Simulators:
    ports = {name: free_port() for name in ("wechat", "sms", "alipay")}
    process = subprocess.Popen(
        [sys.executable, "-m", "dispatcher.cli", "simulate", "--wechat-port",
         str(ports["wechat"]), "--sms-port", str(ports["sms"]), "--alipay-port",
         str(ports["alipay"]), *extra],
        stdout=subprocess.DEVNULL,
    )
    assert wait_port("127.0.0.1", ports["sms"], timeout=30), "simulators did not start"
    return Simulators(ports, process)


@pytest.fixture
def simulators() -> Iterator[Simulators]:
    sims = start_simulators()
    yield sims
    stop(sims.process)


@pytest.fixture
def slow_simulators() -> Iterator[Simulators]:
    """Every provider call takes 300 ms, so a batch is still in flight when a worker dies."""
    sims = start_simulators("--latency-ms", "300")
    yield sims
    stop(sims.process)


def flow_env(redis_url: str, sims: Simulators, **extra: str) -> dict[str, str]:
    # Quiet hours off: these tests are about delivery semantics, not the time of day.
    return {**os.environ, "REDIS_URL": redis_url, "SMS_QUIET_HOURS": "off", **sims.env(),
            **extra}


def flow_settings(redis_url: str, sims: Simulators, **extra: str) -> Settings:
    return load_settings({"REDIS_URL": redis_url, "SMS_QUIET_HOURS": "off", **sims.env(),
                          **extra})
