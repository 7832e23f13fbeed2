"""``quanpai segment tag ...``: member tags (标签) from the command line.

    quanpai segment tag import tags.csv              # member_id,tag rows; UTF-8, BOM or GBK
    quanpai segment tag set 高价值 10000001 10000002 [--remove]
    quanpai segment tag save rules.yaml --segment win-back --tag 待唤醒 [--as-of DAY]
    quanpai segment tag refresh [--as-of DAY]        # every rule tag, as of that day
    quanpai segment tag list

A bad file or name exits 2 with one line and changes nothing.
"""

from __future__ import annotations

import argparse
import datetime as dt
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from infra.cli_support import UsageError
from infra.settings import Settings
from segmentation.errors import InvalidInput, InvalidRule

if TYPE_CHECKING:
    from segmentation.tags import TagStore


def register_tags(actions: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``tag import|set|save|refresh|list`` under ``quanpai segment``."""
    parser = actions.add_parser("tag", help="member tags (标签): import, set, save, refresh, list")
    tag_actions = parser.add_subparsers(dest="tag_command", required=True, metavar="ACTION")
    imported = tag_actions.add_parser("import", help="add tags from a member_id,tag CSV")
    imported.add_argument("file", type=Path)
    imported.set_defaults(func=run_import)
    chosen = tag_actions.add_parser("set", help="tag (or untag) members by id")
    chosen.add_argument("tag")
    chosen.add_argument("members", nargs="+")
    chosen.add_argument("--remove", action="store_true", help="untag them instead")
    chosen.set_defaults(func=run_set)
    saved = tag_actions.add_parser("save", help="save a rule segment as a tag (refreshed later)")
    saved.add_argument("rules", type=Path)
    saved.add_argument("--segment", required=True)
    saved.add_argument("--tag", required=True)
    saved.add_argument("--as-of", dest="as_of", help="YYYY-MM-DD (default: today)")
    saved.set_defaults(func=run_save)
    refresh = tag_actions.add_parser(
        "refresh", help="recompute every rule tag (console conditions on QUANPAI_SEGMENT_RULES)")
    refresh.add_argument("--as-of", dest="as_of", help="YYYY-MM-DD (default: today)")
    refresh.set_defaults(func=run_refresh)
    listed = tag_actions.add_parser("list", help="every tag with its kind and size")
    listed.set_defaults(func=run_list)


def run_import(args: argparse.Namespace, settings: Settings) -> int:
    """Read the whole file first (a bad line changes nothing), then add each tag."""
    from segmentation.cli import tag_store
    from segmentation.tag_csv import read_tag_csv

    try:
        rows = read_tag_csv(args.file)
    except InvalidInput as exc:
        raise UsageError(str(exc)) from None
    by_tag: dict[str, list[str]] = defaultdict(list)
    for member, tag in rows:
        by_tag[tag].append(member)
    store = tag_store(settings)
    for tag, members in sorted(by_tag.items()):
        info = store.add(tag, members)
        print(f"{tag}: +{len(members):,} rows, {info.count:,} members")
    return 0


def run_set(args: argparse.Namespace, settings: Settings) -> int:
    """Tag or untag the members named."""
    from segmentation.cli import tag_store

    store = tag_store(settings)
    try:
        info = (store.remove if args.remove else store.add)(args.tag, args.members)
    except InvalidInput as exc:
        raise UsageError(str(exc)) from None
    print(f"{info.name}: {info.count:,} members")
    return 0


def run_save(args: argparse.Namespace, settings: Settings) -> int:
    """Evaluate a rules file's segment and save its members as a rule tag."""
    from segmentation.cli import evaluate_file, parse_date, tag_store
    from segmentation.rule_tags import save_rule_tag

    evaluation = evaluate_file(args.rules, args, settings,
                               as_of=parse_date(args.as_of, "--as-of"))
    try:
        info = save_rule_tag(tag_store(settings), tag=args.tag, rules_path=args.rules,
                             segment=args.segment, evaluation=evaluation)
    except InvalidInput as exc:
        raise UsageError(str(exc)) from None
    print(f"{info.name}: {info.count:,} members (rule {args.rules.name} / {args.segment}, "
          f"as of {evaluation.as_of})")
    return 0


def run_refresh(args: argparse.Namespace, settings: Settings) -> int:
    """Recompute every rule tag as of the day given (default today)."""
    from segmentation.cli import evaluate_file, parse_date, tag_store
    from segmentation.rule_tags import refresh_rule_tags

    as_of = parse_date(args.as_of, "--as-of")
    store = tag_store(settings)
    try:
        refreshed = refresh_rule_tags(
            store, evaluate=lambda path: evaluate_file(path, args, settings, as_of=as_of),
            select=_console_select(args, settings, store, as_of))
    except (InvalidInput, InvalidRule) as exc:
        raise UsageError(str(exc)) from None
    for info in refreshed:
        print(f"{info.name}: {info.count:,} members")
    return 0


def _console_select(args: argparse.Namespace, settings: Settings, store: TagStore,
                    as_of: dt.date | None) -> Callable[[dict[str, Any]], list[Any]] | None:
    """Members of a console condition on the data of QUANPAI_SEGMENT_RULES (None: unset)."""
    from segmentation.rule_tags import condition_members
    from segmentation.rules import load_rules

    if settings.segment_rules is None:
        return None
    rules = load_rules(settings.segment_rules)
    day = as_of or dt.datetime.now(rules.timezone).date()
    facts = args.coupon_facts(settings) if args.coupon_facts is not None else None

    def select(where: dict[str, Any]) -> list[Any]:
        clickhouse = None
        if rules.transactions.clickhouse_table or (rules.members and
                                                   rules.members.clickhouse_table):
            from infra.chdb_service import open_clickhouse

            clickhouse = open_clickhouse(settings)
        try:
            return condition_members(rules, where, as_of=day, clickhouse=clickhouse,
                                     coupon_facts=facts, tags=store)
        finally:
            if clickhouse is not None:
                clickhouse.close()
    return select


def run_list(args: argparse.Namespace, settings: Settings) -> int:
    """Print every tag."""
    from segmentation.cli import tag_store

    for info in tag_store(settings).tags():
        rule = f" ({Path(info.rules).name} / {info.segment})" if info.kind == "rule" else ""
        print(f"{info.name}\t{info.kind}{rule}\t{info.count:,} members\tupdated {info.updated}")
    return 0
