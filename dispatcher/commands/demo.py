"""``quanpai demo``: the whole flow on the embedded default, start to finish.

Starts what is not running (the private Redis, the channel simulators, a worker), generates
members and transactions (kept under var/data for the next run), scores RFM, picks the members
worth waking up, runs a campaign with a progress bar, loads the events into chDB and prints the
ROI table. Everything it started, it stops.
"""

from __future__ import annotations

import argparse
import signal
import threading
import time
from pathlib import Path
from typing import Any

import pandas as pd
from rich.console import Console
from rich.table import Table

from analytics.loader import run_loader
from analytics.roi import campaign_roi
from analytics.stream import StreamReader
from dispatcher.campaigns import Campaign, CampaignStore
from dispatcher.commands.campaign import CouponSpec, run_campaign
from dispatcher.commands.roi import roi_table
from dispatcher.local_stack import local_stack
from infra.chdb_service import open_clickhouse
from infra.cli_support import UsageError
from infra.redis_client import make_redis
from infra.services import clickhouse_target
from infra.settings import Settings

WAKE_UP = ("At Risk", "Can't Lose Them", "About To Sleep", "Hibernating")
DEMO_CHANNELS = ("wechat_mass", "sms", "alipay")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("demo", help="the whole flow on the embedded default")
    parser.add_argument("--members", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--threads", type=int, default=8, help="threads per worker process")
    parser.add_argument("--processes", type=int, default=1, help="worker processes")
    parser.add_argument("--holdout-permille", type=int, default=0)
    parser.set_defaults(func=run)


def member_data(settings: Settings, *, members: int, seed: int, console: Console) -> Path:
    """The synthetic data set of this size and seed, generated on first use."""
    data_dir = settings.var_dir / "data" / f"members-{members}-seed-{seed}"
    if not (data_dir / "transactions.parquet").exists():
        from segmentation.synthetic import generate

        with console.status(f"generating {members:,} members and their transactions"):
            generate(members=members, out_dir=data_dir, seed=seed,
                     timezone=settings.timezone.key)
    return data_dir


def wake_up_segment(data_dir: Path, *, console: Console, settings: Settings) -> pd.DataFrame:
    """RFM on the transactions; the members in the segments worth waking up, with their
    channel fields."""
    from segmentation.rfm import rfm_scores

    started = time.perf_counter()
    transactions = pd.read_parquet(data_dir / "transactions.parquet",
                                   columns=["member_id", "ts", "amount_fen"])
    scores = rfm_scores(transactions, timezone=settings.timezone)
    members = pd.read_parquet(data_dir / "members.parquet")
    table = Table(title=f"RFM segments ({time.perf_counter() - started:.1f}s)")
    table.add_column("segment")
    table.add_column("members", justify="right")
    for name, count in scores["segment"].value_counts().items():
        table.add_row(f"{'→ ' if name in WAKE_UP else '  '}{name}", f"{count:,}")
    console.print(table)
    chosen = scores.loc[scores["segment"].isin(WAKE_UP), ["member_id", "segment"]]
    return chosen.merge(members, on="member_id", how="left")


def _await_callbacks(
    client: Any, *, stream: str, quiet_s: float = 1.5, limit_s: float = 20
) -> None:
    """Delivery receipts arrive after the sends: wait until the stream has been quiet a while."""
    deadline = time.monotonic() + limit_s
    last, since = None, time.monotonic()
    while time.monotonic() < deadline:
        current = client.xinfo_stream(stream)["last-generated-id"]
        if current != last:
            last, since = current, time.monotonic()
        elif time.monotonic() - since >= quiet_s:
            return
        time.sleep(0.1)


def campaign_with_loader(
    segment: pd.DataFrame, *, settings: Settings, holdout_permille: int, name: str,
    channels: tuple[str, ...] = DEMO_CHANNELS,
) -> tuple[Campaign, float]:
    """Run a campaign while a loader thread moves its events into ClickHouse; returns the
    campaign and the seconds from launch until every batch was done or deferred."""
    assert settings.redis_url is not None
    ch = open_clickhouse(settings)
    client = make_redis(settings.redis_url)
    reader = StreamReader(client=client, stream=settings.events_stream, consumer="demo-loader")
    stop = threading.Event()
    loader = threading.Thread(target=run_loader, kwargs={
        "reader": reader, "ch": ch, "stop": stop, "client": client,
        "stream": settings.events_stream})
    loader.start()
    began = time.perf_counter()
    try:
        campaign = run_campaign(segment, settings=settings, name=name, channels=channels,
                                holdout_permille=holdout_permille, coupon=CouponSpec(),
                                wait=True, timeout=3600)
        elapsed = time.perf_counter() - began
        _await_callbacks(client, stream=settings.events_stream)
        return campaign, elapsed
    finally:
        stop.set()
        loader.join()
        ch.close()


def run(args: argparse.Namespace, settings: Settings) -> int:
    if args.members <= 0:
        raise UsageError(f"--members must be positive, got {args.members}")
    console = Console(width=max(Console().width, 120))
    # SIGTERM (e.g. from `timeout`) cleans up like Ctrl-C: stop what the demo started.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    data_dir = member_data(settings, members=args.members, seed=args.seed, console=console)
    with local_stack(settings, threads=args.threads, processes=args.processes) as settings:
        console.print(f"Redis {settings.redis_url} · ClickHouse {clickhouse_target(settings)}")
        segment = wake_up_segment(data_dir, console=console, settings=settings)
        console.print(f"segment: {len(segment):,} members to wake up ({', '.join(WAKE_UP)})")
        campaign, elapsed = campaign_with_loader(
            segment, settings=settings, holdout_permille=args.holdout_permille,
            name="沉睡会员唤醒",
        )
        assert settings.redis_url is not None
        state = CampaignStore(client=make_redis(settings.redis_url)).progress(
            campaign.campaign_id)
    console.print(f"campaign {campaign.campaign_id}: {campaign.total_members:,} coupons in "
                  f"{elapsed:.1f}s ({campaign.total_members / elapsed:,.0f}/s); routed "
                  + ", ".join(f"{k} {v:,}" for k, v in campaign.extra["routed"].items()))
    if state.batches_deferred:
        console.print(f"{state.batches_deferred} batches have members waiting for a later "
                      f"window (SMS quiet hours {settings.sms.quiet_hours}); a worker sends "
                      "them then")
    ch = open_clickhouse(settings)
    try:
        rows = campaign_roi(ch, merchant_id=settings.merchant_id)
    finally:
        ch.close()
    console.print(roi_table(rows))
    this = next(r for r in rows if r.campaign_id == campaign.campaign_id)
    expected = len(segment) - campaign.held_out
    verdict = "matches" if this.issued == expected else "DOES NOT match"
    held = f" (after {campaign.held_out:,} held out)" if campaign.held_out else ""
    console.print(f"issued {this.issued:,} {verdict} the segment size {expected:,}{held}")
    return 0 if this.issued == expected else 1
