"""``quanpai data generate --members N --out DIR [--seed S]``; ``quanpai data load PATH``."""

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
    load = actions.add_parser("load", help="load transactions (Parquet/CSV) as ClickHouse orders")
    load.add_argument("path", type=Path, help="transactions.parquet (or a directory holding it)")
    load.set_defaults(func=run_load)


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


def run_load(args: argparse.Namespace, settings: Settings) -> int:
    """Generated (or exported) transactions into the ``orders`` table, once per file."""
    from analytics.orders import load_orders
    from infra.chdb_service import open_clickhouse
    from infra.errors import InvalidInput

    path: Path = args.path
    if path.is_dir():
        path = path / "transactions.parquet"
    if not path.is_file():
        raise UsageError(f"{path}: no such file (quanpai data generate writes one)")
    started = time.perf_counter()
    ch = open_clickhouse(settings)
    try:
        added = load_orders(ch, path, merchant_id=settings.merchant_id)
    except InvalidInput as exc:
        raise UsageError(str(exc)) from None
    finally:
        ch.close()
    print(f"loaded {added:,} orders from {path} in {time.perf_counter() - started:.1f}s")
    return 0
