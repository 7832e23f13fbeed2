"""Printer agent fixtures: the network printer emulator, the real catalog service
(``quanpai serve``) and agent (``quanpai printer-agent run``) as processes that the tests stop,
kill and start again, and the in-process catalog API of tests/catalog."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from infra.ports import free_port, wait_port
from infra.redis_server import RedisServer
from infra.tokens import mint_bearer
from tests.catalog.conftest import api, single_api  # noqa: F401  (fixtures)
from tests.printer_agent.emulator import PrinterEmulator

SECRET = "printer-test-secret"
MERCHANT = "m1"


def quanpai(*args: str) -> list[str]:
    return [sys.executable, "-m", "dispatcher.cli", *args]


@pytest.fixture
def emulator() -> Iterator[PrinterEmulator]:
    printer = PrinterEmulator()
    printer.power_on()
    yield printer
    printer.power_off()


class Service:
    """``quanpai serve`` on a fixed port, stopped and started again by the tests."""

    def __init__(self, redis_url: str, log: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, "REDIS_URL": redis_url, "QUANPAI_SECRET": SECRET,
                    "QUANPAI_MERCHANT": MERCHANT}
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(quanpai("serve", "--port", str(self.port)),
                                            env=self.env, stdout=out, stderr=out)
        assert wait_port("127.0.0.1", self.port, timeout=60), self.log.read_text()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(30)
        self.process = None

    def token(self, role: str, store: str = "", member: str = "") -> str:
        return mint_bearer(secret=SECRET.encode(), role=role, merchant_id=MERCHANT,
                          store_id=store, member_id=member)

    def call(self, method: str, path: str, body: Any = None, *, token: str
             ) -> tuple[int, Any]:
        request = urllib.request.Request(
            self.url + path, method=method,
            data=json.dumps(body).encode() if body is not None else None,
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, json.loads(response.read() or b"null")
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"null")


@pytest.fixture
def service(redis_server: RedisServer, redis_client: redis.Redis,
            tmp_path: Path) -> Iterator[Service]:
    running = Service(redis_server.url, tmp_path / "serve.log")
    running.start()
    yield running
    running.stop()


class AgentProcess:
    """``quanpai printer-agent run`` as a process: started, killed and started again."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.env = env
        self.log = log
        self.listen_port = int(env["PRINTER_LISTEN"].rsplit(":", 1)[1])
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                quanpai("printer-agent", "run", "--status-interval", "0.5", "--poll-wait", "3"),
                env=self.env, stdout=out, stderr=out)
        assert wait_port("127.0.0.1", self.listen_port, timeout=60), self.log.read_text()

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(30)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)

    def status(self) -> dict[str, Any]:
        done = subprocess.run(quanpai("printer-agent", "status", "--json"), env=self.env,
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        result: dict[str, Any] = json.loads(done.stdout)
        return result

    def pos(self, body: dict[str, Any]) -> tuple[int, Any]:
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.listen_port}/points-qr", method="POST",
            data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())


@pytest.fixture
def make_agent(tmp_path: Path, service: Service, emulator: PrinterEmulator
               ) -> Iterator[Any]:
    started: list[AgentProcess] = []

    def make(store: str = "S1") -> AgentProcess:
        env = {**os.environ, "PRINTER_TOKEN": service.token("printer", store),
               "PRINTER_SERVICE_URL": service.url, "PRINTER_DEVICE": emulator.url,
               "PRINTER_SPOOL": str(tmp_path / "spool.sqlite3"),
               "PRINTER_LISTEN": f"127.0.0.1:{free_port()}", "PRINTER_PAPER_MM": "58",
               "PRINTER_STORE_NAME": "券派咖啡 国贸店",
               "PRINTER_CLAIM_URL": "https://m.example.cn/claim?t={token}"}
        agent = AgentProcess(env, tmp_path / "agent.log")
        started.append(agent)
        return agent

    yield make
    for agent in started:
        agent.stop()


def wait_until(check: Any, timeout: float = 90.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")
