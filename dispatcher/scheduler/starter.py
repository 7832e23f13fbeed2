"""How a scheduled run becomes a campaign: the ``CampaignStarter`` interface and the launcher
that goes through ``dispatcher.launch`` (template in the catalog, plan, held-out events, batches
on the queue).

The campaign id is the run id (``bday-2026-12-03``), so starting the same run again after a
crash plans the same batches for the same members (the holdout hash is keyed by the campaign),
and batches already on the queue are not put there again (``{cmp:<id>}:enqueued``, written
right after each send): two copies of one batch in the hands of two worker threads at once
could both send before either records it. The template is created once per run and its id kept
in the run record before launching.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Protocol

import pandas as pd
import redis

from analytics.stream import RedisStreamSink
from catalog.templates import CouponTemplate, save_template
from dispatcher.campaigns import Campaign, CampaignStore
from dispatcher.launch import launch
from dispatcher.planner import holdout_mask
from dispatcher.scheduler.definitions import Definition


@dataclass(frozen=True)
class Started:
    """What a started run planned."""

    campaign_id: str
    treated: int
    held_out: int
    batches: int


class CampaignStarter(Protocol):
    """Creates the campaign of a run."""

    def prepare(self, definition: Definition, *, audience_size: int) -> str:
        """Create the run's coupon template; returns its id."""

    def start(self, definition: Definition, *, campaign_id: str, template_id: str,
              snapshot: pd.DataFrame, now: dt.datetime) -> Started:
        """Plan and enqueue the campaign ``campaign_id`` to ``snapshot`` (idempotent per id)."""


def enqueued_key(campaign_id: str) -> str:
    """Batch numbers of a campaign already put on the queue."""
    return f"{{cmp:{campaign_id}}}:enqueued"


class _EnqueueOnce:
    """The batch actor, minus batches already enqueued for the campaign.

    The record follows the send: a crash between the two enqueues that batch again on restart
    (the worker's per-batch records then skip what was sent), never loses it.
    """

    def __init__(self, actor: Any, client: redis.Redis) -> None:
        self._actor = actor
        self._client = client

    def send(self, campaign_id: str, batch_no: int, rows: list[list[str]]) -> Any:
        key = enqueued_key(campaign_id)
        if self._client.sismember(key, str(batch_no)):
            return None
        message = self._actor.send(campaign_id, batch_no, rows)
        self._client.sadd(key, batch_no)
        return message


class LaunchStarter:
    """Starts runs through ``dispatcher.launch.launch`` onto the Dramatiq queue."""

    def __init__(self, *, client: redis.Redis, actor: Any, events: RedisStreamSink,
                 merchant_id: str, batch_size: int) -> None:
        self._client = client
        self._actor = actor
        self._events = events
        self._merchant_id = merchant_id
        self._batch_size = batch_size
        self._campaigns = CampaignStore(client=client)

    def prepare(self, definition: Definition, *, audience_size: int) -> str:
        """Save a threshold coupon template with stock for the whole audience."""
        coupon = definition.coupon
        template = CouponTemplate(
            merchant_id=self._merchant_id, kind="threshold", name=coupon.title,
            total_stock=max(audience_size, 1), threshold_fen=coupon.threshold_fen,
            discount_fen=coupon.discount_fen, valid_days=coupon.valid_days,
        )
        return save_template(self._client, template)

    def start(self, definition: Definition, *, campaign_id: str, template_id: str,
              snapshot: pd.DataFrame, now: dt.datetime) -> Started:
        """Launch the campaign; batches are enqueued in plan order."""
        local_day = now.astimezone(definition.timezone).date()
        expiry = local_day + dt.timedelta(days=definition.coupon.valid_days - 1)
        campaign = Campaign(
            campaign_id=campaign_id, merchant_id=self._merchant_id,
            name=f"{definition.name} {local_day.isoformat()}", template_id=template_id,
            coupon_title=definition.coupon.title, channels=definition.channels,
            holdout_permille=definition.holdout_permille, created_at=now.isoformat(),
            extra={"expiry": expiry.isoformat(), "schedule": definition.id},
        )
        launched, plan = launch(snapshot, campaign=campaign, store=self._campaigns,
                                actor=_EnqueueOnce(self._actor, self._client),
                                events=self._events,
                                batch_size=self._batch_size, now=now)
        return Started(launched.campaign_id, plan.treated, len(plan.held_out),
                       len(plan.batches))


class RecordingStarter:
    """A starter that launches nothing and records what it was asked to start (the in-memory
    implementation beside ``LaunchStarter``: dry runs, tests and the bench)."""

    def __init__(self) -> None:
        self.templates = 0
        self.started: dict[str, list[str]] = {}  # campaign id -> member ids, in start order
        self.starts: list[str] = []  # every start call, repeats included

    def prepare(self, definition: Definition, *, audience_size: int) -> str:
        """A made-up template id."""
        self.templates += 1
        return f"dry{self.templates}"

    def start(self, definition: Definition, *, campaign_id: str, template_id: str,
              snapshot: pd.DataFrame, now: dt.datetime) -> Started:
        """Record the members; the holdout split is the planner's."""
        ids = snapshot["member_id"].astype(str)
        held = holdout_mask(ids, campaign_id=campaign_id,
                            permille=definition.holdout_permille)
        self.started[campaign_id] = ids.tolist()
        self.starts.append(campaign_id)
        return Started(campaign_id, int((~held).sum()), int(held.sum()), 0)
