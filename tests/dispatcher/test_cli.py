"""``quanpai campaign`` as an operator types it: a bad definition exits 2 with one line and
writes nothing; create keeps a draft; run warns when no worker is alive; Ctrl-C on ``--wait``
only stops watching (the campaign goes on and is not cancelled)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import NamedTuple

import pytest
import redis

from dispatcher.campaigns import CampaignStore
from dispatcher.cli import main
from tests.dispatcher.conftest import Simulators, flow_env
from tests.dispatcher.test_lifecycle import sms_members


class Result(NamedTuple):
    returncode: int
    stdout: str
    stderr: str


def test_create_run_and_stop_watching(redis_url: str, redis_client: redis.Redis,
                                      simulators: Simulators, tmp_path: Path,
                                      monkeypatch: pytest.MonkeyPatch,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    env = flow_env(redis_url, simulators)
    for name in ("REDIS_URL", "SMS_QUIET_HOURS", *simulators.env()):
        monkeypatch.setenv(name, env[name])

    def quanpai(*args: str) -> Result:
        code = main(["campaign", *args])
        out, err = capsys.readouterr()
        return Result(code, out, err)
    sms_members(20).to_parquet(tmp_path / "members.parquet")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: 坏\naudience: {snapshot: members.parquet}\n"
                   "channels: [sms, telegram]\n", encoding="utf-8")
    result = quanpai("create", str(bad))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "quanpai: channels[1]: unknown channel 'telegram' (use wechat, wechat_mass, sms, "
        "alipay, alipay_cash, or channels: auto)"]
    empty = tmp_path / "empty.yaml"
    sms_members(0).to_parquet(tmp_path / "none.parquet")
    empty.write_text("name: 空\naudience: {snapshot: none.parquet}\nchannels: [sms]\n",
                     encoding="utf-8")
    result = quanpai("create", str(empty))
    assert result.returncode == 2 and "audience: the audience is empty" in result.stderr
    assert redis_client.dbsize() == 0

    good = tmp_path / "good.yaml"
    good.write_text("name: 会员日\naudience: {snapshot: members.parquet}\nchannels: [sms]\n",
                    encoding="utf-8")
    result = quanpai("create", str(good))
    assert result.returncode == 0, result.stderr
    cid = result.stdout.split()[1].rstrip(":")
    assert "draft" in quanpai("list").stdout

    # No worker runs: run warns; Ctrl-C while waiting stops the watching only.
    # -X faulthandler: if Ctrl-C ever leaves it hanging, SIGABRT prints where every thread is
    watcher = subprocess.Popen(
        [sys.executable, "-X", "faulthandler", "-m", "dispatcher.cli", "campaign", "run", cid,
         "--wait"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    store = CampaignStore(client=redis_client)
    deadline = time.monotonic() + 60
    while store.status(cid) != "running":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    time.sleep(1.0)
    watcher.send_signal(signal.SIGINT)
    try:
        out, err = watcher.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        watcher.send_signal(signal.SIGABRT)
        _, stacks = watcher.communicate(timeout=30)
        raise AssertionError(f"campaign run --wait went on after Ctrl-C:\n{stacks}") from None
    assert "warning: no worker has a live heartbeat" in out
    assert f"goes on. To stop it: quanpai campaign cancel {cid}" in out
    assert "Traceback" not in err
    assert store.status(cid) == "running"
    status = quanpai("status", cid)
    assert status.returncode == 0 and "running, 0/1 batches" in status.stdout
    assert quanpai("resume", cid).returncode == 2  # not paused
    assert quanpai("cancel", cid).stdout.strip() == f"campaign {cid}: cancelled"
