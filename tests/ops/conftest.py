"""A demo-sized campaign through the real processes (Redis, simulators, callbacks, a worker
and the launcher, each its own process), with every process's log kept for inspection."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest

from dispatcher.local_stack import env_for, local_stack
from infra.redis_server import RedisServer
from infra.settings import Settings, load_settings
from segmentation.synthetic import generate

MEMBERS = 300


@dataclass
class CampaignRun:
    settings: Settings
    members: pd.DataFrame
    campaign_id: str
    logs: dict[str, str]  # process -> everything it wrote


def _launch(snapshot: Path, settings: Settings, log: Path) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "dispatcher.cli", "campaign", "run", "--snapshot", str(snapshot),
         "--channels", "wechat,sms,alipay", "--wait", "--timeout", "240"],
        env=env_for(settings), capture_output=True, text=True, timeout=300,
    )
    log.write_text(done.stdout + done.stderr, encoding="utf-8")
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.rsplit("campaign ", 1)[1].split(":", 1)[0]


@pytest.fixture(scope="module")
def demo_campaign(
    redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[CampaignRun]:
    """Runs once per module: DEBUG logs everywhere (Dramatiq then logs whole batch messages),
    and a share of provider errors so retries and failures are logged too."""
    import redis

    redis.Redis.from_url(redis_server.url).flushall()
    root = tmp_path_factory.mktemp("demo")
    generate(members=MEMBERS, out_dir=root / "data", seed=11)
    members = pd.read_parquet(root / "data" / "members.parquet")
    snapshot = root / "snapshot.parquet"
    members.to_parquet(snapshot)
    env = {"REDIS_URL": redis_server.url, "QUANPAI_VAR": str(root / "var"),
           "SMS_QUIET_HOURS": "off", "QUANPAI_LOG_LEVEL": "DEBUG"}
    mp = pytest.MonkeyPatch()
    for key, value in env.items():
        mp.setenv(key, value)  # local_stack hands the environment to its children
    try:
        settings = load_settings(env)
        with local_stack(settings, threads=4,
                         sim_args=("--error-share", "0.05", "--invalid-share", "0.02")) as wired:
            campaign_id = _launch(snapshot, wired, root / "var" / "logs" / "launcher.log")
        logs = {p.stem: p.read_text(encoding="utf-8")
                for p in sorted((root / "var" / "logs").glob("*.log"))}
        yield CampaignRun(settings=wired, members=members, campaign_id=campaign_id, logs=logs)
    finally:
        mp.undo()
