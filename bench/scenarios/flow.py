"""The walking skeleton end to end: synthetic members -> RFM -> campaign to every member ->
issue + send through the Dramatiq queue and the simulators -> events in chDB -> ROI.

Measures wall time from launch until every batch is done (or deferred to the SMS window) and
coupons issued per second. Target: one million coupons a minute (16,667/s). Every member of the
base is in the segment, so the 1M run issues 1M coupons. On one 2-core machine the simulators,
the callback receiver and the in-process loader share the cores with the workers, so the report
also splits CPU per coupon by role; the worker's share is what a worker fleet pays per coupon
(target ≤ 120 µs: 16,667 coupons/s on 2 cores).
"""

from __future__ import annotations

import contextlib
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import pandas as pd
import psutil
from rich.console import Console

from analytics.roi import campaign_roi
from bench.report import Result
from dispatcher.commands.demo import campaign_with_loader, member_data
from dispatcher.local_stack import local_stack
from infra.clickhouse import make_clickhouse
from infra.settings import load_settings

SIZES = {"quick": [20_000], "full": [100_000, 1_000_000]}
TARGET_PER_S = 1_000_000 / 60


def children_cpu(redis_pidfile: Path) -> dict[str, float]:
    """CPU seconds used so far by this process's children, by role (worker, simulate, ...),
    and by the private redis-server (daemonized, so found by its pid file)."""
    totals: dict[str, float] = {}
    processes = psutil.Process().children(recursive=True)
    with contextlib.suppress(OSError, ValueError, psutil.Error):
        processes.append(psutil.Process(int(redis_pidfile.read_text())))
    for child in processes:
        try:
            cmd = child.cmdline()
            role = cmd[cmd.index("dispatcher.cli") + 1] if "dispatcher.cli" in cmd else "redis"
            times = child.cpu_times()
        except (psutil.Error, ValueError, IndexError):
            continue
        totals[role] = totals.get(role, 0.0) + times.user + times.system
    return totals


def run_one(members: int, *, root: Path) -> list[Result]:
    settings = replace(load_settings({}), var_dir=root / f"var-{members}", redis_url=None,
                       clickhouse_url=None)
    console = Console(quiet=True)
    data_dir = member_data(settings, members=members, seed=42, console=console)
    snapshot = pd.read_parquet(data_dir / "members.parquet")
    scenario = f"flow {members:,} members"
    with local_stack(settings, threads=8, processes=2) as wired:
        started, cpu_started = time.perf_counter(), time.process_time()
        campaign, elapsed = campaign_with_loader(snapshot, settings=wired, holdout_permille=0,
                                                 name="bench")
        loaded = time.perf_counter() - started
        launcher_cpu = time.process_time() - cpu_started
        cpu = children_cpu(settings.var_dir / "redis" / "redis.pid")
    ch = make_clickhouse(settings)
    try:
        [roi] = campaign_roi(ch, merchant_id=settings.merchant_id,
                             campaign_id=campaign.campaign_id)
    finally:
        ch.close()
    if roi.issued != members:
        raise RuntimeError(f"issued {roi.issued} coupons to {members} members")
    return [
        Result(scenario, "issue+send wall time", elapsed, "s"),
        Result(scenario, "coupons issued per second", members / elapsed, "coupons/s",
               target=TARGET_PER_S, better="higher"),
        Result(scenario, "wall time incl. loading events into chDB", loaded, "s"),
        Result(scenario, "sent (rest: SMS quiet hours or unreachable)", roi.sent, "members"),
        # Where the two cores went. The workers are Quanpai's campaign cost; simulators and the
        # callback receiver stand in for the providers; the launcher plans, enqueues and loads
        # the events into chDB in-process (a separate loader process in production).
        Result(scenario, "worker CPU per coupon (issue + send + events)",
               cpu.get("worker", 0.0) / members * 1e6, "µs", target=120.0),
        Result(scenario, "launcher + loader CPU per coupon", launcher_cpu / members * 1e6, "µs"),
        Result(scenario, "simulators + callbacks CPU per coupon",
               (cpu.get("simulate", 0.0) + cpu.get("callbacks", 0.0)) / members * 1e6, "µs"),
        Result(scenario, "redis-server CPU per coupon", cpu.get("redis", 0.0) / members * 1e6,
               "µs"),
    ]


def run(*, size: str) -> list[Result]:
    results: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="quanpai-bench-flow-") as tmp:
        for members in SIZES[size]:
            results.extend(run_one(members, root=Path(tmp)))
    return results
