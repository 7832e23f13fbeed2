"""Launch a campaign: coupon template, plan, held-out events, batches onto the queue; then wait.

The launcher is the producer side (CLI, scheduler, API); workers consume. Progress is read from
Redis, so any process can watch a campaign that another one launched.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from typing import Any

import pandas as pd

from analytics.events import Event
from analytics.stream import RedisStreamSink
from dispatcher.campaigns import Campaign, CampaignStore
from dispatcher.errors import CampaignError
from dispatcher.planner import Plan, plan

OnProgress = Callable[[int, int], None]  # (members processed, members to process)


def launch(
    snapshot: pd.DataFrame,
    *,
    campaign: Campaign,
    store: CampaignStore,
    actor: Any,
    events: RedisStreamSink,
    batch_size: int,
    now: datetime,
    on_enqueued: OnProgress | None = None,
) -> tuple[Campaign, Plan]:
    """Plan ``snapshot`` for ``campaign`` and enqueue one message per batch."""
    if "member_id" not in snapshot:
        raise CampaignError("segment snapshot: needs a member_id column")
    the_plan = plan(snapshot, campaign=campaign, batch_size=batch_size)
    campaign = replace(
        campaign, status="running", total_batches=len(the_plan.batches),
        total_members=the_plan.treated, held_out=len(the_plan.held_out),
        extra={**campaign.extra, "routed": the_plan.routed},
    )
    store.save(campaign)
    held = [
        Event(event_id=f"held_out:{campaign.campaign_id}:{m}", event_type="held_out",
              merchant_id=campaign.merchant_id, campaign_id=campaign.campaign_id,
              member_id=m, ts=now)
        for m in the_plan.held_out
    ]
    for start in range(0, len(held), 5000):
        events.emit(held[start : start + 5000])
    enqueued = 0
    for batch_no, batch in enumerate(the_plan.batches):
        actor.send(campaign.campaign_id, batch_no, [list(row) for row in batch])
        enqueued += len(batch)
        if on_enqueued is not None:
            on_enqueued(enqueued, the_plan.treated)
    return campaign, the_plan


def wait_done(
    *, store: CampaignStore, campaign: Campaign, timeout: float,
    on_progress: OnProgress | None = None, settle_deferred: bool = False,
) -> bool:
    """Wait until every batch of ``campaign`` is done (or, with ``settle_deferred``, done or
    deferred to a later window); False on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        state = store.progress(campaign.campaign_id)
        if on_progress is not None:
            on_progress(state.members_processed, campaign.total_members)
        if state.batches_done >= campaign.total_batches:
            store.update(campaign.campaign_id, status="done")
            return True
        settled = state.batches_done + state.batches_deferred
        if settle_deferred and settled >= campaign.total_batches:
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
