"""One end-to-end campaign on a local stack, measured: the flow benchmark's instrument.

``run_flow`` starts Redis (AOF on), the provider stand-ins (the simulators, or the stub
providers), the callback receiver, the workers and a ``quanpai loader`` process; waits until
the workers beat and the loader runs; launches a campaign to every member of a snapshot from
this process (plan + enqueue, timed on this process's CPU clock); waits until every batch is done
and every event is in chDB; and reads back what was issued and sent per channel. CPU is read per
process from the kernel (user + system) just before the launch and just after the last event was
loaded, so process start-up is not counted and each role is reported on its own.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import psutil

from analytics.loader import status_key
from analytics.roi import campaign_roi
from bench import naive
from dispatcher.broker import live_workers
from dispatcher.campaigns import CampaignStore
from dispatcher.definition import parse_definition
from dispatcher.launch import wait_done
from dispatcher.local_stack import SIMULATORS, env_for, local_stack, stop_process
from dispatcher.operations import build_launch_deps, launch_now
from dispatcher.planner import reachable_addresses
from infra.chdb_service import open_clickhouse
from infra.redis_client import make_redis
from infra.settings import Settings

CHANNELS = ("wechat_mass", "sms", "alipay")
STUB_PROVIDERS = ("bench.stub_providers",)
# the processes' command lines name their role: ``dispatcher.cli <command>`` or a module
ROLES = {"worker": "workers", "loader": "loader", "callbacks": "callbacks",
         "simulate": "simulators", "bench.stub_providers": "stub providers",
         "bench.naive": "workers"}


@dataclass(frozen=True)
class FlowRun:
    members: int
    reachable: int  # members with an address on one of the campaign's channels
    issued: int
    sent: dict[str, int]  # channel -> members sent
    wall_s: float  # launch until every batch is done
    loaded_s: float  # launch until every event is in chDB
    cpu_s: dict[str, float]  # role -> CPU seconds over the run; "launcher" is plan + enqueue
    aof: str  # the Redis appendonly setting during the run
    deferred_batches: int


def role_of(cmdline: Sequence[str]) -> str | None:
    if "dispatcher.cli" in cmdline:
        at = cmdline.index("dispatcher.cli") + 1
        return ROLES.get(cmdline[at]) if at < len(cmdline) else None
    return next((role for module, role in ROLES.items() if module in cmdline), None)


def cpu_by_role(redis_pidfile: Path) -> dict[str, float]:
    """CPU seconds used so far by this process's children, by role, and by the private
    redis-server (daemonized, so found by its pid file)."""
    totals: dict[str, float] = {}
    found: list[tuple[psutil.Process, str | None]] = [
        (p, None) for p in psutil.Process().children(recursive=True)]
    with contextlib.suppress(OSError, ValueError, psutil.Error):
        found.append((psutil.Process(int(redis_pidfile.read_text())), "redis-server"))
    for process, known in found:
        try:
            role = known or role_of(process.cmdline())
            times = process.cpu_times()
        except psutil.Error:
            continue
        if role is not None:
            totals[role] = totals.get(role, 0.0) + times.user + times.system
    return totals


def reachable(snapshot: pd.DataFrame, channels: Sequence[str]) -> int:
    addresses = reachable_addresses(snapshot)
    kinds = {c.split("_", 1)[0] for c in channels}
    mask = pd.Series(False, index=snapshot.index)
    for kind in kinds:
        mask |= addresses[kind] != ""
    return int(mask.sum())


def wait_ready(settings: Settings, *, workers: int, timeout: float = 120) -> None:
    """Until ``workers`` worker processes beat on the broker and the loader has started."""
    assert settings.redis_url is not None
    client = make_redis(settings.redis_url)
    deadline = time.monotonic() + timeout
    while live_workers(client) < workers or not client.hget(status_key(
            settings.events_stream), "pid"):
        if time.monotonic() > deadline:
            raise RuntimeError(f"workers or loader not ready in {timeout:.0f}s: see "
                               f"{settings.var_dir / 'logs'}")
        time.sleep(0.1)


def wait_loaded(settings: Settings, *, quiet_s: float = 1.0, timeout: float = 900) -> None:
    """Until the events stream is empty (every event loaded and deleted) and no new event
    (a delivery receipt) has arrived for ``quiet_s``."""
    assert settings.redis_url is not None
    client = make_redis(settings.redis_url)
    deadline = time.monotonic() + timeout
    last, since = None, time.monotonic()
    while time.monotonic() < deadline:
        info = client.xinfo_stream(settings.events_stream)
        current = info["last-generated-id"]
        if current != last:
            last, since = current, time.monotonic()
        elif info["length"] == 0 and time.monotonic() - since >= quiet_s:
            return
        time.sleep(0.05)
    raise RuntimeError(f"events not loaded within {timeout:.0f}s")


def sent_by_channel(settings: Settings, campaign_id: str) -> tuple[int, dict[str, int]]:
    """(coupons issued, members sent per channel) as the analyst sees them in ClickHouse."""
    ch = open_clickhouse(settings)
    try:
        [roi] = campaign_roi(ch, merchant_id=settings.merchant_id, campaign_id=campaign_id)
        rows = ch.query("SELECT channel, uniqExact(member_id) FROM events FINAL "
                        f"WHERE campaign_id = '{campaign_id}' AND event_type = 'sent' "
                        "GROUP BY channel ORDER BY channel")
    finally:
        ch.close()
    return roi.issued, {str(channel): int(n) for channel, n in rows}


def _measure(wired: Settings, *, workers: int, launch: Callable[[], str],
             wait: Callable[[str], None], members: int, reachable_members: int) -> FlowRun:
    """Wait for the stack, then time ``launch`` (which returns the campaign id) and ``wait``
    (until every member was handled), then the loading of the events; CPU by role."""
    assert wired.redis_url is not None
    wait_ready(wired, workers=workers)
    client = make_redis(wired.redis_url)
    aof = str(client.config_get("appendonly").get("appendonly"))
    pidfile = wired.var_dir / "redis" / "redis.pid"
    before = cpu_by_role(pidfile)
    started, cpu_started = time.perf_counter(), time.process_time()
    campaign_id = launch()
    launcher = time.process_time() - cpu_started
    wait(campaign_id)
    wall = time.perf_counter() - started
    deferred = CampaignStore(client=client).progress(campaign_id).batches_deferred
    wait_loaded(wired)
    loaded = time.perf_counter() - started
    after = cpu_by_role(pidfile)
    issued, sent = sent_by_channel(wired, campaign_id)
    cpu = {role: after[role] - before.get(role, 0.0) for role in after}
    cpu["launcher"] = launcher
    return FlowRun(members=members, reachable=reachable_members, issued=issued, sent=sent,
                   wall_s=wall, loaded_s=loaded, cpu_s=cpu, aof=aof, deferred_batches=deferred)


def _quiet_hours_off(settings: Settings) -> Settings:
    # every reachable member is sent now, whatever the merchant's local time
    return replace(settings, sms=replace(settings.sms, quiet_hours="off"))


def run_flow(snapshot: pd.DataFrame, *, settings: Settings, processes: int = 2,
             threads: int = 8, providers: Sequence[str] = SIMULATORS,
             channels: tuple[str, ...] = CHANNELS) -> FlowRun:
    """One campaign to every member of ``snapshot`` through the engine, on a fresh stack under
    ``settings.var_dir``, SMS quiet hours off."""
    definition = parse_definition({"name": "bench", "channels": list(channels),
                                   "audience": {"snapshot": "-"}})
    with local_stack(_quiet_hours_off(settings), threads=threads, processes=processes,
                     providers=providers, loader=True) as wired:
        deps = build_launch_deps(wired)
        store = CampaignStore(client=deps.client)

        def launch() -> str:
            return launch_now(definition, snapshot, deps=deps, now=datetime.now(UTC))

        def wait(campaign_id: str) -> None:
            if not wait_done(store=store, campaign=store.get(campaign_id), timeout=1800,
                             settle_deferred=True):
                raise RuntimeError(f"campaign {campaign_id} not done in 30 minutes")

        return _measure(wired, workers=processes, launch=launch, wait=wait,
                        members=len(snapshot), reachable_members=reachable(snapshot, channels))


def run_naive(snapshot: pd.DataFrame, *, settings: Settings, processes: int = 2,
              threads: int = 8, channels: tuple[str, ...] = CHANNELS) -> FlowRun:
    """The same campaign the naive way (``bench.naive``: one message and one provider request
    per member) on a fresh stack with the simulators, SMS quiet hours off."""
    with local_stack(_quiet_hours_off(settings), processes=0, loader=True) as wired:
        assert wired.redis_url is not None
        client = make_redis(wired.redis_url)
        log = (wired.var_dir / "logs" / "naive-worker.log").open("ab")
        workers = [subprocess.Popen([sys.executable, "-m", "bench.naive", "--threads",
                                     str(threads)], env=env_for(wired), stdout=log,
                                    stderr=subprocess.STDOUT) for _ in range(processes)]
        enqueued: dict[str, int] = {}

        def launch() -> str:
            campaign_id, members = naive.launch(snapshot, settings=wired, channels=channels)
            enqueued[campaign_id] = members
            return campaign_id

        def wait(campaign_id: str) -> None:
            if not naive.wait_sent(client, campaign_id=campaign_id,
                                   members=enqueued[campaign_id], timeout=1800):
                raise RuntimeError(f"naive campaign {campaign_id} not done in 30 minutes")

        try:
            return _measure(wired, workers=processes, launch=launch, wait=wait,
                            members=len(snapshot),
                            reachable_members=reachable(snapshot, channels))
        finally:
            for worker in workers:
                stop_process(worker)
            log.close()
