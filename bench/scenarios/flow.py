"""The walking skeleton end to end: synthetic members -> RFM -> campaign to every member ->
issue + send through the Dramatiq queue and the simulators -> events in chDB -> ROI.

Measures wall time from launch until every batch is done (or deferred to the SMS window) and
coupons issued per second. Target: one million coupons a minute (16,667/s). Every member of the
base is in the segment, so the 1M run issues 1M coupons.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import replace
from pathlib import Path

import pandas as pd
from rich.console import Console

from analytics.roi import campaign_roi
from bench.report import Result
from dispatcher.commands.demo import campaign_with_loader, member_data
from dispatcher.local_stack import local_stack
from infra.clickhouse import make_clickhouse
from infra.settings import load_settings

SIZES = {"quick": [20_000], "full": [100_000, 1_000_000]}
TARGET_PER_S = 1_000_000 / 60


def run_one(members: int, *, root: Path) -> list[Result]:
    settings = replace(load_settings({}), var_dir=root / f"var-{members}", redis_url=None,
                       clickhouse_url=None)
    console = Console(quiet=True)
    data_dir = member_data(settings, members=members, seed=42, console=console)
    snapshot = pd.read_parquet(data_dir / "members.parquet")
    scenario = f"flow {members:,} members"
    with local_stack(settings, threads=8, processes=2) as wired:
        started = time.perf_counter()
        campaign, elapsed = campaign_with_loader(snapshot, settings=wired, holdout_permille=0,
                                                 name="bench")
        loaded = time.perf_counter() - started
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
    ]


def run(*, size: str) -> list[Result]:
    results: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="quanpai-bench-flow-") as tmp:
        for members in SIZES[size]:
            results.extend(run_one(members, root=Path(tmp)))
    return results
