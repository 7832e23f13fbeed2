"""Recovery after a worker SIGKILL: two worker processes run an SMS campaign; one is killed
with SIGKILL a fifth of the way in, holding batches it had prefetched and started.

Measures the time from the kill until the dead worker's batches are back in work (the broker's
maintenance drops the dead worker's heartbeat and requeues its unacknowledged messages in the
same step; target ≤ 60 s, it was 80–205 s with Dramatiq's defaults) and until the campaign
completes, and checks that no member was messaged twice (the SMS simulator's ``repeats``).
The broker settings are the production defaults of ``dispatcher/broker.py``.
"""

from __future__ import annotations

import json
import tempfile
import time
import urllib.request
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from bench.report import Result
from dispatcher.broker import NAMESPACE
from dispatcher.definition import parse_definition
from dispatcher.launch import launch_campaign
from dispatcher.local_stack import _spawn, env_for, local_stack, stop_process
from dispatcher.operations import build_launch_deps
from infra.settings import load_settings

SIZES = {"quick": 3_000, "full": 30_000}
TARGET_S = 60.0


def _members(n: int) -> pd.DataFrame:
    return pd.DataFrame({
        "member_id": [f"R{i:07d}" for i in range(n)], "name": ["会员"] * n,
        "phone": [f"137{i:08d}" for i in range(n)], "consent_sms": [True] * n,
    })


def _sms_counts(base_url: str) -> dict[str, int]:
    with urllib.request.urlopen(f"{base_url}/_sim/stats") as reply:
        counts: dict[str, int] = json.load(reply)["counts"]
        return counts


def run_one(members: int, *, root: Path) -> list[Result]:
    settings = replace(load_settings({"SMS_QUIET_HOURS": "off"}), var_dir=root / "var",
                       redis_url=None, clickhouse_url=None, batch_size=50)
    scenario = f"recovery after SIGKILL, {members:,} members"
    # 20 ms a provider call keeps the campaign running long enough to kill a worker mid-way.
    with local_stack(settings, processes=0, sim_args=("--latency-ms", "20")) as wired:
        env = env_for(wired)
        logs = wired.var_dir / "logs" / "worker.log"
        doomed = _spawn(["worker", "--threads", "4"], env, logs)
        survivor = _spawn(["worker", "--threads", "4"], env, logs)
        try:
            deps = build_launch_deps(wired)
            definition = parse_definition({"name": "恢复", "audience": {"snapshot": "-"},
                                           "channels": ["sms"]})
            cid = launch_campaign(definition, _members(members), deps=deps,
                                  now=datetime.now(UTC))
            total = deps.store.get(cid).total_batches
            while deps.store.progress(cid).batches_done < total // 5:
                time.sleep(0.05)
            beats = f"{NAMESPACE}:__heartbeats__"
            now_ms = time.time() * 1000
            # The workers that called the broker in the last second (not the launcher).
            beating: Any = deps.client.zrange(beats, 0, -1, withscores=True)
            live = {m for m, score in beating if score > now_ms - 1000}
            doomed.kill()
            killed = time.monotonic()
            doomed.wait()
            back = None
            deadline = killed + 600
            while deps.store.status(cid) != "completed":
                if back is None and not live <= set(deps.client.zrange(beats, 0, -1)):
                    back = time.monotonic() - killed
                if time.monotonic() > deadline:
                    raise RuntimeError(f"campaign not completed 600 s after the kill: "
                                       f"{deps.store.progress(cid)}")
                time.sleep(0.05)
            completed = time.monotonic() - killed
            if back is None:  # the survivor finished everything before maintenance ran
                back = completed
            counts = _sms_counts(wired.sms.base_url)
        finally:
            stop_process(survivor)
            if doomed.poll() is None:
                stop_process(doomed)
    if counts.get("repeats", 0) or counts.get("recipients", 0) != members:
        raise RuntimeError(f"SMS counts after recovery: {counts}")
    return [
        Result(scenario, "kill -> dead worker's batches back in work", back, "s",
               target=TARGET_S),
        Result(scenario, "kill -> campaign completed", completed, "s"),
        Result(scenario, "SMS numbers messaged twice", counts.get("repeats", 0), "numbers",
               target=0),
    ]


def run(*, size: str) -> list[Result]:
    with tempfile.TemporaryDirectory(prefix="quanpai-bench-recovery-") as tmp:
        return run_one(SIZES[size], root=Path(tmp))
