"""``quanpai worker [--threads N] [--processes P]``: consume campaign batches."""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys

from dispatcher.actors import MAX_RETRIES
from dispatcher.broker import HEARTBEAT_TIMEOUT_MS, MAINTENANCE_CHANCE
from infra.cli_support import UsageError
from infra.settings import Settings


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("worker", help="run a Dramatiq worker (issue + send batches)")
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--processes", type=int, default=1)
    parser.add_argument("--heartbeat-timeout-ms", type=int, default=HEARTBEAT_TIMEOUT_MS,
                        help="after this long, a silent worker's batches go to other workers")
    parser.add_argument("--maintenance-chance", type=int, default=MAINTENANCE_CHANCE,
                        help="broker calls per million that look for dead workers")
    parser.add_argument("--max-retries", type=int, default=MAX_RETRIES,
                        help="retries of a batch before it goes to the dead-letter set")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    if args.threads <= 0 or args.processes <= 0:
        raise UsageError("--threads and --processes must be positive")
    if args.max_retries < 0 or args.heartbeat_timeout_ms <= 0:
        raise UsageError("--max-retries must be 0 or more, --heartbeat-timeout-ms positive")
    if args.processes == 1:
        from dispatcher.worker import run_until_signalled

        run_until_signalled(settings, threads=args.threads,
                            heartbeat_timeout_ms=args.heartbeat_timeout_ms,
                            maintenance_chance=args.maintenance_chance,
                            max_retries=args.max_retries)
        return 0
    # Several processes: children run one worker each; this parent forwards signals.
    argv = [sys.executable, "-m", "dispatcher.cli", "worker", "--threads", str(args.threads),
            "--heartbeat-timeout-ms", str(args.heartbeat_timeout_ms),
            "--maintenance-chance", str(args.maintenance_chance),
            "--max-retries", str(args.max_retries)]
    children = [subprocess.Popen(argv, env=os.environ.copy()) for _ in range(args.processes)]

    def forward(signum: int, frame: object) -> None:
        for child in children:
            child.send_signal(signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    return max(child.wait() for child in children)
