"""Launch a campaign: check everything, then coupon template, plan, held-out events, batches onto
the queue. Workers consume; the worker that finishes the last batch completes the campaign.

``launch_campaign(definition, audience, deps=..., now=...)`` is the one entry point for the CLI,
the HTTP API and the scheduler; it returns the campaign id. Everything it can check (an empty
audience, the content of each channel against its provider template, the channels' settings,
the coupon template) is checked by ``prepare`` before anything is written or sent.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd
import redis

from analytics.events import Event
from analytics.stream import RedisStreamSink
from catalog.errors import CatalogError
from catalog.templates import CouponTemplate, load_template, save_template
from channels.content import DEFAULT_SMS, DEFAULT_WECHAT, CampaignContent, validate
from channels.errors import ContentError
from dispatcher.campaigns import FINAL, Campaign, CampaignStore, new_campaign_id
from dispatcher.definition import AUTO, CampaignDefinition, definition_to_json
from dispatcher.errors import CampaignError, DefinitionError
from dispatcher.planner import Plan, plan
from dispatcher.variables import campaign_variables, message_variables

OnProgress = Callable[[int, int], None]  # (members processed, members to process)
# Default price per message in fen, for ``channels: auto`` (configuration may override).
DEFAULT_PRICES_FEN: dict[str, int] = {"wechat": 0, "wechat_mass": 0, "alipay": 0,
                                      "alipay_cash": 0, "sms": 5}


@dataclass(frozen=True)
class LaunchDeps:
    """What launching needs, built by the caller's composition root."""

    client: redis.Redis
    store: CampaignStore
    actor: Any  # the process_batch actor (enqueue-only)
    events: RedisStreamSink
    merchant_id: str
    timezone: ZoneInfo
    batch_size: int
    channels: Collection[str]  # channels configured in this deployment
    prices_fen: Mapping[str, int] = field(default_factory=lambda: dict(DEFAULT_PRICES_FEN))
    snapshots_dir: Path | None = None  # where audiences evaluated from rules are frozen


@dataclass(frozen=True)
class Prepared:
    """A checked campaign, nothing written yet."""

    campaign: Campaign
    template: CouponTemplate | None  # None: an existing template
    members: pd.DataFrame


def channel_order(definition: CampaignDefinition, prices_fen: Mapping[str, int],
                  configured: Collection[str]) -> tuple[str, ...]:
    """The channels a campaign tries, in order. ``auto``: every configured per-member channel,
    cheapest first (the router then takes each member's cheapest reachable, consenting one)."""
    if not definition.automatic:
        return definition.channels
    kinds = [c for c in ("wechat", "alipay", "sms") if c in configured]
    return tuple(sorted(kinds, key=lambda c: (prices_fen.get(c, 1 << 30), kinds.index(c))))


def check_content(campaign: Campaign, members: pd.DataFrame) -> None:
    """Check every channel's message with the longest values this campaign will produce;
    raises ``ContentError`` naming each problem."""
    names = members["name"].dropna().astype(str).tolist() if "name" in members else []
    longest = max(names, key=len, default="会员")
    for channel in campaign.channels:
        kind = channel.split("_", 1)[0]
        if kind not in ("sms", "wechat") or channel == "wechat_mass":
            continue  # card mass sends and Alipay vouchers carry no template text
        sample = message_variables(campaign, channel=channel, name=longest, code="X" * 16)
        validate(CampaignContent(sms=DEFAULT_SMS if kind == "sms" else None,
                                 wechat=DEFAULT_WECHAT if kind == "wechat" else None), sample)


def prepare(definition: CampaignDefinition, members: pd.DataFrame, *, deps: LaunchDeps,
            now: datetime) -> Prepared:
    """Check ``definition`` against ``members`` and this deployment; writes nothing.
    Raises ``DefinitionError`` naming the field."""
    if "member_id" not in members:
        raise DefinitionError("audience", "the audience needs a member_id column")
    members = members.drop_duplicates("member_id").reset_index(drop=True)
    if members.empty:
        raise DefinitionError("audience", "the audience is empty: nothing to send")
    missing = [c for c in definition.channels if c != AUTO and c not in deps.channels]
    if missing:
        raise DefinitionError("channels", f"{missing[0]} is not configured here")
    merchant = definition.merchant_id or deps.merchant_id
    coupon = definition.coupon
    local_day = now.astimezone(deps.timezone).date()
    template: CouponTemplate | None = None
    try:
        if coupon.template_id:
            existing = load_template(deps.client, merchant, coupon.template_id)
            title, template_id = existing.name, coupon.template_id
        else:
            budget = definition.budget
            stock = len(members) if budget.max_coupons is None else min(budget.max_coupons,
                                                                        len(members))
            template = CouponTemplate(
                merchant_id=merchant, kind="threshold", name=coupon.title, total_stock=stock,
                threshold_fen=coupon.threshold_fen, discount_fen=coupon.discount_fen,
                valid_days=coupon.valid_days, budget_fen=budget.max_cost_fen,
            )
            title, template_id = coupon.title, ""
    except CatalogError as exc:
        raise DefinitionError("coupon", str(exc)) from None
    start = now if definition.start_at is None else max(definition.start_at, now)
    campaign = Campaign(
        campaign_id=new_campaign_id(start.astimezone(deps.timezone)),
        merchant_id=merchant, name=definition.name, template_id=template_id,
        coupon_title=title,
        channels=channel_order(definition, deps.prices_fen, deps.channels),
        holdout_permille=definition.holdout_permille, created_at=now.isoformat(),
        extra={**campaign_variables(definition, local_day),
               "definition": definition_to_json(definition),
               "frequency_cap": ([definition.frequency_cap.messages,
                                  definition.frequency_cap.days]
                                 if definition.frequency_cap else None),
               "send_rate_per_s": definition.send_rate_per_s},
    )
    try:
        check_content(campaign, members)
    except ContentError as exc:
        field_name, what = exc.problems[0]
        raise DefinitionError(f"content.{field_name}", what) from None
    return Prepared(campaign=campaign, template=template, members=members)


def launch_campaign(
    definition: CampaignDefinition, audience: pd.DataFrame, *, deps: LaunchDeps, now: datetime,
    on_enqueued: OnProgress | None = None,
) -> str:
    """Check, then create and enqueue a campaign for ``audience`` (one row per member, column
    ``member_id`` plus the channel columns of a segment snapshot); returns the campaign id.

    With ``definition.start_at`` in the future the campaign is ``scheduled`` and its batches
    wait in the broker's delay queue until then; otherwise it is ``running`` at once. The
    worker that finishes the last batch moves it to ``completed`` (or
    ``completed_with_failures``). Raises ``DefinitionError`` (nothing written) for bad input."""
    prepared = prepare(definition, audience, deps=deps, now=now)
    campaign = prepared.campaign
    if prepared.template is not None:
        campaign = replace(campaign, template_id=save_template(deps.client, prepared.template))
    delay_ms = 0
    if definition.start_at is not None and definition.start_at > now:
        delay_ms = int((definition.start_at - now).total_seconds() * 1000)
    campaign, _plan = enqueue(prepared.members, campaign=campaign, deps=deps, now=now,
                              delay_ms=delay_ms, on_enqueued=on_enqueued)
    return campaign.campaign_id


def enqueue(
    members: pd.DataFrame, *, campaign: Campaign, deps: LaunchDeps, now: datetime,
    delay_ms: int = 0, on_enqueued: OnProgress | None = None,
) -> tuple[Campaign, Plan]:
    """Plan ``members`` for ``campaign``, record it, emit held-out events, enqueue its batches."""
    the_plan = plan(members, campaign=campaign, batch_size=deps.batch_size)
    if not the_plan.batches and not the_plan.held_out:
        raise CampaignError("the audience is empty: nothing to send")
    campaign = replace(
        campaign, status="scheduled" if delay_ms else "running",
        total_batches=len(the_plan.batches), total_members=the_plan.treated,
        held_out=len(the_plan.held_out), extra={**campaign.extra, "routed": the_plan.routed},
    )
    if not the_plan.batches:  # everyone held out: nothing for a worker to finish
        campaign = replace(campaign, status="completed")
    deps.store.save(campaign)
    deps.store.save_sizes(campaign.campaign_id, [len(b) for b in the_plan.batches])
    held = [
        Event(event_id=f"held_out:{campaign.campaign_id}:{m}", event_type="held_out",
              merchant_id=campaign.merchant_id, campaign_id=campaign.campaign_id,
              member_id=m, ts=now)
        for m in the_plan.held_out
    ]
    for start in range(0, len(held), 5000):
        deps.events.emit(held[start : start + 5000])
    enqueued = 0
    for batch_no, batch in enumerate(the_plan.batches):
        rows = [list(row) for row in batch]
        if delay_ms:
            deps.actor.send_with_options(args=(campaign.campaign_id, batch_no, rows),
                                         delay=delay_ms)
        else:
            deps.actor.send(campaign.campaign_id, batch_no, rows)
        enqueued += len(batch)
        if on_enqueued is not None:
            on_enqueued(enqueued, the_plan.treated)
    return campaign, the_plan


def wait_done(
    *, store: CampaignStore, campaign: Campaign, timeout: float,
    on_progress: OnProgress | None = None, settle_deferred: bool = False,
) -> bool:
    """Watch ``campaign`` until it reaches a final state (or, with ``settle_deferred``, until
    every batch is done or deferred to a later window); False on timeout. Only watches: the
    workers complete the campaign."""
    deadline = time.monotonic() + timeout
    while True:
        state = store.progress(campaign.campaign_id)
        if on_progress is not None:
            on_progress(state.members_processed, campaign.total_members)
        if store.status(campaign.campaign_id) in FINAL:
            return True
        settled = state.batches_done + state.batches_deferred
        if settle_deferred and settled >= campaign.total_batches:
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
