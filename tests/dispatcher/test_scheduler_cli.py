"""``quanpai schedule`` and ``quanpai scheduler`` as an operator runs them (subprocesses of this
venv's ``quanpai``, the test Redis): definitions in and out, bad input as one line and exit 2,
and two scheduler processes where the standby takes over after the holder is killed."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import redis
import yaml

from dispatcher.scheduler.lease import lease_key
from dispatcher.scheduler.store import text
from segmentation.synthetic import GeneratedData
from tests.dispatcher.scheduler_support import definition, member_base


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> GeneratedData:
    return member_base(tmp_path_factory.mktemp("cli"), members=200, seed=5)


def quanpai(redis_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "REDIS_URL": redis_url, "QUANPAI_LANG": "en"}
    return subprocess.run([sys.executable, "-m", "dispatcher.cli", *args], env=env,
                          capture_output=True, text=True, timeout=120)


def test_schedule_commands(redis_url: str, redis_client: redis.Redis, base: GeneratedData,
                           tmp_path: Path) -> None:
    file = tmp_path / "bday.yaml"
    source = definition("bday", {"type": "birthday", "days_before": 3}, base, name="生日券")
    file.write_text(yaml.safe_dump(source, allow_unicode=True), encoding="utf-8")
    added = quanpai(redis_url, "schedule", "add", str(file))
    assert added.returncode == 0, added.stderr
    assert "bday added: 生日券, birthday" in added.stdout
    again = quanpai(redis_url, "schedule", "add", str(file))
    assert again.returncode == 2 and "--replace" in again.stderr
    listed = quanpai(redis_url, "schedule", "list")
    assert "bday" in listed.stdout and "active" in listed.stdout
    members = pd.read_parquet(base.members)
    born = members[~members.birthday_is_lunar & members.birthday.notna()].birthday.iloc[0]
    day = dt.date(2025, born.month, min(born.day, 28)) - dt.timedelta(days=3)
    preview = quanpai(redis_url, "schedule", "preview", "bday", "--date", day.isoformat())
    assert preview.returncode == 0, preview.stderr
    lines = dict(line.strip().split(": ", 1) for line in preview.stdout.splitlines()[1:6])
    assert int(lines["would send"]) == int(lines["triggered"]) > 0
    assert quanpai(redis_url, "schedule", "pause", "bday").returncode == 0
    assert "paused" in quanpai(redis_url, "schedule", "list").stdout
    assert "bday" not in quanpai(redis_url, "schedule", "next").stdout
    assert quanpai(redis_url, "schedule", "resume", "bday").returncode == 0
    upcoming = quanpai(redis_url, "schedule", "next", "--count", "2").stdout
    assert upcoming.startswith("bday") and upcoming.count(":") == 2
    shown = quanpai(redis_url, "schedule", "show", "bday")
    assert '"days_before": 3' in shown.stdout
    assert quanpai(redis_url, "schedule", "delete", "bday").returncode == 0
    gone = quanpai(redis_url, "schedule", "show", "bday")
    assert gone.returncode == 2 and gone.stderr.count("\n") == 1


@pytest.mark.parametrize(("change", "field"), [
    ({"trigger": {"type": "wake_up", "inactive_days": 30}}, "trigger.cooldown_days"),
    ({"channels": ["fax"]}, "channels[0]"),
])
def test_bad_definitions_change_nothing(redis_url: str, redis_client: redis.Redis,
                                        base: GeneratedData, tmp_path: Path,
                                        change: dict[str, object], field: str) -> None:
    file = tmp_path / "bad.yaml"
    file.write_text(yaml.safe_dump({**definition("bad", {"type": "birthday"}, base), **change}),
                    encoding="utf-8")
    result = quanpai(redis_url, "schedule", "add", str(file))
    assert result.returncode == 2
    assert field in result.stderr and result.stderr.count("\n") == 1
    assert "Traceback" not in result.stderr
    assert redis_client.keys("*") == []


def test_redis_down_is_one_line(base: GeneratedData) -> None:
    result = quanpai("redis://127.0.0.1:1", "schedule", "list")
    assert result.returncode != 0 and result.stderr.count("\n") == 1
    assert "cannot reach Redis" in result.stderr


def test_a_standby_scheduler_takes_over_within_30_s(redis_url: str,
                                                    redis_client: redis.Redis) -> None:
    env = {**os.environ, "REDIS_URL": redis_url}
    command = [sys.executable, "-m", "dispatcher.cli", "scheduler", "--lease-seconds", "3",
               "--interval", "0.5"]
    first = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL)
    time.sleep(0.1)
    second = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while (holder := redis_client.get(lease_key("demo"))) is None:
            assert time.monotonic() < deadline, "no scheduler took the lease"
            time.sleep(0.1)
        token, _, name = text(holder).partition(":")
        leader, standby = ((first, second) if name.endswith(f":{first.pid}")
                           else (second, first))
        time.sleep(2)  # the standby keeps standing by while the holder lives
        assert redis_client.get(lease_key("demo")) == holder
        leader.kill()  # SIGKILL: no release
        leader.wait()
        killed_at = time.monotonic()
        while True:
            current = redis_client.get(lease_key("demo"))
            if current is not None and text(current).endswith(f":{standby.pid}"):
                break
            assert time.monotonic() - killed_at < 30, "the standby did not take over in 30 s"
            time.sleep(0.1)
        assert int(text(current).split(":")[0]) > int(token)  # a new fencing token
        assert standby.poll() is None
        standby.terminate()  # a clean stop releases the lease at once
        assert standby.wait(timeout=30) == 0
        assert redis_client.get(lease_key("demo")) is None
    finally:
        for process in (first, second):
            if process.poll() is None:
                process.kill()
                process.wait()

