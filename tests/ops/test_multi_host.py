"""A campaign across hosts: Redis and the simulators on one host, a worker group (two processes)
on each of two others, each host its own network namespace (this machine runs the tests as root).
Both hosts take batches; then every process of one host is killed at once, mid-campaign. The
other host finishes: every member issued exactly once, no SMS recipient messaged twice."""

from __future__ import annotations

import json
import os
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
import redis

from dispatcher.campaigns import CampaignStore
from dispatcher.commands.campaign import CouponSpec, run_campaign
from dispatcher.launch import wait_done
from infra.clickhouse import ChdbClient
from infra.ports import wait_port
from infra.settings import load_settings
from tests.dispatcher.test_exactly_once import check_issued_once, snapshot
from tests.ops.conftest import Samples, scrape, total
from tests.ops.netlab import NetLab, kill_namespace, pids_in

BROKER_PORT = 6380  # the queues on a Redis of their own, as docs/deploy.md sets them up
REDIS_PORT, SMS_PORT, WECHAT_PORT, ALIPAY_PORT, METRICS_PORT = 6379, 18702, 18701, 18703, 9400
QUANPAI = [sys.executable, "-m", "dispatcher.cli"]


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[NetLab]:
    if os.geteuid() != 0:
        pytest.fail("network namespaces need root: run the tests as root (CI does)")
    net = NetLab(hosts=("host-a", "host-b"))
    try:
        net.open()
        yield net
    finally:
        net.close()


def test_campaign_across_hosts_survives_losing_one(lab: NetLab, tmp_path: Path) -> None:
    services = lab.addresses["services"]
    env = {**os.environ, "REDIS_URL": f"redis://{services}:{REDIS_PORT}/0",
           "QUANPAI_BROKER_URL": f"redis://{services}:{BROKER_PORT}/0",
           "QUANPAI_VAR": str(tmp_path / "var"), "SMS_QUIET_HOURS": "off",
           "SMS_BASE_URL": f"http://{services}:{SMS_PORT}",
           "WECHAT_BASE_URL": f"http://{services}:{WECHAT_PORT}",
           "ALIPAY_BASE_URL": f"http://{services}:{ALIPAY_PORT}/gateway.do"}
    for key in ("PROMETHEUS_MULTIPROC_DIR", "QUANPAI_METRICS_OWNER", "QUANPAI_METRICS_PORT"):
        env.pop(key, None)
    for port in (REDIS_PORT, BROKER_PORT):
        (tmp_path / f"redis-{port}").mkdir()
        lab.spawn("services", ["redis-server", "--bind", "0.0.0.0", "--port", str(port),
                               "--protected-mode", "no", "--dir", str(tmp_path / f"redis-{port}"),
                               "--appendonly", "yes", "--save", "", "--maxmemory-policy",
                               "noeviction"], env=env, log=tmp_path / f"redis-{port}.log")
    lab.spawn("services", [*QUANPAI, "simulate", "--host", "0.0.0.0", "--latency-ms", "300",
                           "--sms-port", str(SMS_PORT), "--wechat-port", str(WECHAT_PORT),
                           "--alipay-port", str(ALIPAY_PORT)], env=env, log=tmp_path / "sim.log")
    assert wait_port(services, REDIS_PORT, timeout=30), "redis did not start on its host"
    assert wait_port(services, BROKER_PORT, timeout=30), "broker redis did not start"
    assert wait_port(services, SMS_PORT, timeout=60), "simulators did not start on their host"
    for host in ("host-a", "host-b"):
        lab.spawn(host, [*QUANPAI, "--metrics-port", str(METRICS_PORT), "worker", "--threads",
                         "4", "--processes", "2", "--heartbeat-timeout-ms", "1500",
                         "--maintenance-chance", "1000000"],
                  env={**env, "QUANPAI_METRICS_HOST": "0.0.0.0"}, log=tmp_path / f"{host}.log")
    for host in ("host-a", "host-b"):
        assert wait_port(lab.addresses[host], METRICS_PORT, timeout=60), f"{host} did not start"

    settings = replace(load_settings({k: v for k, v in env.items()
                                      if k.startswith(("REDIS_", "SMS_", "QUANPAI_VAR",
                                                       "QUANPAI_BROKER"))}),
                       batch_size=25)
    members = snapshot(1000)
    client = redis.Redis.from_url(settings.redis_url or "")
    campaign = run_campaign(members, settings=settings, name="跨主机", channels=("sms",),
                            holdout_permille=0, coupon=CouponSpec(), wait=False, timeout=60)
    store = CampaignStore(client=client)

    def processed(host: str) -> float:
        return total(scrape_host(lab, host), "dramatiq_messages_total",
                     actor_name="process_batch")

    deadline = time.monotonic() + 120
    while processed("host-a") < 2 or processed("host-b") < 2:
        assert time.monotonic() < deadline, "both hosts should be taking batches"
        time.sleep(0.05)
    assert pids_in(lab.namespace("host-a")), "host-a has no processes to kill"
    kill_namespace(lab.namespace("host-a"))  # power loss: parent and both worker processes
    assert not pids_in(lab.namespace("host-a"))
    done_at_kill = store.progress(campaign.campaign_id).batches_done
    assert done_at_kill < campaign.total_batches, "the campaign ended before the host died"

    assert wait_done(store=store, campaign=campaign, timeout=180), "host-b did not finish"
    assert store.status(campaign.campaign_id) == "completed"
    assert processed("host-b") >= campaign.total_batches - done_at_kill
    sms = sms_counts(services)
    assert sms.get("recipients") == len(members)
    assert sms.get("repeats", 0) == 0  # calls in flight on host-a were resolved, not resent
    # The queues lived on the broker's Redis only; the catalog's Redis has none of them.
    broker = redis.Redis.from_url(env["QUANPAI_BROKER_URL"])
    assert broker.keys("quanpai-dq:*")
    broker.close()
    assert not client.keys("quanpai-dq:*")
    chdb = ChdbClient(path=tmp_path / "chdb")
    try:
        check_issued_once(client, chdb, settings=settings, campaign=campaign, members=members)
    finally:
        chdb.close()
        client.close()


def scrape_host(lab: NetLab, host: str) -> Samples:
    try:
        return scrape(METRICS_PORT, address=lab.addresses[host])
    except OSError:
        return {}


def sms_counts(address: str) -> dict[str, int]:
    with urllib.request.urlopen(f"http://{address}:{SMS_PORT}/_sim/stats", timeout=10) as reply:
        counts: dict[str, int] = json.load(reply)["counts"]
        return counts
