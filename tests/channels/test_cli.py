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

from infra.ports import free_port, wait_port


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


def test_bad_share_exits_2_with_one_line() -> None:
    proc = _cli("--error-share", "1.5")
    _out, err = proc.communicate(timeout=30)
    assert proc.returncode == 2
    assert err.strip().splitlines() == ["quanpai: --error-share=1.5 must be between 0 and 1"]
