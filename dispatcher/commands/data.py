"""``quanpai data generate --members N --out DIR [--seed S]``."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from rich.console import Console

from infra.cli_support import UsageError
from infra.settings import Settings

MAX_MEMBERS = 20_000_000  # about 2 GB of Parquet and 20 minutes; larger belongs in ClickHouse


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("data", help="generate synthetic members, stores, transactions")
    actions = parser.add_subparsers(dest="action", required=True)
    gen = actions.add_parser("generate", help="write members, stores, transactions as Parquet")
    gen.add_argument("--members", type=int, required=True)
    gen.add_argument("--out", type=Path, required=True)
    gen.add_argument("--seed", type=int, default=42)
    gen.set_defaults(func=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    from segmentation.synthetic import generate

    if not 0 < args.members <= MAX_MEMBERS:
        raise UsageError(f"--members must be between 1 and {MAX_MEMBERS:,}, got {args.members}")
    if args.seed < 0:
        raise UsageError(f"--seed must be 0 or a positive integer, got {args.seed}")
    if args.out.exists() and not args.out.is_dir():
        raise UsageError(f"--out {args.out} is a file: name a directory")
    started = time.perf_counter()
    with Console(stderr=True).status(f"generating {args.members:,} members and their "
                                     f"transactions into {args.out} ..."):
        data = generate(members=args.members, out_dir=args.out, seed=args.seed,
                        timezone=settings.timezone.key)
    print(
        f"wrote {data.member_count:,} members and {data.transaction_count:,} transactions "
        f"to {args.out} in {time.perf_counter() - started:.1f}s"
    )
    return 0
