"""Exactly-once issuance per (campaign, member) through the real queue: a batch delivered twice
and a worker killed in the middle of batches issue nothing twice, counted in Redis (the catalog's
own answer and its stock) and in ClickHouse (the ROI query)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd
import redis

from analytics.events import decode_events
from analytics.loader import drain
from analytics.roi import campaign_roi
from analytics.stream import StreamReader
from dispatcher.actors import register_actors
from dispatcher.broker import make_broker
from dispatcher.campaigns import CampaignStore
from dispatcher.commands.campaign import CouponSpec, run_campaign
from dispatcher.launch import wait_done
from dispatcher.local_stack import stop_process as stop
from dispatcher.planner import plan
from dispatcher.worker import start_worker
from infra.clickhouse import ChdbClient
from tests.dispatcher.conftest import Simulators, flow_env, flow_settings
from tests.dispatcher.test_crash import check_issued_once as check_catalog_issued_once


def snapshot(n: int) -> pd.DataFrame:
    return pd.DataFrame({
        "member_id": [f"M{i:06d}" for i in range(n)],
        "name": ["李雷"] * n,
        "phone": [f"139{i:08d}" for i in range(n)],
        "consent_sms": [True] * n,
        "wechat_openid": [None] * n,
    })


def sms_counts(sims: Simulators) -> dict[str, int]:
    with urllib.request.urlopen(f"http://127.0.0.1:{sims.ports['sms']}/_sim/stats") as reply:
        counts: dict[str, int] = json.load(reply)["counts"]
        return counts


def sms_recipients(sims: Simulators) -> int:
    return int(sms_counts(sims).get("recipients", 0))


def check_issued_once(
    client: redis.Redis, chdb: ChdbClient, *, settings, campaign, members: pd.DataFrame
) -> None:
    check_catalog_issued_once(client, campaign, settings, members)
    ids = members["member_id"].tolist()
    reader = StreamReader(client=client, stream=settings.events_stream, consumer="t")
    drain(reader=reader, ch=chdb)
    [row] = campaign_roi(chdb, merchant_id=campaign.merchant_id, campaign_id=campaign.campaign_id)
    assert row.issued == len(ids)
    assert row.sent == len(ids)
    assert row.failed == 0


def test_redelivered_batches_issue_and_send_nothing_twice(
    redis_url: str, redis_client: redis.Redis, simulators: Simulators, chdb_client: ChdbClient
) -> None:
    settings = replace(flow_settings(redis_url, simulators), batch_size=100)
    members = snapshot(500)
    worker = start_worker(settings, threads=4)
    try:
        campaign = run_campaign(members, settings=settings, name="t", channels=("sms",),
                                holdout_permille=0, coupon=CouponSpec(), wait=True, timeout=60)
        assert campaign.status == "completed"
        sent_before = sms_recipients(simulators)
        assert sent_before == 500
        entries_before = redis_client.xlen(settings.events_stream)

        # The broker hands the same batches out again (as after a lost acknowledgement).
        batches = plan(members, campaign=campaign, batch_size=100).batches
        actor = register_actors(make_broker(redis_url), processor=None)
        for batch_no in (0, 3):
            actor.send(campaign.campaign_id, batch_no, [list(r) for r in batches[batch_no]])
        deadline = time.monotonic() + 30
        while redis_client.xlen(settings.events_stream) < entries_before + 2:
            assert time.monotonic() < deadline, "redelivered batches were not processed"
            time.sleep(0.05)
    finally:
        worker.stop()
    assert sms_recipients(simulators) == sent_before
    # The redelivered batches emitted their issued events again (500 + 2 × 100); the ROI query
    # below still counts 500.
    entries: Any = redis_client.xrange(settings.events_stream)
    emitted = [e for _, fields in entries
               for e in decode_events(fields[b"e"]) if e.event_type == "issued"]
    assert len(emitted) == 700
    check_issued_once(redis_client, chdb_client, settings=settings, campaign=campaign,
                      members=members)


def test_worker_killed_mid_campaign_issues_each_coupon_once(
    redis_url: str, redis_client: redis.Redis, slow_simulators: Simulators,
    chdb_client: ChdbClient,
) -> None:
    settings = replace(flow_settings(redis_url, slow_simulators), batch_size=25)
    members = snapshot(1000)
    env = flow_env(redis_url, slow_simulators)
    worker_cmd = [sys.executable, "-m", "dispatcher.cli", "worker", "--threads", "4",
                  "--heartbeat-timeout-ms", "1500", "--maintenance-chance", "1000000"]
    first = subprocess.Popen(worker_cmd, env=env, stdout=subprocess.DEVNULL)
    campaign = run_campaign(members, settings=settings, name="t", channels=("sms",),
                            holdout_permille=0, coupon=CouponSpec(), wait=False, timeout=60)
    store = CampaignStore(client=redis_client)
    deadline = time.monotonic() + 60
    while store.progress(campaign.campaign_id).batches_done < 4:
        assert time.monotonic() < deadline, "the first worker made no progress"
        time.sleep(0.02)
    first.kill()  # SIGKILL: batches in hand are neither finished nor acknowledged
    first.wait()
    done_at_kill = store.progress(campaign.campaign_id).batches_done
    assert done_at_kill < campaign.total_batches
    second = subprocess.Popen(worker_cmd, env=env, stdout=subprocess.DEVNULL)
    try:
        assert wait_done(store=store, campaign=campaign, timeout=120)
        assert store.status(campaign.campaign_id) == "completed"
    finally:
        stop(second)
    # The calls in flight at the kill were resolved with QuerySendDetails, not resent.
    assert sms_recipients(slow_simulators) == 1000
    assert sms_counts(slow_simulators).get("repeats", 0) == 0
    check_issued_once(redis_client, chdb_client, settings=settings, campaign=campaign,
                      members=members)


def test_quiet_hours_defer_sms_without_spending_retries(
    redis_url: str, redis_client: redis.Redis, simulators: Simulators
) -> None:
    local = datetime.now(UTC).astimezone(ZoneInfo("Asia/Shanghai"))
    window = f"{(local - timedelta(hours=1)):%H:%M}-{(local + timedelta(hours=2)):%H:%M}"
    settings = replace(flow_settings(redis_url, simulators, SMS_QUIET_HOURS=window),
                       batch_size=50)
    worker = start_worker(settings, threads=2)
    try:
        campaign = run_campaign(snapshot(120), settings=settings, name="t", channels=("sms",),
                                holdout_permille=0, coupon=CouponSpec(), wait=True, timeout=60)
    finally:
        worker.stop()
    state = CampaignStore(client=redis_client).progress(campaign.campaign_id)
    assert (state.batches_done, state.batches_deferred) == (0, 3)
    assert sms_recipients(simulators) == 0
    # The rest of each batch waits in the broker's delay queue until the window ends (~2 h).
    delayed = redis_client.hlen("quanpai-dq:campaigns.DQ.msgs")
    assert delayed == 3


def test_campaign_with_bad_content_exits_2_and_writes_nothing(
    redis_url: str, redis_client: redis.Redis, simulators: Simulators, tmp_path
) -> None:
    path = tmp_path / "snapshot.parquet"
    snapshot(10).to_parquet(path)
    env = flow_env(redis_url, simulators)
    result = subprocess.run(
        [sys.executable, "-m", "dispatcher.cli", "campaign", "run", "--snapshot", str(path),
         "--channels", "sms", "--title", "超长的优惠券标题" * 5],
        env=env, capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 2, result.stderr
    assert "sms.variables.coupon" in result.stderr and "Traceback" not in result.stderr
    assert redis_client.dbsize() == 0
