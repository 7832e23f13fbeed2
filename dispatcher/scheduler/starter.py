"""How a scheduled run becomes a campaign: the ``CampaignStarter`` interface, the starter that
goes through the campaign launch (``dispatcher.launch``: the same checks, template, plan, held-out
events and queue as ``quanpai campaign run``), and an in-memory one for dry runs and tests.

The campaign id is the run id (``bday-2026-12-03``), so starting the same run again after a
crash plans the same batches for the same members (the holdout hash is keyed by the campaign),
and batches already on the queue are not put there again (``{cmp:<id>}:enqueued``, written
right after each send): two copies of one batch in the hands of two worker threads at once
could both send before either records it. The template is created once per run and its id kept
in the run record before launching.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace
from typing import Any, Protocol

import pandas as pd
import redis

from catalog.templates import save_template
from dispatcher.launch import LaunchDeps, enqueue, prepare
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

    def prepare(self, definition: Definition, *, snapshot: pd.DataFrame,
                now: dt.datetime) -> str:
        """Check the campaign and create its coupon template; returns the template id."""

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
    """Starts runs through the campaign launch onto the Dramatiq queue."""

    def __init__(self, *, deps: LaunchDeps) -> None:
        self._deps = deps
        self._once = replace(deps, actor=_EnqueueOnce(deps.actor, deps.client))

    def prepare(self, definition: Definition, *, snapshot: pd.DataFrame,
                now: dt.datetime) -> str:
        """Check the run's campaign (content, channels, coupon) and save its template."""
        prepared = prepare(definition.campaign, snapshot, deps=self._deps, now=now)
        if prepared.template is None:  # coupon.template_id: an existing template
            return prepared.campaign.template_id
        return save_template(self._deps.client, prepared.template)

    def start(self, definition: Definition, *, campaign_id: str, template_id: str,
              snapshot: pd.DataFrame, now: dt.datetime) -> Started:
        """Launch the campaign under the run's id with the run's template."""
        prepared = prepare(definition.campaign, snapshot, deps=self._deps, now=now)
        local_day = now.astimezone(definition.timezone).date()
        campaign = replace(
            prepared.campaign, campaign_id=campaign_id, template_id=template_id,
            name=f"{definition.name} {local_day.isoformat()}",
            extra={**prepared.campaign.extra, "schedule": definition.id},
        )
        launched, plan = enqueue(prepared.members, campaign=campaign, deps=self._once, now=now)
        return Started(launched.campaign_id, plan.treated, len(plan.held_out),
                       len(plan.batches))


class RecordingStarter:
    """A starter that launches nothing and records what it was asked to start (the in-memory
    implementation beside ``LaunchStarter``: dry runs, tests and the bench)."""

    def __init__(self) -> None:
        self.templates = 0
        self.started: dict[str, list[str]] = {}  # campaign id -> member ids, in start order
        self.starts: list[str] = []  # every start call, repeats included

    def prepare(self, definition: Definition, *, snapshot: pd.DataFrame,
                now: dt.datetime) -> str:
        """A made-up template id."""
        self.templates += 1
        return f"dry{self.templates}"

    def start(self, definition: Definition, *, campaign_id: str, template_id: str,
              snapshot: pd.DataFrame, now: dt.datetime) -> Started:
        """Record the members; the holdout split is the planner's."""
        ids = snapshot["member_id"].astype(str)
        held = holdout_mask(ids, campaign_id=campaign_id,
                            permille=definition.campaign.holdout_permille)
        self.started[campaign_id] = ids.tolist()
        self.starts.append(campaign_id)
        return Started(campaign_id, int((~held).sum()), int(held.sum()), 0)
