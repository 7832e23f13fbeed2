"""``quanpai segment rfm|preview|snapshot``: RFM scores, segment previews and snapshots.

    quanpai segment rfm --transactions tx.parquet --out scores.csv [--as-of 2026-10-31]
    quanpai segment preview rules.yaml [--as-of 2026-12-03] [--png preview.png] [--sample 5]
    quanpai segment snapshot rules.yaml --out snapshots/autumn [--segment NAME] [--as-of DAY]
    quanpai segment tag import|set|save|refresh|list ...     (see segmentation.tag_cli)

Rules with coupon conditions read the catalog's coupon facts through the provider the
composition root passes to ``register``; rules with tag conditions read the tags on Redis.

Bad options and bad rules exit 2 with one line naming the field; nothing is written then.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
from rich.console import Console

from infra.cli_support import UsageError
from infra.settings import Settings
from segmentation.errors import InvalidInput, InvalidRule

if TYPE_CHECKING:
    from segmentation.audience import Evaluation
    from segmentation.coupon_conditions import CouponFacts
    from segmentation.tags import TagStore

# builds the coupon facts provider from settings (the composition root supplies it)
FactsBuilder = Callable[[Settings], "CouponFacts"]

RFM_COLUMNS = ["member_id", "recency_days", "frequency", "monetary_total", "monetary_avg",
               "r_score", "f_score", "m_score", "rfm_code", "segment"]


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser], *,
             coupon_facts: FactsBuilder | None = None) -> None:
    """Add ``segment rfm|preview|snapshot|tag`` to the ``quanpai`` parser; ``coupon_facts``
    builds the catalog's coupon facts provider when a rule needs it."""
    from segmentation.tag_cli import register_tags

    parser = sub.add_parser("segment", help="RFM scores, segment previews and snapshots")
    parser.set_defaults(coupon_facts=coupon_facts)
    actions = parser.add_subparsers(dest="segment_command", required=True, metavar="ACTION")
    register_tags(actions)

    rfm = actions.add_parser("rfm", help="RFM scores and segments, one row per member")
    source = rfm.add_mutually_exclusive_group(required=True)
    source.add_argument("--transactions", type=Path, help="Parquet or CSV file")
    source.add_argument("--clickhouse-table", help="aggregate this ClickHouse table in SQL")
    rfm.add_argument("--member-col", default="member_id")
    rfm.add_argument("--time-col", default="ts")
    rfm.add_argument("--amount-col", default="amount_fen")
    rfm.add_argument("--amount-unit", default="fen", help="fen or yuan")
    rfm.add_argument("--as-of", help="YYYY-MM-DD (default: the last transaction day)")
    rfm.add_argument("--bins", default="5", help="3, 4 or 5")
    rfm.add_argument("--monetary", default="total", help="total or avg: what M scores")
    rfm.add_argument("--map", default="rfm11",
                     help="rfm11 (11 segments), eight (8-class model), or a segment map YAML")
    rfm.add_argument("--with-zh", action="store_true", help="add segment_zh (Chinese names)")
    rfm.add_argument("--timezone", help="merchant timezone (default: settings)")
    rfm.add_argument("--out", type=Path, required=True, help=".csv or .parquet")
    rfm.set_defaults(func=run_rfm)

    for name, help_text in (("preview", "counts per segment, a sample and a PNG chart"),
                            ("snapshot", "freeze the segments' members for a campaign")):
        action = actions.add_parser(name, help=help_text)
        action.add_argument("rules", type=Path, help="segment rules YAML")
        action.add_argument("--as-of", "--today", dest="as_of",
                            help="evaluate as of this day (YYYY-MM-DD; default: today)")
        if name == "preview":
            action.add_argument("--png", type=Path, help="chart path (default: RULES.png)")
            action.add_argument("--sample", default="5", help="members shown per segment")
            action.set_defaults(func=run_preview)
        else:
            action.add_argument("--out", type=Path, required=True, help="new snapshot directory")
            action.add_argument("--segment", action="append", help="only this segment (repeat)")
            action.set_defaults(func=run_snapshot)


def parse_date(value: str | None, option: str) -> dt.date | None:
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise UsageError(f"{option}: expected a date like 2026-10-31, got {value!r}") from None


def _int(value: str, option: str, allowed: range) -> int:
    try:
        number = int(value)
    except ValueError:
        number = -1
    if number not in allowed:
        raise UsageError(f"{option}: expected {allowed.start}-{allowed.stop - 1}, got {value!r}")
    return number


def _write_table(frame: pd.DataFrame, out: Path) -> None:
    suffix = out.suffix.lower()
    if suffix not in (".csv", ".parquet"):
        raise UsageError(f"--out: expected a .csv or .parquet file, got {out.name!r}")
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(f".{out.name}.partial-{os.getpid()}")
    try:
        if suffix == ".csv":
            frame.to_csv(partial, index=False)
        else:
            frame.to_parquet(partial, index=False)
        partial.replace(out)
    finally:
        partial.unlink(missing_ok=True)


def run_rfm(args: argparse.Namespace, settings: Settings) -> int:
    """Score a transactions file or ClickHouse table and write one row per member."""
    from zoneinfo import ZoneInfo

    from segmentation.features import MemberFeatures
    from segmentation.rfm import scores_from_features
    from segmentation.segments import eight_class_segments, load_segment_map
    from segmentation.sources import ClickHouseTransactions, FileTransactions, TransactionColumns

    bins = _int(args.bins, "--bins", range(3, 6))
    as_of = parse_date(args.as_of, "--as-of")
    if args.out.suffix.lower() not in (".csv", ".parquet"):
        raise UsageError(f"--out: expected a .csv or .parquet file, got {args.out.name!r}")
    try:
        tz = ZoneInfo(args.timezone) if args.timezone else settings.timezone
    except (ValueError, KeyError):
        raise UsageError(f"--timezone: {args.timezone!r} is not a timezone") from None
    console = Console(stderr=True)
    try:
        columns = TransactionColumns(args.member_col, args.time_col, args.amount_col,
                                     args.amount_unit)
        segment_map = None
        if args.map not in ("rfm11", "eight"):
            segment_map = load_segment_map(Path(args.map))
        with console.status("reading transactions and computing RFM"):
            features: MemberFeatures
            if args.transactions is not None:
                features = FileTransactions(args.transactions, columns, tz).features(as_of=as_of)
            else:
                from infra.chdb_service import open_clickhouse

                client = open_clickhouse(settings)
                try:
                    features = ClickHouseTransactions(
                        client=client, table=args.clickhouse_table, columns=columns, timezone=tz
                    ).features(as_of=as_of)
                finally:
                    client.close()
            scores = scores_from_features(features, bins=bins, monetary=args.monetary,
                                          segment_map=segment_map)
            if args.map == "eight":
                money = (features.monetary_total if args.monetary == "total"
                         else features.monetary_avg)
                scores["segment"], scores["segment_zh"] = eight_class_segments(
                    features.recency_days, features.frequency, money)
    except (InvalidInput, InvalidRule) as exc:
        raise UsageError(str(exc)) from None
    out_columns = RFM_COLUMNS + (["segment_zh"] if args.with_zh else [])
    _write_table(scores[out_columns], args.out)
    console.print(f"wrote {len(scores):,} members to {args.out}")
    return 0


def evaluate_file(path: Path, args: argparse.Namespace, settings: Settings, *,
                  as_of: dt.date | None) -> Evaluation:
    """Evaluate a rules file with the clients it needs (ClickHouse, tags, coupon facts)."""
    from segmentation.audience import evaluate_rules, rules_needs
    from segmentation.rules import load_rules

    try:
        rules = load_rules(path)
        needs_coupons, needs_tags = rules_needs(rules)
        client = None
        tables = [rules.transactions.clickhouse_table,
                  rules.members.clickhouse_table if rules.members else None]
        if any(tables):
            from infra.chdb_service import open_clickhouse

            client = open_clickhouse(settings)
        facts = None
        if needs_coupons:
            if args.coupon_facts is None:
                raise UsageError("coupon conditions need the catalog (run through quanpai)")
            facts = args.coupon_facts(settings)
        tags = tag_store(settings) if needs_tags else None
        try:
            with Console(stderr=True).status(f"evaluating {path.name}"):
                evaluation = evaluate_rules(rules, clickhouse=client, as_of=as_of,
                                            coupon_facts=facts, tags=tags)
        finally:
            if client is not None:
                client.close()
    except (InvalidInput, InvalidRule) as exc:
        raise UsageError(str(exc)) from None
    for warning in evaluation.warnings:
        Console(stderr=True).print(f"[yellow]warning:[/yellow] {warning}")
    return evaluation


def tag_store(settings: Settings) -> TagStore:
    """The merchant's tags on the Redis of the settings."""
    from infra.redis_client import make_redis
    from infra.services import resolve_redis_url
    from segmentation.tags import RedisTags

    return RedisTags(client=make_redis(resolve_redis_url(settings)),
                     merchant_id=settings.merchant_id)


def _evaluate(args: argparse.Namespace, settings: Settings) -> Evaluation:
    return evaluate_file(args.rules, args, settings, as_of=parse_date(args.as_of, "--as-of"))


def run_preview(args: argparse.Namespace, settings: Settings) -> int:
    """Print counts and a masked sample per rule segment, and write the chart."""
    from segmentation.preview import render_text, summarize, write_chart

    sample = _int(args.sample, "--sample", range(0, 1001))
    evaluation = _evaluate(args, settings)
    summary = summarize(evaluation, sample=sample)
    print(render_text(evaluation, summary))
    png = args.png or args.rules.with_suffix(".png")
    write_chart(evaluation, summary, png)
    print(f"chart: {png}")
    return 0


def run_snapshot(args: argparse.Namespace, settings: Settings) -> int:
    """Evaluate the rules and freeze the members into a new snapshot directory."""
    from segmentation.snapshot import take_snapshot, write_snapshot

    evaluation = _evaluate(args, settings)
    try:
        snapshot = take_snapshot(evaluation, segments=args.segment)
        write_snapshot(snapshot, args.out)
    except InvalidInput as exc:
        raise UsageError(str(exc)) from None
    for name, count in snapshot.counts.items():
        print(f"{name}: {count:,} members")
    print(f"snapshot {args.out} (fingerprint {snapshot.fingerprint})")
    return 0
