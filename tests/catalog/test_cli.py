"""``quanpai serve``: tokens from the command line, one-line errors, and the real server process
answering over HTTP."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request

from infra.ports import free_port, wait_port
from infra.tokens import verify_bearer as verify_token


def _quanpai(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "dispatcher.cli", *args], env=env,
                          capture_output=True, text=True, timeout=60)


def test_print_token_and_usage_errors(redis_url: str) -> None:
    env = {**os.environ, "REDIS_URL": redis_url, "QUANPAI_SECRET": "s3cret",
           "QUANPAI_MERCHANT": "shop"}
    done = _quanpai("serve", "--print-token", "cashier", "--store", "S9", env=env)
    assert done.returncode == 0, done.stderr
    who = verify_token("Bearer " + done.stdout.strip(), secret=b"s3cret")
    assert (who.role, who.merchant_id, who.store_id) == ("cashier", "shop", "S9")
    bad = _quanpai("serve", "--print-token", "cashier", env=env)
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1
    assert "store" in bad.stderr
    bad = _quanpai("serve", "--print-token", "boss", env=env)
    assert bad.returncode == 2 and "role" in bad.stderr


def test_serve_answers_over_http(redis_url: str) -> None:
    port = free_port()
    env = {**os.environ, "REDIS_URL": redis_url}
    process = subprocess.Popen([sys.executable, "-m", "dispatcher.cli", "serve", "--port",
                                str(port)], env=env, stderr=subprocess.PIPE)
    try:
        assert wait_port("127.0.0.1", port, timeout=30)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/openapi.json") as resp:
            assert resp.status == 200 and b"/v1/checkout/quote" in resp.read()
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/members/M1/wallet")
            raise AssertionError("an unauthenticated wallet read must fail")
        except urllib.error.HTTPError as exc:
            assert exc.code == 401
    finally:
        process.send_signal(signal.SIGINT)
        deadline = time.monotonic() + 20
        while process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        if process.poll() is None:
            process.kill()
        process.wait()
