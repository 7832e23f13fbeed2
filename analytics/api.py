"""The ROI route of the API: ``GET /v1/campaigns/{campaign_id}/roi`` (analyst and operator).

The composition root passes a function that opens the configured ClickHouse (the server, or the
embedded chDB through the process owning it) and the report configuration; queries run in a
thread, so a slow report never blocks the event loop. The body is the same JSON as
``quanpai roi --format json`` (``analytics.report.report_json``), described here as models so
the OpenAPI document shows it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Literal

import msgspec
from aiohttp import web

from analytics.dimensions import CampaignInfo, upsert_campaigns
from analytics.report import RoiConfig, report_json, roi_report
from analytics.schema import ensure_schema
from infra.clickhouse import ClickHouse
from infra.errors import ClickHouseError, Unavailable
from infra.http_api import ErrorBody, Route, add_routes, principal, query_of, respond

By = Literal["campaign", "segment", "channel", "store", "template", "day"]
CampaignId = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]


class RoiQuery(msgspec.Struct, forbid_unknown_fields=True):
    by: By = "campaign"


class RoiRowOut(msgspec.Struct):
    """One group of a campaign: funnel, costs, revenue per member, uplift and ROI with the
    ends of their 95 % interval (null with a ``note`` when the holdout is too small)."""

    by: str
    value: str
    targeted: int
    held_out: int
    issued: int
    sent: int
    delivered: int
    failed_send: int
    unreachable: int
    not_issued: int
    in_doubt: int
    redeemed: int
    uses: int
    redemption_rate: float | None
    days_to_redeem: float | None
    messages: dict[str, int]
    coupon_cost_fen: int
    send_cost_fen: int
    cost_fen: int
    revenue_per_treated_fen: int
    revenue_per_held_fen: int
    uplift_per_member_fen: float | None
    incremental_revenue_fen: int | None
    incremental_revenue_low_fen: int | None
    incremental_revenue_high_fen: int | None
    roi: float | None
    roi_low: float | None
    roi_high: float | None
    cuped_theta: float | None
    variance_reduction: float | None
    note: str


class MovementOut(msgspec.Struct):
    group: str
    before: str
    after: str
    members: int


class CampaignRoiOut(msgspec.Struct):
    campaign_id: str
    name: str
    template_id: str
    start: str
    end: str
    pre_start: str
    rows: list[RoiRowOut]
    movement: list[MovementOut]


class RoiOut(msgspec.Struct):
    method: str
    confidence: float
    attribution_days: int
    pre_days: int
    margin_permille: int
    send_price_fen: dict[str, int]
    campaigns: list[CampaignRoiOut]


@dataclass(frozen=True)
class RoiService:
    """What the route needs, built by the composition root."""

    open_clickhouse: Callable[[], ClickHouse]
    config: RoiConfig
    campaigns: Callable[[], list[CampaignInfo]] = list  # names for the dimension


ROI_SERVICE = web.AppKey("roi_service", RoiService)


def _report(service: RoiService, merchant_id: str, campaign_id: str, by: str) -> RoiOut:
    ch = service.open_clickhouse()
    try:
        ensure_schema(ch)
        upsert_campaigns(ch, service.campaigns())
        reports = roi_report(ch, merchant_id=merchant_id, campaign_id=campaign_id, by=by,
                             config=service.config)
    finally:
        ch.close()
    return msgspec.convert(report_json(reports, config=service.config), RoiOut)


async def get_roi(request: web.Request) -> web.Response:
    """Did the campaign pay? Its ROI report, overall or by a dimension."""
    who = principal(request)
    query: RoiQuery = query_of(request, RoiQuery)
    service = request.app[ROI_SERVICE]
    try:
        out = await asyncio.get_running_loop().run_in_executor(
            None, _report, service, who.merchant_id, request.match_info["campaign_id"],
            query.by)
    except ClickHouseError as exc:
        raise Unavailable(f"ClickHouse is unavailable ({str(exc)[:200]}); retry shortly") \
            from None
    return respond(out)


ROUTES = [
    Route("GET", "/v1/campaigns/{campaign_id}/roi", get_roi,
          "Campaign ROI: holdout uplift with a 95% interval (Welch, CUPED), costs, ROI",
          roles=("analyst", "operator"), query=RoiQuery,
          responses={200: RoiOut, 404: ErrorBody, 422: ErrorBody, 503: ErrorBody},
          path_params={"campaign_id": CampaignId}, tags=("analytics",)),
]


def add_roi_routes(app: web.Application, *, service: RoiService) -> None:
    """Mount the ROI route; ``service`` is built by the composition root."""
    app[ROI_SERVICE] = service
    add_routes(app, ROUTES)
