"""Steering campaigns mid-run, dead letters and requeue, a frequency cap across campaigns, budget
and stock under racing worker processes, and a duration card extended exactly once: real
Dramatiq workers on the test Redis, the simulators over HTTP."""

from __future__ import annotations

import subprocess
import sys
import time
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pandas as pd
import redis

from analytics.events import decode_events
from catalog.issuance import issue_batch
from catalog.templates import CouponTemplate, save_template, stock_left
from dispatcher.definition import CampaignDefinition, parse_definition
from dispatcher.launch import launch_campaign
from dispatcher.local_stack import stop_process as stop
from dispatcher.operations import build_launch_deps, steer
from dispatcher.planner import plan
from dispatcher.worker import start_worker
from tests.dispatcher.conftest import Simulators, flow_env, flow_settings
from tests.dispatcher.test_crash import stats, wait_status


def sms_members(n: int, start: int = 0) -> pd.DataFrame:
    return pd.DataFrame({
        "member_id": [f"M{i:05d}" for i in range(start, start + n)], "name": ["王芳"] * n,
        "phone": [f"139{i:08d}" for i in range(start, start + n)], "consent_sms": [True] * n,
    })


def definition(**extra: object) -> CampaignDefinition:
    return parse_definition({"name": "测试", "audience": {"snapshot": "-"},
                             "channels": ["sms"], **extra})


def recipients(sims: Simulators) -> int:
    return int(stats(sims, "sms").get("recipients", 0))


def settled_within(sims: Simulators, seconds: float) -> int:
    """SMS recipients once ``seconds`` have passed; asserts nothing more went out after."""
    time.sleep(seconds)
    seen = recipients(sims)
    time.sleep(1.5)
    assert recipients(sims) == seen, "messages still going out"
    return seen


def test_pause_resume_cancel_take_effect_mid_run(
    redis_url: str, redis_client: redis.Redis, slow_simulators: Simulators,
) -> None:
    sims = slow_simulators  # 300 ms a provider call: the campaign takes several seconds
    settings = replace(flow_settings(redis_url, sims), batch_size=5)
    deps = build_launch_deps(settings)
    worker = start_worker(settings, threads=2)
    try:
        cid = launch_campaign(definition(), sms_members(200), deps=deps, now=datetime.now(UTC))
        deadline = time.monotonic() + 60
        while recipients(sims) < 10:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert steer(deps.store, cid, "pause") == "paused"
        paused_at = settled_within(sims, 2.0)
        assert paused_at < 200 and deps.store.status(cid) == "paused"
        assert steer(deps.store, cid, "resume") == "running"
        while recipients(sims) < paused_at + 10:
            assert time.monotonic() < deadline + 60, "resume did not restart sending"
            time.sleep(0.05)
        assert steer(deps.store, cid, "cancel") == "cancelled"
        cancelled_at = settled_within(sims, 2.0)
        assert cancelled_at < 200
        # Every batch still ends (as cancelled): nothing is left queued, nothing more sent.
        campaign = deps.store.get(cid)
        while deps.store.progress(cid).batches_done < campaign.total_batches:
            assert time.monotonic() < deadline + 120, "cancelled batches not drained"
            time.sleep(0.1)
    finally:
        worker.stop()
    assert deps.store.status(cid) == "cancelled"
    assert recipients(sims) == cancelled_at
    assert stats(sims, "sms").get("repeats", 0) == 0


def test_dead_letter_then_requeue(
    redis_url: str, redis_client: redis.Redis, simulators: Simulators,
) -> None:
    settings = replace(flow_settings(redis_url, simulators), batch_size=20)
    deps = build_launch_deps(settings)
    broken = replace(settings, sms=replace(settings.sms, access_key_secret="wrong"))
    worker = start_worker(broken, threads=2)
    try:
        cid = launch_campaign(definition(), sms_members(60), deps=deps, now=datetime.now(UTC))
        state = wait_status(deps.store, cid, {"completed", "completed_with_failures"}, 60)
    finally:
        worker.stop()
    assert state == "completed_with_failures"
    letters = deps.store.dead_letters(cid)
    assert sorted(letters) == [0, 1, 2]
    assert all(v["reason"].startswith("SignatureDoesNotMatch") for v in letters.values())
    assert deps.store.progress(cid).counts == {"failed:sms": 60}
    assert recipients(simulators) == 0

    worker = start_worker(settings, threads=2)
    try:
        env = flow_env(redis_url, simulators)
        result = subprocess.run([sys.executable, "-m", "dispatcher.cli", "campaign", "requeue",
                                 cid], env=env, capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr
        assert "3" in result.stdout
        state = wait_status(deps.store, cid, {"completed", "completed_with_failures"}, 60)
    finally:
        worker.stop()
    assert state == "completed"
    assert deps.store.progress(cid).counts == {"sent:sms": 60}
    assert deps.store.dead_letters(cid) == {}
    assert recipients(simulators) == 60
    assert stats(simulators, "sms").get("repeats", 0) == 0


def test_frequency_cap_across_two_campaigns(
    redis_url: str, redis_client: redis.Redis, simulators: Simulators,
) -> None:
    settings = replace(flow_settings(redis_url, simulators), batch_size=10)
    deps = build_launch_deps(settings)
    capped = definition(frequency_cap={"messages": 1, "days": 3})
    worker = start_worker(settings, threads=2)
    try:
        first = launch_campaign(capped, sms_members(20), deps=deps, now=datetime.now(UTC))
        assert wait_status(deps.store, first, {"completed"}, 60) == "completed"
        # The second campaign reaches 10 of the same members and 10 new ones.
        second = launch_campaign(replace(capped, name="第二场"), sms_members(20, start=10),
                                 deps=deps, now=datetime.now(UTC))
        assert wait_status(deps.store, second, {"completed"}, 60) == "completed"
    finally:
        worker.stop()
    assert deps.store.progress(first).counts == {"sent:sms": 20}
    assert deps.store.progress(second).counts == {"sent:sms": 10, "skipped:frequency_cap": 10}
    assert recipients(simulators) == 30


def test_budget_and_stock_hold_with_eight_threads_in_two_processes(
    redis_url: str, redis_client: redis.Redis, simulators: Simulators,
) -> None:
    settings = replace(flow_settings(redis_url, simulators), batch_size=10)
    deps = build_launch_deps(settings)
    # 400 members, stock 150, budget 120 coupons' worth (1,500 fen each): the budget binds.
    budgeted = definition(budget={"max_coupons": 150, "max_cost_fen": 120 * 1500})
    cmd = [sys.executable, "-m", "dispatcher.cli", "worker", "--threads", "4",
           "--processes", "2"]
    workers = subprocess.Popen(cmd, env=flow_env(redis_url, simulators),
                               stdout=subprocess.DEVNULL)
    try:
        cid = launch_campaign(budgeted, sms_members(400), deps=deps, now=datetime.now(UTC))
        state = wait_status(deps.store, cid, {"completed", "completed_with_failures"}, 120)
    finally:
        stop(workers)
    campaign = deps.store.get(cid)
    assert state == "completed"
    left, budget = stock_left(redis_client, campaign.merchant_id, campaign.template_id)
    assert (left, budget) == (30, 0)
    assert deps.store.progress(cid).counts == {"sent:sms": 120,
                                               "skipped:out_of_stock": 280}
    assert recipients(simulators) == 120


def card_days(client: redis.Redis) -> int:
    """Days of validity the one duration card in the store holds (its record's last number)."""
    records: list[Any] = [v for k in client.scan_iter(match="*r:*") for v in client.hvals(k)]
    days = [int(r.decode().rsplit(",", 1)[1]) for r in records if r.count(b",") == 3]
    assert len(days) == 1
    return days[0]


def test_duration_card_extension_once_per_campaign_and_messaged(
    redis_url: str, redis_client: redis.Redis, simulators: Simulators,
) -> None:
    settings = flow_settings(redis_url, simulators)
    deps = build_launch_deps(settings)
    card = save_template(redis_client, CouponTemplate(
        merchant_id="demo", kind="duration_card", name="月卡", total_stock=10,
        duration_days=30))
    secret = settings.secret_key.encode()
    [held] = issue_batch(redis_client, merchant_id="demo", campaign_id="bought",
                         template_id=card, member_ids=["M00000"], now=datetime.now(UTC),
                         secret=secret)
    assert card_days(redis_client) == 30
    worker = start_worker(settings, threads=2)
    try:
        extend = definition(coupon={"template_id": card})
        cid = launch_campaign(extend, sms_members(1), deps=deps, now=datetime.now(UTC))
        assert wait_status(deps.store, cid, {"completed"}, 60) == "completed"
        assert card_days(redis_client) == 60
        # The batch delivered again (a lost acknowledgement): no second extension, no second
        # message.
        batch = plan(sms_members(1), campaign=deps.store.get(cid), batch_size=10).batches[0]
        deps.actor.send(cid, 0, [list(r) for r in batch])
        time.sleep(2)
    finally:
        worker.stop()
    assert card_days(redis_client) == 60
    again = issue_batch(redis_client, merchant_id="demo", campaign_id=cid, template_id=card,
                        member_ids=["M00000"], now=datetime.now(UTC), secret=secret)
    assert [(c.status, c.code) for c in again] == [("extended", held.code)]
    assert card_days(redis_client) == 60
    assert deps.store.progress(cid).counts == {"sent:sms": 1}
    assert recipients(simulators) == 1


def test_send_rate_cap_spreads_the_campaign(
    redis_url: str, redis_client: redis.Redis, simulators: Simulators,
) -> None:
    settings = replace(flow_settings(redis_url, simulators), batch_size=10)
    deps = build_launch_deps(settings)
    worker = start_worker(settings, threads=4)
    try:
        started = time.monotonic()
        cid = launch_campaign(definition(send_rate_per_s=20), sms_members(60), deps=deps,
                              now=datetime.now(UTC))
        assert wait_status(deps.store, cid, {"completed"}, 60) == "completed"
        elapsed = time.monotonic() - started
    finally:
        worker.stop()
    # 60 messages at 20 a second need three distinct wall-clock seconds (more than 1 s).
    assert elapsed > 1.0
    seconds = [int(v) for k in redis_client.scan_iter(match=f"{{cmp:{cid}}}:rate:*")
               if (v := redis_client.get(k)) is not None]
    assert len(seconds) >= 3 and max(seconds) <= 20 and sum(seconds) == 60
    assert recipients(simulators) == 60


def test_a_call_past_the_dedupe_window_ends_in_doubt_not_resent(
    redis_url: str, redis_client: redis.Redis, simulators: Simulators,
) -> None:
    """A worker died 11 minutes ago with a WeChat template call in flight: past the 10-minute
    client_msg_id window a resend could message the member twice, so the member ends
    ``in_doubt`` (counted) and nothing is sent; the others are sent normally."""
    settings = replace(flow_settings(redis_url, simulators), batch_size=10)
    deps = build_launch_deps(settings)
    frame = pd.DataFrame({
        "member_id": ["W0", "W1", "W2"], "name": ["林"] * 3,
        "wechat_openid": [f"o{i:027d}" for i in range(3)], "wechat_subscribed": [True] * 3,
    })
    wechat = parse_definition({"name": "窗口", "audience": {"snapshot": "-"},
                               "channels": ["wechat"]})
    # Launched with no worker running; the open call is written as the dead worker left it.
    cid = launch_campaign(wechat, frame, deps=deps, now=datetime.now(UTC))
    redis_client.hset(f"{{cmp:{cid}}}:wal:0", "W1|wechat", time.time() - 11 * 60)
    worker = start_worker(settings, threads=2)
    try:
        state = wait_status(deps.store, cid, {"completed", "completed_with_failures"}, 60)
    finally:
        worker.stop()
    assert state == "completed_with_failures"
    assert deps.store.progress(cid).counts == {"sent:wechat": 2, "in_doubt:wechat": 1}
    assert stats(simulators, "wechat").get("template_sent") == 2
    entries: Any = redis_client.xrange(settings.events_stream)
    doubts = [(e.member_id, e.channel) for _, fields in entries
              for e in decode_events(fields[b"e"]) if e.event_type == "in_doubt"]
    assert doubts == [("W1", "wechat")]
