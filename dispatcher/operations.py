"""What operators do with campaigns, shared by the command line and the HTTP API: keep a draft,
launch it, steer it (pause, resume, cancel), requeue its dead letters, report its status."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime
from typing import Any

import pandas as pd

from analytics.stream import RedisStreamSink
from catalog.templates import save_template
from channels.ratelimit import QuietHours
from dispatcher.actors import register_actors
from dispatcher.audience import load_audience
from dispatcher.broker import make_broker
from dispatcher.campaigns import CHANNELS, Campaign, CampaignStore, Progress
from dispatcher.definition import CampaignDefinition, parse_definition
from dispatcher.errors import CampaignError, CampaignStateError, DefinitionError
from dispatcher.launch import DEFAULT_PRICES_FEN, LaunchDeps, enqueue, prepare
from infra.redis_client import make_redis
from infra.services import resolve_broker_url, resolve_redis_url
from infra.settings import Settings


def build_launch_deps(settings: Settings, *, redis_url: str | None = None) -> LaunchDeps:
    """Launch dependencies from settings (the caller is a composition root: CLI, API,
    scheduler). Raises ``DefinitionError`` for channel settings a campaign cannot use."""
    try:
        QuietHours.parse(settings.sms.quiet_hours, settings.timezone)
    except ValueError as exc:
        raise DefinitionError("channels", f"SMS_QUIET_HOURS is unusable: {exc}") from None
    url = redis_url or resolve_redis_url(settings)
    client = make_redis(url)
    return LaunchDeps(
        client=client, store=CampaignStore(client=client),
        actor=register_actors(make_broker(resolve_broker_url(settings, redis_url=url)),
                              processor=None),
        events=RedisStreamSink(client=client, stream=settings.events_stream),
        merchant_id=settings.merchant_id, timezone=settings.timezone,
        batch_size=settings.batch_size, channels=CHANNELS,
        prices_fen={**DEFAULT_PRICES_FEN, **parse_prices(settings.channel_prices)},
        snapshots_dir=settings.var_dir / "snapshots",
    )


def parse_prices(text: str) -> dict[str, int]:
    """``wechat=0,alipay=0,sms=5`` as {channel: fen} (checked by the settings already)."""
    pairs = (p.strip().partition("=") for p in text.split(",") if p.strip())
    return {name.strip(): int(fen) for name, _, fen in pairs}


def read_audience(definition: CampaignDefinition, *, deps: LaunchDeps,
                  now: datetime) -> pd.DataFrame:
    """The definition's members; an audience from rules is frozen as a snapshot directory
    under ``snapshots_dir`` (named for the time and segment), so what was sent to is kept."""
    freeze = None
    if definition.audience.rules is not None and deps.snapshots_dir is not None:
        stamp = now.astimezone(deps.timezone).strftime("%Y%m%d-%H%M%S-%f")
        freeze = deps.snapshots_dir / f"{stamp}-{definition.audience.segment}"
    return load_audience(definition.audience, freeze_into=freeze,
                         as_of=now.astimezone(deps.timezone).date(),
                         **audience_sources(deps.client, deps.merchant_id))


def audience_sources(client: Any, merchant_id: str) -> dict[str, Any]:
    """The catalog's coupon facts and the merchant's tags, for rules that use them."""
    from catalog.holdings import coupon_facts
    from segmentation.tags import RedisTags

    return {"coupon_facts": lambda: pd.DataFrame(coupon_facts(client, merchant_id)),
            "tags": RedisTags(client=client, merchant_id=merchant_id)}


def launch_now(definition: CampaignDefinition, members: pd.DataFrame, *, deps: LaunchDeps,
               now: datetime) -> str:
    """``launch_campaign`` (re-exported for callers that already hold the audience)."""
    from dispatcher.launch import launch_campaign

    return launch_campaign(definition, members, deps=deps, now=now)


def create_draft(definition: CampaignDefinition, *, deps: LaunchDeps, now: datetime) -> str:
    """Check ``definition`` (its audience read and verified) and keep it as a draft."""
    members = read_audience(definition, deps=deps, now=now)
    prepared = prepare(definition, members, deps=deps, now=now)
    deps.store.save(replace(prepared.campaign, status="draft"))
    return prepared.campaign.campaign_id


def launch_draft(campaign_id: str, *, deps: LaunchDeps, now: datetime) -> str:
    """Launch a draft: its audience is read (rules evaluated) now, then checked as at
    creation, then enqueued under the draft's id."""
    draft = deps.store.get(campaign_id)
    if draft.status != "draft":
        raise CampaignStateError(f"campaign {campaign_id} is {draft.status}: only a draft "
                                 "can be launched")
    definition = parse_definition(draft.extra["definition"])
    members = read_audience(definition, deps=deps, now=now)
    prepared = prepare(definition, members, deps=deps, now=now)
    campaign = replace(prepared.campaign, campaign_id=campaign_id)
    if prepared.template is not None:
        campaign = replace(campaign, template_id=save_template(deps.client, prepared.template))
    delay_ms = 0
    if definition.start_at is not None and definition.start_at > now:
        delay_ms = int((definition.start_at - now).total_seconds() * 1000)
    enqueue(prepared.members, campaign=campaign, deps=deps, now=now, delay_ms=delay_ms)
    return campaign_id


def steer(store: CampaignStore, campaign_id: str, operation: str) -> str:
    """Pause, resume or cancel; returns the new state. Workers check the state before every
    provider request, so it takes effect within a request's time (well under 2 s)."""
    store.get(campaign_id)  # names an unknown campaign
    return store.transition(campaign_id, operation)


def requeue(campaign_id: str, *, deps: LaunchDeps) -> int:
    """Run the dead-lettered batches again (their failed members only are retried); returns
    how many batches were queued."""
    campaign = deps.store.get(campaign_id)
    letters = deps.store.dead_letters(campaign_id)
    if not letters:
        return 0
    deps.store.transition(campaign_id, "requeue")
    for batch_no, letter in sorted(letters.items()):
        deps.store.take_for_requeue(campaign_id, batch_no)
        deps.actor.send(campaign.campaign_id, batch_no, letter["members"])
    return len(letters)


NOT_ISSUED = ("skipped:out_of_stock", "skipped:limit_reached")


def issued_count(progress: Progress) -> int:
    """Members issued a coupon so far: every settled member but those the stock, budget or
    per-member limit left without one (exact under redelivery, like the counts)."""
    return sum(v for k, v in progress.counts.items() if k not in NOT_ISSUED)


def channel_counts(campaign: Campaign, progress: Progress) -> dict[str, dict[str, int]]:
    """Per channel: planned (first reachable channel at planning), sent, failed, in_doubt, and
    the delivery receipts so far: delivered, undelivered (a sent member with no receipt yet is
    in neither)."""
    out: dict[str, dict[str, int]] = {}
    planned: dict[str, Any] = campaign.extra.get("routed", {})
    for channel, count in planned.items():
        out.setdefault(channel, {})["planned"] = int(count)
    for key, value in [*progress.counts.items(), *progress.receipts.items()]:
        kind, _, channel = key.partition(":")
        if kind in ("sent", "failed", "in_doubt", "delivered", "undelivered") and channel:
            out.setdefault(channel, {})[kind] = value
    return out


def status_report(store: CampaignStore, campaign_id: str) -> list[str]:
    """The lines of ``campaign status``: state, progress, per-channel counts, deferrals, dead
    letters."""
    campaign = store.get(campaign_id)
    progress = store.progress(campaign_id)
    lines = [f"{campaign.campaign_id} {campaign.name}: {campaign.status}, "
             f"{progress.batches_done}/{campaign.total_batches} batches, "
             f"{progress.members_processed:,}/{campaign.total_members:,} members, "
             f"{campaign.held_out:,} held out, {issued_count(progress):,} issued"]
    columns = ("planned", "sent", "delivered", "undelivered", "failed", "in_doubt")
    lines.append(f"{'channel':<12}" + "".join(f"{c.replace('_', ' '):>12}" for c in columns))
    for channel, counts in channel_counts(campaign, progress).items():
        lines.append(f"{channel:<12}" + "".join(f"{counts.get(c, 0):>12,}" for c in columns))
    skipped = {k.split(":", 1)[1]: v for k, v in progress.counts.items()
               if k.startswith("skipped:")}
    if skipped:
        lines.append("not messaged: " + ", ".join(f"{k} {v:,}" for k, v in skipped.items()))
    for batch_no, why in sorted(store.deferrals(campaign_id).items()):
        lines.append(f"deferred batch {batch_no}: {why['reason']} until {why['until']}")
    for batch_no, letter in sorted(store.dead_letters(campaign_id).items()):
        lines.append(f"dead letter batch {batch_no} ({len(letter['members'])} members): "
                     f"{letter['reason']}")
    return lines


def status_document(store: CampaignStore, campaign_id: str) -> dict[str, Any]:
    """The same as ``status_report``, as JSON for the API."""
    campaign = store.get(campaign_id)
    progress = store.progress(campaign_id)
    return {
        "campaign_id": campaign_id, "name": campaign.name, "status": campaign.status,
        "total_batches": campaign.total_batches, "batches_done": progress.batches_done,
        "total_members": campaign.total_members, "processed": progress.members_processed,
        "held_out": campaign.held_out, "issued": issued_count(progress),
        "channels": channel_counts(campaign, progress),
        "deferred": {str(k): v for k, v in store.deferrals(campaign_id).items()},
        "dead_letters": {str(k): {"reason": v["reason"], "members": len(v["members"])}
                         for k, v in store.dead_letters(campaign_id).items()},
    }


def definition_of(campaign: Campaign) -> dict[str, Any]:
    """The definition a campaign was created from (JSON-ready)."""
    definition: dict[str, Any] = json.loads(json.dumps(campaign.extra.get("definition", {})))
    return definition


__all__ = ["CampaignError", "build_launch_deps", "create_draft", "launch_draft",
           "launch_now", "requeue", "status_document", "status_report", "steer"]
