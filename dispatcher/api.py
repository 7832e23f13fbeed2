"""``/v1/campaigns``: create, list, status, run, pause, resume, cancel and requeue campaigns over
HTTP (role ``operator``), the same operations as ``quanpai campaign``.

The request body of ``POST /v1/campaigns`` is a campaign definition as JSON. Its model below
only gives the document its shape (for OpenAPI); the rules are those of
``dispatcher.definition.parse_definition``, the one validator the YAML files go through too, so
a 422 names the same field either way. Handlers run their Redis and file work in a thread: a
launch reads the audience and enqueues every batch.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import msgspec
from aiohttp import web
from msgspec import Meta

from dispatcher.definition import parse_definition
from dispatcher.errors import CampaignError, CampaignStateError, DefinitionError
from dispatcher.launch import LaunchDeps
from dispatcher.operations import (
    create_draft,
    launch_draft,
    requeue,
    status_document,
    steer,
)
from infra.errors import InvalidInput, NotFound, Refused
from infra.http_api import Route, add_routes, principal, respond
from infra.tokens import Role

LAUNCH = web.AppKey("campaign_launch", LaunchDeps)
CampaignId = Annotated[str, Meta(min_length=1, max_length=64, pattern=r"^[0-9A-Za-z_-]+$")]


class CampaignIn(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True, kw_only=True):
    """A campaign definition (see docs/campaigns.md in ``quanpai campaign create``)."""

    name: Annotated[str, Meta(min_length=1, max_length=64)]
    audience: dict[str, str]  # {snapshot: dir, segment?} or {rules: file, segment}
    coupon: dict[str, Any] | None = None  # threshold_fen, discount_fen, valid_days, title,
    # template_id
    channels: list[str] | str | None = None  # in order, or "auto"
    content: dict[str, str] | None = None  # store, link, value
    holdout_permille: Annotated[int, Meta(ge=0, le=500)] = 0
    start_at: str | None = None  # ISO time with offset
    budget: dict[str, int] | None = None  # max_coupons, max_cost_fen
    frequency_cap: dict[str, int] | None = None  # messages, days
    send_rate_per_s: Annotated[int, Meta(ge=1)] | None = None


class CampaignOut(msgspec.Struct):
    campaign_id: str
    status: str


class ChannelCounts(msgspec.Struct, omit_defaults=True):
    planned: int = 0
    sent: int = 0
    failed: int = 0
    in_doubt: int = 0
    delivered: int = 0  # delivery receipts so far
    undelivered: int = 0


class CampaignStatus(msgspec.Struct):
    campaign_id: str
    name: str
    status: str
    total_batches: int
    batches_done: int
    total_members: int
    processed: int
    held_out: int
    issued: int
    channels: dict[str, ChannelCounts]
    deferred: dict[str, dict[str, str]]
    dead_letters: dict[str, dict[str, Any]]


class CampaignSummary(msgspec.Struct):
    campaign_id: str
    name: str
    status: str
    total_members: int
    processed: int


class CampaignList(msgspec.Struct):
    campaigns: list[CampaignSummary]


class RequeueOut(msgspec.Struct):
    campaign_id: str
    batches: int


def _deps(request: web.Request) -> LaunchDeps:
    return request.app[LAUNCH]


def _campaign_of(request: web.Request) -> str:
    """The path's campaign, 404 unless it exists and belongs to the caller's merchant."""
    campaign_id = request.match_info["campaign_id"]
    try:
        campaign = _deps(request).store.get(campaign_id)
    except CampaignError:
        raise NotFound(f"campaign {campaign_id} does not exist") from None
    if campaign.merchant_id != principal(request).merchant_id:
        raise NotFound(f"campaign {campaign_id} does not exist")
    return campaign_id


def _translate(exc: CampaignError) -> Exception:
    if isinstance(exc, DefinitionError):
        return InvalidInput(exc.field, exc.message)
    if isinstance(exc, CampaignStateError):
        return Refused("wrong_state", str(exc))
    return InvalidInput("campaign", str(exc))


async def create_campaign(request: web.Request, body: CampaignIn) -> web.Response:
    deps = _deps(request)
    # The campaign belongs to the caller's merchant; relative audience paths are the
    # server's (where snapshots are written).
    data = {**msgspec.to_builtins(body), "merchant_id": principal(request).merchant_id}
    try:
        definition = parse_definition(data, base=Path("."))
        campaign_id = await asyncio.to_thread(create_draft, definition, deps=deps,
                                              now=datetime.now(UTC))
    except CampaignError as exc:
        raise _translate(exc) from None
    return respond(CampaignOut(campaign_id=campaign_id, status="draft"), status=201)


async def list_campaigns(request: web.Request) -> web.Response:
    deps = _deps(request)
    merchant = principal(request).merchant_id

    def read() -> list[CampaignSummary]:
        out = []
        for campaign_id in deps.store.list_ids():
            campaign = deps.store.get(campaign_id)
            if campaign.merchant_id == merchant:
                out.append(CampaignSummary(
                    campaign_id=campaign_id, name=campaign.name, status=campaign.status,
                    total_members=campaign.total_members,
                    processed=deps.store.progress(campaign_id).members_processed))
        return out

    return respond(CampaignList(campaigns=await asyncio.to_thread(read)))


async def get_campaign(request: web.Request) -> web.Response:
    campaign_id = _campaign_of(request)
    document = await asyncio.to_thread(status_document, _deps(request).store, campaign_id)
    return respond(msgspec.convert(document, CampaignStatus))


async def run_campaign(request: web.Request) -> web.Response:
    campaign_id = _campaign_of(request)
    deps = _deps(request)
    try:
        await asyncio.to_thread(launch_draft, campaign_id, deps=deps, now=datetime.now(UTC))
    except CampaignError as exc:
        raise _translate(exc) from None
    return respond(CampaignOut(campaign_id=campaign_id,
                               status=deps.store.status(campaign_id)))


def _steering(operation: str) -> Any:
    async def handler(request: web.Request) -> web.Response:
        campaign_id = _campaign_of(request)
        try:
            state = steer(_deps(request).store, campaign_id, operation)
        except CampaignError as exc:
            raise _translate(exc) from None
        return respond(CampaignOut(campaign_id=campaign_id, status=state))

    handler.__name__ = f"{operation}_campaign"
    return handler


async def requeue_campaign(request: web.Request) -> web.Response:
    campaign_id = _campaign_of(request)
    try:
        batches = await asyncio.to_thread(requeue, campaign_id, deps=_deps(request))
    except CampaignError as exc:
        raise _translate(exc) from None
    return respond(RequeueOut(campaign_id=campaign_id, batches=batches))


_ID = {"campaign_id": CampaignId}
_OPERATOR: tuple[Role, ...] = ("operator",)
ROUTES = [
    Route("POST", "/v1/campaigns", create_campaign,
          "Check a campaign definition and keep it as a draft", _OPERATOR, CampaignIn,
          {201: CampaignOut}, tags=("campaigns",)),
    Route("GET", "/v1/campaigns", list_campaigns, "The merchant's campaigns, newest first",
          _OPERATOR, responses={200: CampaignList}, tags=("campaigns",)),
    Route("GET", "/v1/campaigns/{campaign_id}", get_campaign,
          "State, progress and per-channel counts (planned, sent, failed, in doubt), "
          "deferrals and dead letters", _OPERATOR, responses={200: CampaignStatus},
          path_params=_ID, tags=("campaigns",)),
    Route("POST", "/v1/campaigns/{campaign_id}/run", run_campaign,
          "Launch a draft: audience read, checked, batches queued", _OPERATOR,
          responses={200: CampaignOut}, path_params=_ID, tags=("campaigns",)),
    *(Route("POST", f"/v1/campaigns/{{campaign_id}}/{op}", _steering(op), text, _OPERATOR,
            responses={200: CampaignOut}, path_params=_ID, tags=("campaigns",))
      for op, text in (("pause", "Pause (workers hold their next provider call within 2 s)"),
                       ("resume", "Resume a paused campaign"),
                       ("cancel", "Cancel: queued batches send nothing"))),
    Route("POST", "/v1/campaigns/{campaign_id}/requeue", requeue_campaign,
          "Run the dead-lettered batches again", _OPERATOR, responses={200: RequeueOut},
          path_params=_ID, tags=("campaigns",)),
]


def add_campaign_routes(app: web.Application, *, launch: LaunchDeps) -> None:
    """Mount ``/v1/campaigns``; ``launch`` is built by the composition root."""
    app[LAUNCH] = launch
    add_routes(app, ROUTES)
