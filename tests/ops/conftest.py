"""A demo-sized campaign through every real process: simulators, callback receiver, two worker
processes under one ``quanpai worker``, the loader (chDB), the HTTP API and the launcher, each
with its own log file and, where it has one, its ``/metrics`` port. Runs once per module."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pytest
import redis

from dispatcher.campaigns import CampaignStore, Progress
from dispatcher.local_stack import stop_process
from infra.ports import free_port, wait_port
from infra.redis_server import RedisServer
from segmentation.synthetic import generate

MEMBERS = 300
CHANNELS = "wechat,sms,alipay"


Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(port: int, path: str = "/metrics", *, address: str = "127.0.0.1") -> Samples:
    """Every sample of a Prometheus endpoint: (name, sorted labels) -> value."""
    from prometheus_client.parser import text_string_to_metric_families

    with urllib.request.urlopen(f"http://{address}:{port}{path}", timeout=10) as reply:
        text = reply.read().decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def total(samples: Samples, name: str,
          **labels: str) -> float:
    """The sum of ``name``'s samples whose labels include ``labels``."""
    return sum(v for (n, ls), v in samples.items()
               if n == name and all((k, v2) in ls for k, v2 in labels.items()))


@dataclass
class DuringScrape:
    """A worker scrape taken while the campaign ran, with the counts read just before it."""

    counts_before: dict[str, int]
    samples: Samples


@dataclass
class CampaignRun:
    members: pd.DataFrame
    campaign_id: str
    total_batches: int
    redis_url: str
    var_dir: Path
    ports: dict[str, int]
    logs: dict[str, str] = field(default_factory=dict)  # process -> everything it wrote
    during: list[DuringScrape] = field(default_factory=list)
    progress: Progress | None = None
    after: dict[str, Samples] = field(default_factory=dict)  # process -> final scrape


def _watch(store: CampaignStore, stop: threading.Event, run: CampaignRun, port: int) -> None:
    while not stop.is_set():
        ids = store.list_ids()
        if ids:
            before = store.progress(ids[0]).counts
            with contextlib.suppress(OSError):
                run.during.append(DuringScrape(before, scrape(port)))
        stop.wait(0.25)


@pytest.fixture(scope="module")
def demo_campaign(
    redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[CampaignRun]:
    """DEBUG logs everywhere (Dramatiq then logs whole batch messages, phone numbers and all),
    provider latency so scrapes land mid-campaign, and a share of unsubscribed openids so
    failures and fallbacks are logged and counted. (Provider 5xx answers would defer their
    batches for a minute or more: the counts would not be final within a test.)"""
    client = redis.Redis.from_url(redis_server.url)
    client.flushall()
    root = tmp_path_factory.mktemp("demo")
    generate(members=MEMBERS, out_dir=root / "data", seed=11)
    members = pd.read_parquet(root / "data" / "members.parquet")
    snapshot = root / "snapshot.parquet"
    members.to_parquet(snapshot)
    logs_dir = root / "logs"
    logs_dir.mkdir()
    ports = {name: free_port() for name in ("wechat", "sms", "alipay", "callbacks", "api",
                                            "m_worker", "m_callbacks", "m_loader")}
    env = {**os.environ, "REDIS_URL": redis_server.url, "QUANPAI_VAR": str(root / "var"),
           "SMS_QUIET_HOURS": "off", "QUANPAI_LOG_LEVEL": "DEBUG", "QUANPAI_BATCH_SIZE": "25",
           "WECHAT_BASE_URL": f"http://127.0.0.1:{ports['wechat']}",
           "SMS_BASE_URL": f"http://127.0.0.1:{ports['sms']}",
           "ALIPAY_BASE_URL": f"http://127.0.0.1:{ports['alipay']}/gateway.do"}
    for key in ("PROMETHEUS_MULTIPROC_DIR", "QUANPAI_METRICS_OWNER", "QUANPAI_METRICS_PORT"):
        env.pop(key, None)
    started: dict[str, subprocess.Popen[bytes]] = {}

    def spawn(name: str, *args: str) -> None:
        started[name] = subprocess.Popen(
            [sys.executable, "-m", "dispatcher.cli", *args], env=env,
            stdout=(logs_dir / f"{name}.log").open("ab"), stderr=subprocess.STDOUT)

    run = CampaignRun(members=members, campaign_id="", total_batches=0, redis_url=redis_server.url,
                      var_dir=root / "var", ports=ports)
    try:
        spawn("callbacks", "--metrics-port", str(ports["m_callbacks"]), "callbacks",
              "--port", str(ports["callbacks"]))
        spawn("sim", "simulate", "--wechat-port", str(ports["wechat"]), "--sms-port",
              str(ports["sms"]), "--alipay-port", str(ports["alipay"]), "--callback-url",
              f"http://127.0.0.1:{ports['callbacks']}", "--latency-ms", "150",
              "--unsubscribed-share", "0.1")
        spawn("worker", "--metrics-port", str(ports["m_worker"]), "worker", "--threads", "3",
              "--processes", "2")
        spawn("loader", "--metrics-port", str(ports["m_loader"]), "loader")
        spawn("api", "serve", "--port", str(ports["api"]))
        for name in ("callbacks", "sms", "m_worker", "m_loader", "api"):
            assert wait_port("127.0.0.1", ports[name], timeout=60), f"{name} did not start"
        store = CampaignStore(client=client)
        stop = threading.Event()
        watcher = threading.Thread(target=_watch, args=(store, stop, run, ports["m_worker"]))
        watcher.start()
        try:
            done = subprocess.run(
                [sys.executable, "-m", "dispatcher.cli", "campaign", "run", "--snapshot",
                 str(snapshot), "--channels", CHANNELS, "--wait", "--timeout", "240"],
                env=env, capture_output=True, text=True, timeout=300)
        finally:
            stop.set()
            watcher.join()
        (logs_dir / "launcher.log").write_text(done.stdout + done.stderr, encoding="utf-8")
        assert done.returncode == 0, done.stderr[-3000:]
        run.campaign_id = done.stdout.rsplit("campaign ", 1)[1].split(":", 1)[0]
        run.progress = store.progress(run.campaign_id)
        run.total_batches = store.get(run.campaign_id).total_batches
        _settle_callbacks_and_loader(client, ports)
        for name in ("m_worker", "m_callbacks", "m_loader"):
            run.after[name] = scrape(ports[name])
        for path in ("/v1/health", "/v1/health", "/v1/ready", "/v1/no-such-route"):
            with contextlib.suppress(urllib.error.HTTPError):
                urllib.request.urlopen(f"http://127.0.0.1:{ports['api']}{path}", timeout=10)
        run.after["api"] = scrape(ports["api"])
    finally:
        for process in reversed(started.values()):
            stop_process(process)
        client.close()
    run.logs = {p.stem: p.read_text(encoding="utf-8") for p in sorted(logs_dir.glob("*.log"))}
    yield run


def _settle_callbacks_and_loader(client: redis.Redis, ports: dict[str, int]) -> None:
    """Delivery receipts arrive after the sends and the loader drains the stream behind them:
    wait until the callbacks' counters and the loader's rows stop moving and the stream is
    empty."""
    deadline, last, quiet_since = time.monotonic() + 60, None, time.monotonic()
    while time.monotonic() < deadline:
        now = (total(scrape(ports["m_callbacks"]), "quanpai_campaign_members_total"),
               total(scrape(ports["m_loader"]), "quanpai_loader_rows_total"),
               client.xlen("quanpai:events"))
        if now != last:
            last, quiet_since = now, time.monotonic()
        elif now[2] == 0 and time.monotonic() - quiet_since > 2.0:
            return
        time.sleep(0.3)
