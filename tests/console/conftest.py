"""The console in a real headless Chromium (Debian's ``chromium``, driven by Playwright) against a
real ``quanpai serve`` on a free port, the session's Redis, chDB under a temporary ``QUANPAI_VAR``,
and (for campaigns) the channel simulators and a worker as subprocesses.

Screenshots of every page go to ``var/screenshots/`` (git-ignored) so a person can look at them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from dispatcher.local_stack import stop_process
from infra.ports import free_port, wait_port
from infra.redis_server import RedisServer
from tests.catalog.conftest import single_api  # noqa: F401 - the sign-out test's API server
from tests.dispatcher.conftest import Simulators, flow_env, start_simulators

CHROMIUM = "/usr/bin/chromium"
# Playwright's own browser download is not reachable here; the system Chromium is driven
# instead, with everything that would phone home switched off.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
SECRET = "console-test-secret"
SCREENSHOTS = Path(__file__).resolve().parents[2] / "var" / "screenshots"
MEMBERS = 3000


def _quanpai(*args: str, env: dict[str, str]) -> str:
    done = subprocess.run([sys.executable, "-m", "dispatcher.cli", *args], env=env,
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


@dataclass
class Stack:
    """``quanpai serve`` (and what it needs) for the console tests."""

    url: str
    env: dict[str, str]
    var: Path
    sims: Simulators
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def token(self, role: str, *extra: str) -> str:
        return _quanpai("serve", "--print-token", role, *extra, env=self.env).strip()

    def api(self, method: str, path: str, body: Any = None) -> Any:
        """``/v1`` as an operator's script calls it (bearer token, JSON), not through a page."""
        request = urllib.request.Request(
            self.url + path, method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={"Authorization": f"Bearer {self.token('operator')}",
                     "Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=60) as response:
            return json.loads(response.read())

    def quanpai(self, *args: str) -> str:
        return _quanpai(*args, env=self.env)

    def start(self, *args: str, log: str) -> subprocess.Popen[bytes]:
        with open(self.var / f"{log}.log", "wb") as out:
            process = subprocess.Popen([sys.executable, "-m", "dispatcher.cli", *args],
                                       env=self.env, stdout=out, stderr=subprocess.STDOUT)
        self.processes.append(process)
        return process


@pytest.fixture(scope="session")
def console_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    # A Redis of its own: the stack's worker lives for the whole session and would otherwise
    # take the Dramatiq messages of later tests that share the session's Redis.
    redis_server = RedisServer(directory=tmp_path_factory.mktemp("console-redis"))
    redis_server.start()
    var = tmp_path_factory.mktemp("console-var")
    data = var / "data"
    sims = start_simulators()
    port = free_port()
    env = flow_env(redis_server.url, sims, QUANPAI_VAR=str(var), QUANPAI_SECRET=SECRET,
                   QUANPAI_SEGMENT_RULES=str(data / "rules.yaml"), QUANPAI_MERCHANT="m1")
    stack = Stack(url=f"http://127.0.0.1:{port}", env=env, var=var, sims=sims)
    try:
        stack.quanpai("data", "generate", "--members", str(MEMBERS), "--out", str(data),
                      "--seed", "7")
        (data / "rules.yaml").write_text(
            "name: console\ntimezone: Asia/Shanghai\n"
            "transactions: {path: transactions.parquet}\nmembers: {path: members.parquet}\n"
            "segments:\n  - {name: buyers, where: {has_purchased: true}}\n", encoding="utf-8")
        stack.start("serve", "--port", str(port), log="serve")
        assert wait_port("127.0.0.1", port, timeout=60), (var / "serve.log").read_text()
        stack.start("worker", "--threads", "2", log="worker")
        yield stack
    finally:
        for process in reversed(stack.processes):
            stop_process(process)
        stop_process(sims.process)
        redis_server.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Per module: Playwright's sync API keeps an event loop running in this thread while it is
    open, which would break every later test that calls asyncio.run."""
    from playwright.sync_api import sync_playwright

    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: run scripts/system-deps.sh (Debian's chromium)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


class ConsolePage:
    """One browser context (its own cookies) on the console, with the console's errors kept."""

    def __init__(self, page: Any, stack: Stack) -> None:
        self.page = page
        self.stack = stack
        self.errors: list[str] = []
        page.on("pageerror", lambda exc: self.errors.append(str(exc)))

    def open(self, route: str = "") -> None:
        self.page.goto(f"{self.stack.url}/console/#/{route}")

    def sign_in(self, token: str) -> None:
        self.open()
        self.page.get_by_label("角色令牌").fill(token)
        self.page.get_by_role("button", name="登录").click()

    def go(self, route: str) -> None:
        self.page.locator(f'nav a[data-page="{route}"]').click()
        self.page.wait_for_selector(f'nav a[data-page="{route}"][aria-current="page"]')

    def canvas_painted(self, selector: str) -> bool:
        """Whether the chart under ``selector`` has any non-transparent pixel."""
        return bool(self.page.evaluate("""(selector) => {
            const canvas = document.querySelector(selector + ' canvas');
            if (!canvas || !canvas.width || !canvas.height) return false;
            const data = canvas.getContext('2d').getImageData(0, 0, canvas.width,
                                                               canvas.height).data;
            for (let i = 3; i < data.length; i += 4) if (data[i] !== 0) return true;
            return false; }""", selector))

    def screenshot(self, name: str) -> Path:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path


@pytest.fixture
def console(browser: Any, console_stack: Stack) -> Iterator[ConsolePage]:
    context = browser.new_context(viewport={"width": 1280, "height": 800}, locale="zh-CN",
                                  timezone_id="Europe/London")
    context.set_default_timeout(20_000)
    page = ConsolePage(context.new_page(), console_stack)
    yield page
    context.close()
    assert page.errors == [], f"errors in the page: {page.errors}"
