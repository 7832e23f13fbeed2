"""``quanpai data generate --members N --out DIR [--seed S]``."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from infra.cli_support import UsageError
from infra.settings import Settings


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

    if args.members <= 0:
        raise UsageError(f"--members must be a positive number, got {args.members}")
    started = time.perf_counter()
    data = generate(
        members=args.members, out_dir=args.out, seed=args.seed, timezone=settings.timezone.key
    )
    print(
        f"wrote {data.member_count:,} members and {data.transaction_count:,} transactions "
        f"to {args.out} in {time.perf_counter() - started:.1f}s"
    )
    return 0
