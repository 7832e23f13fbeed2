"""A worker SIGKILLed at each point of the batch path, then a fresh worker: every member is
issued exactly one coupon, no SMS number is messaged twice by the campaign (the simulator's
``repeats`` is 0), WeChat and Alipay resends carry the same key inside the dedupe window (the
providers answer with the first result), and the campaign completes with nobody watching.

The worker kills itself at a named point (``QUANPAI_TEST_KILL_AT``, dispatcher/killpoints.py),
so each test hits its moment deterministically."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pandas as pd
import pytest
import redis

from catalog.issuance import issue_batch
from catalog.templates import stock_left
from dispatcher.campaigns import CampaignStore
from dispatcher.commands.campaign import CouponSpec, run_campaign
from dispatcher.killpoints import POINTS
from dispatcher.local_stack import stop_process as stop
from tests.dispatcher.conftest import Simulators, flow_env, flow_settings, start_simulators

N_WECHAT, N_ALIPAY, N_SMS = 40, 30, 130


def mixed(n_wechat: int = N_WECHAT, n_alipay: int = N_ALIPAY,
          n_sms: int = N_SMS) -> pd.DataFrame:
    """Members reachable first on WeChat, then Alipay, then SMS only."""
    n = n_wechat + n_alipay + n_sms
    ids = [f"M{i:05d}" for i in range(n)]
    return pd.DataFrame({
        "member_id": ids, "name": ["李雷"] * n,
        "wechat_openid": [f"o{i:027d}" if i < n_wechat else None for i in range(n)],
        "wechat_subscribed": [i < n_wechat for i in range(n)],
        "alipay_user_id": [f"2088{i:012d}" if n_wechat <= i < n_wechat + n_alipay else None
                           for i in range(n)],
        "consent_alipay": [n_wechat <= i < n_wechat + n_alipay for i in range(n)],
        "phone": [f"139{i:08d}" for i in range(n)],
        "consent_sms": [True] * n,
    })


def stats(sims: Simulators, name: str) -> dict[str, Any]:
    with urllib.request.urlopen(f"http://127.0.0.1:{sims.ports[name]}/_sim/stats") as reply:
        counts: dict[str, Any] = json.load(reply)["counts"]
        return counts


def worker(env: dict[str, str], **extra: str) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "dispatcher.cli", "worker", "--threads", "2",
           "--heartbeat-timeout-ms", "1500", "--maintenance-chance", "1000000"]
    return subprocess.Popen(cmd, env={**env, **extra}, stdout=subprocess.DEVNULL)


def wait_status(store: CampaignStore, campaign_id: str, wanted: set[str],
                timeout: float = 120) -> str:
    deadline = time.monotonic() + timeout
    while (state := store.status(campaign_id)) not in wanted:
        assert time.monotonic() < deadline, f"campaign still {state}"
        time.sleep(0.1)
    return state


def check_issued_once(client: redis.Redis, campaign: Any, settings: Any,
                      members: pd.DataFrame) -> None:
    ids = members["member_id"].tolist()
    again = issue_batch(client, merchant_id=campaign.merchant_id,
                        campaign_id=campaign.campaign_id, template_id=campaign.template_id,
                        member_ids=ids, now=datetime.now(UTC), secret=settings.secret_key.encode())
    assert {c.status for c in again} == {"existing"}
    assert len({c.code for c in again}) == len(ids)
    left, _budget = stock_left(client, campaign.merchant_id, campaign.template_id)
    assert left == 0  # stock was exactly the audience and each member took one


# The points around a provider request, once per channel; the others once.
KILLS = [p for p in POINTS if p not in ("in_flight", "after_answer")] + [
    f"{p}:{c}" for p in ("in_flight", "after_answer") for c in ("sms", "wechat", "alipay")]


@pytest.fixture(scope="module")
def module_sims() -> Iterator[dict[str, Simulators]]:
    """Simulators shared by the crash tests (each test reads its own campaign's share of the
    counts as a difference); in flight, the provider takes 300 ms to answer and the worker dies
    100 ms after the request left."""
    sims = {"fast": start_simulators(), "slow": start_simulators("--latency-ms", "300")}
    yield sims
    for one in sims.values():
        stop(one.process)


@pytest.mark.parametrize("point", KILLS)
def test_sigkill_at_each_point_sends_each_member_once(
    point: str, redis_url: str, redis_client: redis.Redis,
    module_sims: dict[str, Simulators],
) -> None:
    sims = module_sims["slow" if point.startswith("in_flight") else "fast"]
    before = {name: stats(sims, name) for name in ("sms", "wechat", "alipay")}

    def grew(name: str, counter: str) -> int:
        return int(stats(sims, name).get(counter, 0)) - int(before[name].get(counter, 0))

    settings = replace(flow_settings(redis_url, sims), batch_size=25)
    env = flow_env(redis_url, sims)
    members = mixed()
    first = worker(env, QUANPAI_TEST_KILL_AT=point)
    campaign = run_campaign(members, settings=settings, name="断点", channels=(
        "wechat", "alipay", "sms"), holdout_permille=0, coupon=CouponSpec(), wait=False,
        timeout=60)
    assert first.wait(timeout=120) == -9, "the worker did not kill itself"
    store = CampaignStore(client=redis_client)
    assert store.status(campaign.campaign_id) == "running"
    second = worker(env)
    try:
        state = wait_status(store, campaign.campaign_id,
                            {"completed", "completed_with_failures"})
    finally:
        stop(second)
    assert state == "completed"
    assert grew("sms", "repeats") == 0
    assert grew("sms", "recipients") == N_SMS
    assert grew("wechat", "repeats") == 0
    assert grew("wechat", "template_sent") == N_WECHAT  # resends deduplicated by key
    assert grew("alipay", "recipients") == N_ALIPAY  # resends answered from out_biz_no
    counts = store.progress(campaign.campaign_id).counts
    assert counts == {"sent:wechat": N_WECHAT, "sent:alipay": N_ALIPAY, "sent:sms": N_SMS}
    check_issued_once(redis_client, campaign, settings, members)
