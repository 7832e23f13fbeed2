"""``quanpai demo``: the whole flow on the embedded default, start to finish.

Starts what is not running (the private Redis, the channel simulators, a worker), generates
members and transactions (kept under var/data for the next run), scores RFM, picks the members
worth waking up, runs a campaign with a progress bar, loads the events into chDB and prints the
ROI table. Everything it started, it stops.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path

import pandas as pd
from rich.console import Console
from rich.table import Table

from analytics.loader import run_loader
from analytics.roi import campaign_roi
from analytics.stream import StreamReader
from dispatcher.commands.campaign import CouponSpec, run_campaign
from dispatcher.commands.roi import roi_table
from infra import services
from infra.cli_support import UsageError
from infra.clickhouse import make_clickhouse
from infra.errors import ServiceError
from infra.ports import free_port, wait_port
from infra.redis_client import make_redis
from infra.settings import Settings

WAKE_UP = ("At Risk", "Can't Lose Them", "About To Sleep", "Hibernating")
DEMO_CHANNELS = ("wechat_mass", "sms", "alipay")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("demo", help="the whole flow on the embedded default")
    parser.add_argument("--members", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--threads", type=int, default=8, help="worker threads")
    parser.add_argument("--holdout-permille", type=int, default=0)
    parser.set_defaults(func=run)


def _spawn(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "dispatcher.cli", *args], env=env,
        stdout=log.open("ab"), stderr=subprocess.STDOUT,
    )


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _segment(data_dir: Path, console: Console, settings: Settings) -> pd.DataFrame:
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


def run(args: argparse.Namespace, settings: Settings) -> int:
    if args.members <= 0:
        raise UsageError(f"--members must be positive, got {args.members}")
    console = Console(width=max(Console().width, 120))
    # SIGTERM (e.g. from `timeout`) cleans up like Ctrl-C: stop what the demo started.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    logs = settings.var_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    embedded = settings
    own_redis = not settings.redis_url and not services.status(settings).redis_running
    state = services.up(settings)
    console.print(f"Redis {state.redis_url} · ClickHouse {state.clickhouse}")
    ports = {name: free_port() for name in ("wechat", "sms", "alipay")}
    settings = replace(
        settings,
        redis_url=state.redis_url,
        wechat=replace(settings.wechat, base_url=f"http://127.0.0.1:{ports['wechat']}"),
        sms=replace(settings.sms, base_url=f"http://127.0.0.1:{ports['sms']}"),
        alipay=replace(settings.alipay,
                       base_url=f"http://127.0.0.1:{ports['alipay']}/gateway.do"),
    )
    env = {**os.environ, "REDIS_URL": state.redis_url,
           "WECHAT_BASE_URL": settings.wechat.base_url, "SMS_BASE_URL": settings.sms.base_url,
           "ALIPAY_BASE_URL": settings.alipay.base_url}
    started: list[subprocess.Popen[bytes]] = []
    ch = None
    try:
        started.append(_spawn(["simulate", "--wechat-port", str(ports["wechat"]),
                               "--sms-port", str(ports["sms"]),
                               "--alipay-port", str(ports["alipay"])], env, logs / "sim.log"))
        started.append(_spawn(["worker", "--threads", str(args.threads)], env,
                              logs / "worker.log"))
        if not all(wait_port("127.0.0.1", p, timeout=30) for p in ports.values()):
            raise ServiceError(f"channel simulators did not start: see {logs / 'sim.log'}")

        data_dir = settings.var_dir / "data" / f"members-{args.members}-seed-{args.seed}"
        if not (data_dir / "transactions.parquet").exists():
            from segmentation.synthetic import generate

            with console.status(f"generating {args.members:,} members"):
                generate(members=args.members, out_dir=data_dir, seed=args.seed,
                         timezone=settings.timezone.key)
        segment = _segment(data_dir, console, settings)
        console.print(f"segment: {len(segment):,} members to wake up ({', '.join(WAKE_UP)})")

        ch = make_clickhouse(settings)
        reader = StreamReader(client=make_redis(state.redis_url),
                              stream=settings.events_stream, consumer="demo-loader")
        stop = threading.Event()
        loader = threading.Thread(target=run_loader, kwargs={"reader": reader, "ch": ch,
                                                              "stop": stop})
        loader.start()
        began = time.perf_counter()
        try:
            campaign = run_campaign(
                segment, settings=settings, name="沉睡会员唤醒", channels=DEMO_CHANNELS,
                holdout_permille=args.holdout_permille, coupon=CouponSpec(), wait=True,
                timeout=3600,
            )
        finally:
            stop.set()
            loader.join()
        elapsed = time.perf_counter() - began
        console.print(f"campaign {campaign.campaign_id}: {campaign.total_members:,} coupons "
                      f"in {elapsed:.1f}s ({campaign.total_members / elapsed:,.0f}/s)")
        rows = campaign_roi(ch, merchant_id=settings.merchant_id)
        console.print(roi_table(rows))
        this = next(r for r in rows if r.campaign_id == campaign.campaign_id)
        expected = len(segment) - campaign.held_out
        verdict = "matches" if this.issued == expected else "DOES NOT match"
        console.print(f"issued {this.issued:,} {verdict} the segment size {expected:,}"
                      + (f" (after {campaign.held_out:,} held out)" if campaign.held_out else ""))
        return 0 if this.issued == expected else 1
    finally:
        if ch is not None:
            ch.close()
        for process in reversed(started):
            _stop(process)
        if own_redis:
            services.down(embedded)
