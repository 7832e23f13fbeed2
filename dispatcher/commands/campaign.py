"""``quanpai campaign run|status``: launch a campaign to a segment snapshot and watch it."""

from __future__ import annotations

import argparse
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pandas as pd
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from analytics.stream import RedisStreamSink
from catalog.errors import CatalogError
from catalog.templates import CouponTemplate, save_template
from channels.content import DEFAULT_SMS, DEFAULT_WECHAT, CampaignContent, validate
from channels.errors import ContentError
from dispatcher.actors import message_variables, register_actors
from dispatcher.broker import make_broker
from dispatcher.campaigns import CHANNELS, Campaign, CampaignStore, new_campaign_id
from dispatcher.errors import CampaignError
from dispatcher.launch import launch, wait_done
from infra.cli_support import UsageError
from infra.redis_client import make_redis
from infra.services import resolve_redis_url
from infra.settings import Settings


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("campaign", help="run a coupon campaign to a segment")
    actions = parser.add_subparsers(dest="action", required=True)
    run_p = actions.add_parser("run", help="launch a campaign to a snapshot (Parquet or CSV)")
    run_p.add_argument("--snapshot", type=Path, required=True)
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
    status_p = actions.add_parser("status", help="progress of a campaign")
    status_p.add_argument("campaign_id")
    status_p.set_defaults(func=status)


@dataclass(frozen=True)
class CouponSpec:
    threshold_fen: int = 10000
    discount_fen: int = 1500
    valid_days: int = 30
    name: str = ""  # the coupon's title; default 满X减Y券

    def expiry(self, issue_day: date) -> date:
        """Last valid day of a coupon issued on ``issue_day`` (the issue day counts as day 1)."""
        return issue_day + timedelta(days=self.valid_days - 1)

    @property
    def title(self) -> str:
        return self.name or f"满{self.threshold_fen // 100}减{self.discount_fen // 100}券"


def read_snapshot(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise UsageError(f"--snapshot {path}: no such file")
    try:
        frame = pd.read_csv(path) if path.suffix == ".csv" else pd.read_parquet(path)
    except (ValueError, OSError) as exc:
        raise UsageError(f"--snapshot {path}: cannot read ({exc})") from None
    if "member_id" not in frame:
        raise UsageError(f"--snapshot {path}: needs a member_id column")
    return frame


def check_content(campaign: Campaign, snapshot: pd.DataFrame) -> None:
    """Check every channel's message with the longest values this campaign will produce;
    raises ``ContentError`` naming each problem."""
    names = snapshot["name"].dropna().astype(str).tolist() if "name" in snapshot else []
    longest = max(names, key=len, default="会员")
    for channel in campaign.channels:
        kind = channel.split("_", 1)[0]
        if kind not in ("sms", "wechat") or channel == "wechat_mass":
            continue  # card mass sends and Alipay vouchers carry no template text
        sample = message_variables(campaign, channel=channel, name=longest, code="X" * 16)
        validate(CampaignContent(sms=DEFAULT_SMS if kind == "sms" else None,
                                 wechat=DEFAULT_WECHAT if kind == "wechat" else None), sample)


def run_campaign(
    snapshot: pd.DataFrame, *, settings: Settings, name: str, channels: tuple[str, ...],
    holdout_permille: int, coupon: CouponSpec, wait: bool, timeout: float,
) -> Campaign:
    """Create the template and campaign, enqueue its batches, optionally wait with progress
    until every batch is done or deferred to a later window (SMS quiet hours, quotas)."""
    client = make_redis(resolve_redis_url(settings))
    now = datetime.now(UTC)
    local_day = now.astimezone(settings.timezone).date()
    # Everything is checked before anything is written: a refused campaign leaves no template.
    try:
        template = CouponTemplate(
            merchant_id=settings.merchant_id, kind="threshold", name=coupon.title,
            total_stock=max(len(snapshot), 1), threshold_fen=coupon.threshold_fen,
            discount_fen=coupon.discount_fen, valid_days=coupon.valid_days,
        )
        campaign = Campaign(
            campaign_id=new_campaign_id(now.astimezone(settings.timezone)),
            merchant_id=settings.merchant_id, name=name, template_id="",
            coupon_title=coupon.title, channels=channels, holdout_permille=holdout_permille,
            created_at=now.isoformat(), extra={"expiry": coupon.expiry(local_day).isoformat()},
        )
        check_content(campaign, snapshot)
        campaign = replace(campaign, template_id=save_template(client, template))
    except (CatalogError, CampaignError, ContentError) as exc:
        raise UsageError(str(exc)) from None
    store = CampaignStore(client=client)
    actor = register_actors(make_broker(resolve_redis_url(settings)), processor=None)
    events = RedisStreamSink(client=client, stream=settings.events_stream)
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn())
    with Progress(*columns) as progress:
        queued = progress.add_task("enqueue", total=len(snapshot))
        campaign, _plan = launch(
            snapshot, campaign=campaign, store=store, actor=actor, events=events,
            batch_size=settings.batch_size, now=now,
            on_enqueued=lambda done, total: progress.update(queued, completed=done, total=total),
        )
        if wait:
            issued = progress.add_task("issue + send", total=campaign.total_members)
            try:
                finished = wait_done(
                    store=store, campaign=campaign, timeout=timeout, settle_deferred=True,
                    on_progress=lambda done, total: progress.update(issued, completed=done),
                )
            except KeyboardInterrupt:
                # The operator stopped watching: stop the campaign too, so workers skip the
                # batches still queued instead of sending them later.
                store.update(campaign.campaign_id, status="cancelled")
                raise
            if not finished:
                raise CampaignError(f"campaign {campaign.campaign_id} not done in {timeout}s")
    return store.get(campaign.campaign_id)


def run(args: argparse.Namespace, settings: Settings) -> int:
    channels = tuple(c.strip() for c in args.channels.split(",") if c.strip())
    unknown = [c for c in channels if c not in CHANNELS]
    if unknown or not channels:
        raise UsageError(f"--channels: unknown channel {unknown[:1]} (use {','.join(CHANNELS)})")
    snapshot = read_snapshot(args.snapshot)
    coupon = CouponSpec(args.threshold_fen, args.discount_fen, args.valid_days, args.title)
    campaign = run_campaign(
        snapshot, settings=settings, name=args.name, channels=channels,
        holdout_permille=args.holdout_permille, coupon=coupon, wait=args.wait,
        timeout=args.timeout,
    )
    print(f"campaign {campaign.campaign_id}: {campaign.total_members:,} members in "
          f"{campaign.total_batches:,} batches, {campaign.held_out:,} held out, "
          f"status {campaign.status}")
    return 0


def status(args: argparse.Namespace, settings: Settings) -> int:
    store = CampaignStore(client=make_redis(resolve_redis_url(settings)))
    campaign = store.get(args.campaign_id)
    state = store.progress(campaign.campaign_id)
    deferred = f", {state.batches_deferred} deferred" if state.batches_deferred else ""
    print(f"{campaign.campaign_id} {campaign.name}: {campaign.status}, "
          f"{state.batches_done}/{campaign.total_batches} batches{deferred}, "
          f"{state.members_processed:,}/{campaign.total_members:,} members")
    return 0
