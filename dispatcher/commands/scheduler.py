"""``quanpai scheduler``: the long-running process that makes each definition's runs.

Start one on each of two hosts: the copy holding the Redis lease runs due work, the other
stands by and takes over within the lease time (10 s by default) when the holder dies.
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import os
import signal
import socket
import threading
from types import FrameType

import redis

from dispatcher.operations import build_launch_deps
from dispatcher.scheduler.audience import AudienceLoader
from dispatcher.scheduler.lease import Lease
from dispatcher.scheduler.runner import Scheduler
from dispatcher.scheduler.starter import LaunchStarter
from dispatcher.scheduler.store import ScheduleStore
from infra.cli_support import UsageError
from infra.errors import ServiceError
from infra.redis_client import make_redis
from infra.services import resolve_redis_url
from infra.settings import Settings

log = logging.getLogger("quanpai.scheduler")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("scheduler", help="run due birthday, wake-up, holiday sends")
    parser.add_argument("--interval", type=float, default=5.0,
                        help="seconds between looks at the definitions (default 5)")
    parser.add_argument("--lease-seconds", type=float, default=10.0,
                        help="lease time: a standby takes over this long after the holder "
                             "dies (default 10)")
    parser.add_argument("--once", action="store_true",
                        help="do what is due now and exit (cron style)")
    parser.set_defaults(func=run)


def build_scheduler(settings: Settings, *, lease_seconds: float) -> Scheduler:
    """The scheduler and its clients, from settings (this process's composition root)."""
    url = resolve_redis_url(settings)
    client = make_redis(url)
    holder = f"{socket.gethostname()}:{os.getpid()}"
    return Scheduler(
        store=ScheduleStore(client=client, merchant_id=settings.merchant_id),
        lease=Lease(client=client, merchant_id=settings.merchant_id, holder=holder,
                    ttl=lease_seconds),
        starter=LaunchStarter(deps=build_launch_deps(settings, redis_url=url)),
        loader=AudienceLoader(),
        log=log.info,
    )


def run(args: argparse.Namespace, settings: Settings) -> int:
    if not 1 <= args.lease_seconds <= 30:
        raise UsageError("--lease-seconds: between 1 and 30 (a standby takes over within it)")
    if not 0.1 <= args.interval <= args.lease_seconds:
        raise UsageError("--interval: between 0.1 and --lease-seconds")
    try:
        make_redis(resolve_redis_url(settings)).ping()
    except redis.RedisError as exc:
        raise ServiceError(f"cannot reach Redis: {exc} (quanpai services up, or set "
                           "REDIS_URL)") from None
    scheduler = build_scheduler(settings, lease_seconds=args.lease_seconds)

    def clock() -> dt.datetime:
        return dt.datetime.now(settings.timezone)

    if args.once:
        report = scheduler.tick(clock())
        print(f"leader={report.leader} runs={len(report.runs)} skipped={len(report.skipped)}")
        for schedule_id, day, reason in report.skipped:
            print(f"skipped {schedule_id} {day}: {reason}")
        return 0
    stopping = threading.Event()

    def stop(_signum: int, _frame: FrameType | None) -> None:
        stopping.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print(f"scheduler {socket.gethostname()}:{os.getpid()} started "
          f"(lease {args.lease_seconds:g} s, every {args.interval:g} s)", flush=True)
    scheduler.serve(clock, interval=args.interval, stop=stopping.is_set, sleep=stopping.wait)
    return 0
