"""``quanpai campaign create FILE | run ID|FILE | list | status ID [--watch] | pause ID |
resume ID | cancel ID | requeue ID``: define, launch, watch and steer campaigns."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from dispatcher.audience import load_audience, read_member_file
from dispatcher.campaigns import Campaign, CampaignStore
from dispatcher.definition import (
    Audience,
    CampaignDefinition,
    CouponSpec,
    load_definition,
    parse_definition,
)
from dispatcher.errors import CampaignError, DefinitionError
from dispatcher.launch import LaunchDeps, wait_done
from dispatcher.operations import (
    build_launch_deps,
    create_draft,
    launch_draft,
    launch_now,
    read_audience,
    requeue,
    status_report,
    steer,
)
from infra.cli_support import UsageError
from infra.redis_client import make_redis
from infra.services import resolve_redis_url
from infra.settings import Settings

__all__ = ["CouponSpec", "register", "run_campaign"]


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("campaign", help="define, launch, watch and steer campaigns")
    actions = parser.add_subparsers(dest="action", required=True)
    create_p = actions.add_parser("create", help="check a definition file and keep it as a draft")
    create_p.add_argument("file", type=Path)
    create_p.set_defaults(func=create)
    run_p = actions.add_parser("run", help="launch a draft (ID) or a definition file")
    run_p.add_argument("target", nargs="?", help="campaign id or definition file (YAML)")
    run_p.add_argument("--snapshot", type=Path, help="members (Parquet/CSV or a snapshot dir)")
    run_p.add_argument("--segment", default="", help="segment of the snapshot directory")
    run_p.add_argument("--name", default="唤醒券")
    run_p.add_argument("--channels", default="wechat_mass,sms,alipay")
    run_p.add_argument("--holdout-permille", type=int, default=0)
    run_p.add_argument("--threshold-fen", type=int, default=10000)
    run_p.add_argument("--discount-fen", type=int, default=1500)
    run_p.add_argument("--valid-days", type=int, default=30)
    run_p.add_argument("--title", default="", help="coupon title (default 满X减Y券)")
    run_p.add_argument("--wait", action="store_true", help="show progress until done")
    run_p.add_argument("--timeout", type=float, default=3600.0)
    run_p.set_defaults(func=run)
    list_p = actions.add_parser("list", help="campaigns, newest first")
    list_p.set_defaults(func=list_campaigns)
    status_p = actions.add_parser("status", help="state and per-channel counts of a campaign")
    status_p.add_argument("campaign_id")
    status_p.add_argument("--watch", action="store_true", help="progress bar until it ends")
    status_p.add_argument("--timeout", type=float, default=3600.0)
    status_p.set_defaults(func=status)
    for name, text in (("pause", "pause a campaign (takes effect within 2 s)"),
                       ("resume", "resume a paused campaign"),
                       ("cancel", "cancel a campaign (queued batches send nothing)"),
                       ("requeue", "run a campaign's dead-lettered batches again")):
        p = actions.add_parser(name, help=text)
        p.add_argument("campaign_id")
        p.set_defaults(func=operate, operation=name)


def _definition_from_flags(args: argparse.Namespace) -> CampaignDefinition:
    if args.timeout <= 0:
        raise UsageError("--timeout: must be positive")
    data = {
        "name": args.name, "channels": args.channels,
        "holdout_permille": args.holdout_permille,
        "coupon": {"threshold_fen": args.threshold_fen, "discount_fen": args.discount_fen,
                   "valid_days": args.valid_days, "title": args.title},
        "audience": {"snapshot": str(args.snapshot), "segment": args.segment},
    }
    try:
        return parse_definition(data)
    except DefinitionError as exc:
        flag = {"holdout_permille": "--holdout-permille", "name": "--name"}.get(
            exc.field, "--" + exc.field.split(".")[-1].split("[")[0].replace("_", "-"))
        raise UsageError(f"{flag}: {exc.message}") from None


def _watch(store: CampaignStore, campaign: Campaign, timeout: float) -> bool:
    """Progress bar until the campaign ends (or every batch is done or deferred). Ctrl-C stops
    watching only: the campaign goes on."""
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn())
    try:
        with Progress(*columns) as progress:
            task = progress.add_task("issue + send", total=campaign.total_members)
            return wait_done(store=store, campaign=campaign, timeout=timeout,
                             settle_deferred=True,
                             on_progress=lambda done, total: progress.update(task,
                                                                             completed=done))
    except KeyboardInterrupt:
        print(f"stopped watching; campaign {campaign.campaign_id} goes on. "
              f"To stop it: quanpai campaign cancel {campaign.campaign_id}")
        return False


def run_campaign(
    snapshot: pd.DataFrame, *, settings: Settings, name: str, channels: tuple[str, ...],
    holdout_permille: int, coupon: CouponSpec, wait: bool, timeout: float,
) -> Campaign:
    """Launch a campaign to ``snapshot`` (a frame of members) and optionally watch it; the
    programmatic form of ``campaign run --snapshot``. Raises ``UsageError`` on bad input
    (nothing written)."""
    try:
        definition = parse_definition({
            "name": name, "channels": list(channels), "holdout_permille": holdout_permille,
            "coupon": {"threshold_fen": coupon.threshold_fen, "discount_fen": coupon.discount_fen,
                       "valid_days": coupon.valid_days, "title": coupon.name},
            "audience": {"snapshot": "-"},
        })
        deps = build_launch_deps(settings)
        campaign_id = launch_now(definition, snapshot, deps=deps, now=datetime.now(UTC))
    except CampaignError as exc:
        raise UsageError(str(exc)) from None
    campaign = deps.store.get(campaign_id)
    if wait and not _watch(deps.store, campaign, timeout):
        raise CampaignError(f"campaign {campaign_id} not done in {timeout}s")
    return deps.store.get(campaign_id)


def _summary(campaign: Campaign) -> str:
    return (f"campaign {campaign.campaign_id}: {campaign.total_members:,} members in "
            f"{campaign.total_batches:,} batches, {campaign.held_out:,} held out, "
            f"status {campaign.status}")


def _warn_without_workers(deps: LaunchDeps) -> None:
    from dispatcher.broker import live_workers

    if live_workers(deps.actor.broker.client, exclude=deps.actor.broker.broker_id) == 0:
        print("warning: no worker has a live heartbeat; the batches wait in the queue until "
              "`quanpai worker` runs", flush=True)


def _launch(args: argparse.Namespace, deps: LaunchDeps) -> str:
    """Launch what ``campaign run`` names; the campaign id. Nothing is written on bad input."""
    now = datetime.now(UTC)
    try:
        if args.target is not None and Path(args.target).is_file():
            definition = load_definition(Path(args.target))
            return launch_now(definition, read_audience(definition, deps=deps, now=now),
                              deps=deps, now=now)
        if args.target is not None:
            return launch_draft(args.target, deps=deps, now=now)
        definition = _definition_from_flags(args)
        if not args.snapshot.exists():
            raise UsageError(f"--snapshot {args.snapshot}: no such file")
        try:
            members = (read_member_file(args.snapshot) if args.snapshot.is_file()
                       else load_audience(Audience(snapshot=args.snapshot,
                                                   segment=args.segment)))
        except DefinitionError as exc:
            raise UsageError(f"--snapshot: {exc.message}") from None
        return launch_now(definition, members, deps=deps, now=now)
    except CampaignError as exc:
        raise UsageError(str(exc)) from None


def run(args: argparse.Namespace, settings: Settings) -> int:
    if args.timeout <= 0:
        raise UsageError("--timeout: must be positive")
    if args.target is None and args.snapshot is None:
        raise UsageError("give a campaign id, a definition file, or --snapshot FILE")
    deps = build_launch_deps(settings)
    campaign_id = _launch(args, deps)
    store = deps.store
    campaign = store.get(campaign_id)
    print(_summary(campaign), flush=True)
    _warn_without_workers(deps)
    if args.wait:
        _watch(store, campaign, args.timeout)
        print(f"campaign {campaign_id}: {store.status(campaign_id)}")
    return 0


def create(args: argparse.Namespace, settings: Settings) -> int:
    try:
        definition = load_definition(args.file)
        campaign_id = create_draft(definition, deps=build_launch_deps(settings),
                                   now=datetime.now(UTC))
    except CampaignError as exc:
        raise UsageError(str(exc)) from None
    print(f"campaign {campaign_id}: draft; launch it with: quanpai campaign run {campaign_id}")
    return 0


def list_campaigns(args: argparse.Namespace, settings: Settings) -> int:
    store = CampaignStore(client=make_redis(resolve_redis_url(settings)))
    for campaign_id in store.list_ids():
        campaign = store.get(campaign_id)
        state = store.progress(campaign_id)
        print(f"{campaign_id}  {campaign.status:<24} {state.members_processed:>9,}/"
              f"{campaign.total_members:<9,} {campaign.name}")
    return 0


def status(args: argparse.Namespace, settings: Settings) -> int:
    store = CampaignStore(client=make_redis(resolve_redis_url(settings)))
    try:
        campaign = store.get(args.campaign_id)
    except CampaignError as exc:
        raise UsageError(str(exc)) from None
    if args.watch and campaign.status not in ("completed", "completed_with_failures",
                                              "cancelled", "draft"):
        _watch(store, campaign, args.timeout)
    for line in status_report(store, args.campaign_id):
        print(line)
    return 0


def operate(args: argparse.Namespace, settings: Settings) -> int:
    deps = build_launch_deps(settings)
    try:
        if args.operation == "requeue":
            batches = requeue(args.campaign_id, deps=deps)
            print(f"campaign {args.campaign_id}: {batches} dead-lettered batches queued again")
            return 0
        state = steer(deps.store, args.campaign_id, args.operation)
    except CampaignError as exc:
        raise UsageError(str(exc)) from None
    print(f"campaign {args.campaign_id}: {state}")
    return 0
