"""Did the campaign pay? The ROI report of one campaign or all, overall or ``by`` a dimension.

For each campaign: its start is its first issued/held_out/failed event; the attribution window
runs ``attribution_days`` from there, the pre-campaign period ``pre_days`` before it. Treated
members are everyone the campaign targeted (issued, or tried and failed: intent to treat, so a
failed send dilutes the uplift instead of biasing it); the held-out members are the control.
Each member's revenue is the sum of their orders in the window (0 without orders); the uplift
per member and its interval come from ``analytics.uplift``. Costs are the coupon discounts
actually given (net of refunds) and the messages sent or in doubt times the configured price of
their channel. ROI = (incremental revenue × margin − costs) / costs, with the interval's ends
carried through the same formula.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from analytics.errors import UnknownCampaign
from analytics.flags import SEND_CHANNELS
from analytics.queries import (
    CAMPAIGN_NAMES,
    CAMPAIGN_WINDOWS,
    CELL_SUMS,
    DIMENSIONS,
    bind,
    placeholders,
    roi_cells_sql,
)
from analytics.schema import EVENTS_TABLE, ORDERS_TABLE
from analytics.uplift import METHOD, Moments, Uplift, welch_cuped
from infra.clickhouse import ClickHouse
from infra.settings import Settings

BY = tuple(DIMENSIONS)
HISTORY_DAYS = 365  # how far back a member's last order counts for the RFM segment


@dataclass(frozen=True)
class RoiConfig:
    margin_permille: int = 300  # gross margin on incremental revenue
    attribution_days: int = 14
    pre_days: int = 28  # pre-campaign spend, the CUPED covariate
    min_holdout: int = 100  # fewer held-out members: no interval, a note instead
    send_price_fen: Mapping[str, int] = field(
        default_factory=lambda: {"sms": 5, "wechat": 0, "alipay": 0})
    timezone: str = "Asia/Shanghai"


@dataclass(frozen=True)
class Funnel:
    members: int
    issued: int
    sent: int
    delivered: int
    failed_send: int  # the provider refused or failed the message
    unreachable: int  # no channel could reach the member
    not_issued: int  # the coupon was not issued (sold out, budget, ...)
    in_doubt: int  # a provider call whose outcome is unknown (never resent)
    redeemers: int
    uses: int  # redemptions net of refunds
    redeem_days: float  # summed over redeemers
    coupon_cost_fen: int
    revenue_fen: int
    messages: Mapping[str, int]  # channel -> messages sent or in doubt


@dataclass(frozen=True)
class RoiRow:
    campaign_id: str
    campaign_name: str
    template_id: str
    by: str
    value: str
    treated: Funnel
    held: Funnel
    treated_moments: Moments
    held_moments: Moments
    send_cost_fen: int
    uplift: Uplift | None
    note: str  # why there is no interval ('' when there is one)
    margin_permille: int

    @property
    def coupon_cost_fen(self) -> int:
        return self.treated.coupon_cost_fen + self.held.coupon_cost_fen

    @property
    def cost_fen(self) -> int:
        return self.coupon_cost_fen + self.send_cost_fen

    def incremental_revenue(self, per_member: float) -> int:
        return round(per_member * self.treated.members)

    def roi(self, per_member: float) -> float | None:
        if not self.cost_fen:
            return None
        margin = self.incremental_revenue(per_member) * self.margin_permille / 1000
        return (margin - self.cost_fen) / self.cost_fen


@dataclass(frozen=True)
class CampaignReport:
    campaign_id: str
    name: str
    template_id: str
    start: datetime
    end: datetime
    pre_start: datetime
    rows: list[RoiRow]
    movement: list[tuple[str, str, str, int]]  # group, segment before, after, members


def _funnel(row: Sequence[Any] | None) -> Funnel:
    if row is None:
        return Funnel(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0.0, 0, 0, {c: 0 for c in SEND_CHANNELS})
    v = list(row)
    return Funnel(
        members=int(v[2]), issued=int(v[3]), sent=int(v[4]), delivered=int(v[5]),
        failed_send=int(v[6]), unreachable=int(v[7]), not_issued=int(v[8]), in_doubt=int(v[9]),
        redeemers=int(v[10]), uses=int(v[11]), redeem_days=float(v[12]),
        coupon_cost_fen=int(v[13]), revenue_fen=int(v[14]),
        messages={c: int(v[19 + i]) for i, c in enumerate(SEND_CHANNELS)})


def _moments(row: Sequence[Any] | None) -> Moments:
    if row is None:
        return Moments(0, 0.0, 0.0, 0.0, 0.0, 0.0)
    return Moments(int(row[2]), *(float(row[i]) for i in range(14, 19)))


def _when(epoch: int) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


def campaign_windows(ch: ClickHouse, merchant_id: str) -> dict[str, int]:
    return {str(r[0]): int(r[1]) for r in CAMPAIGN_WINDOWS.run(ch, merchant=merchant_id)}


def roi_report(
    ch: ClickHouse, *, merchant_id: str, campaign_id: str | None = None, by: str = "campaign",
    config: RoiConfig | None = None,
) -> list[CampaignReport]:
    """The report of one campaign (``UnknownCampaign`` when it has no events) or of all."""
    if by not in DIMENSIONS:
        raise ValueError(f"by must be one of {', '.join(BY)}")
    config = config or RoiConfig()
    starts = campaign_windows(ch, merchant_id)
    if campaign_id is not None and campaign_id not in starts:
        raise UnknownCampaign(campaign_id)
    names = {str(r[0]): (str(r[1]), str(r[2]))
             for r in CAMPAIGN_NAMES.run(ch, merchant=merchant_id)}
    wanted = [campaign_id] if campaign_id is not None else sorted(starts)
    return [_campaign(ch, merchant_id, cid, _when(starts[cid]), names.get(cid, ("", "")), by,
                      config) for cid in wanted]


def _campaign(ch: ClickHouse, merchant_id: str, campaign_id: str, start: datetime,
              name: tuple[str, str], by: str, config: RoiConfig) -> CampaignReport:
    end = start + timedelta(days=config.attribution_days)
    params: dict[str, Any] = {
        "merchant": merchant_id, "campaign": campaign_id, "start": start, "end": end,
        "pre_start": start - timedelta(days=config.pre_days),
        "history_start": start - timedelta(days=HISTORY_DAYS), "tz": config.timezone}
    cells = _query(ch, roi_cells_sql(by, members_only=_few_members(ch, params)), params)
    rows, movement = _fold(cells)
    treated = {str(r[0]): r for r in rows if not int(r[1])}
    held = {str(r[0]): r for r in rows if int(r[1])}
    report_rows = []
    for value in sorted(set(treated) | set(held)):
        if by == "channel" and value == "":
            continue  # held-out members have no channel: they are every channel's control
        control = held.get("") if by == "channel" else held.get(value)
        label = name[1] if by == "template" else value
        report_rows.append(_row(campaign_id, name, by, label, treated.get(value), control,
                                config))
    return CampaignReport(campaign_id, name[0], name[1], start, end, params["pre_start"],
                          report_rows, movement)


def _few_members(ch: ClickHouse, params: Mapping[str, Any]) -> bool:
    """Whether the campaign is small against the merchant's orders in its history window, so
    that filtering those orders by its members first pays for building the set."""
    sql = (f"SELECT (SELECT count() FROM {EVENTS_TABLE} WHERE merchant_id = {{merchant:String}} "
           "AND campaign_id = {campaign:String}) * 4 < (SELECT count() FROM "
           f"{ORDERS_TABLE} WHERE merchant_id = {{merchant:String}} "
           "AND ts >= {history_start:DateTime} AND ts < {end:DateTime})")
    return bool(int(_query(ch, sql, params)[0][0]))


def _query(ch: ClickHouse, sql: str, params: Mapping[str, Any]) -> list[tuple[Any, ...]]:
    """``sql`` with the report's parameters that it uses."""
    used = placeholders(sql)
    return ch.query(bind(sql, {k: v for k, v in params.items() if k in used}))


Movement = list[tuple[str, str, str, int]]  # group, segment before, after, members


def _fold(cells: Sequence[Sequence[Any]]) -> tuple[list[list[Any]], Movement]:
    """The cells of ``roi_cells_sql`` as the report's rows (dim, held, then ``CELL_SUMS`` with
    days to redeem) and its movement table (group, segment before, after, members)."""
    groups: dict[tuple[str, int], list[int]] = {}
    moves: dict[tuple[int, str, str], int] = {}
    for cell in cells:
        dim, held, before, after = str(cell[0]), int(cell[1]), str(cell[2]), str(cell[3])
        sums = [int(v) for v in cell[4:]]
        total = groups.setdefault((dim, held), [0] * len(sums))
        for i, v in enumerate(sums):
            total[i] += v
        moves[held, before, after] = moves.get((held, before, after), 0) + sums[0]
    days = [name for name, _ in CELL_SUMS].index("redeem_seconds")
    rows = [[dim, held, *sums[:days], sums[days] / 86400, *sums[days + 1:]]
            for (dim, held), sums in sorted(groups.items())]
    movement = [("held_out" if held else "treated", before, after, n)
                for (held, before, after), n in sorted(moves.items())]
    return rows, movement


def _row(campaign_id: str, name: tuple[str, str], by: str, value: str,
         treated_row: Sequence[Any] | None, held_row: Sequence[Any] | None,
         config: RoiConfig) -> RoiRow:
    treated, held = _funnel(treated_row), _funnel(held_row)
    t_moments, h_moments = _moments(treated_row), _moments(held_row)
    send_cost = sum(n * config.send_price_fen.get(c, 0) for c, n in treated.messages.items())
    uplift: Uplift | None = None
    note = ""
    if h_moments.n < config.min_holdout:
        note = f"holdout_too_small:{h_moments.n}:{config.min_holdout}"
    elif t_moments.n < 2:
        note = f"treated_too_small:{t_moments.n}:2"
    else:
        uplift = welch_cuped(t_moments, h_moments)
    return RoiRow(campaign_id, name[0], name[1], by, value, treated, held, t_moments,
                  h_moments, send_cost, uplift, note, config.margin_permille)


def report_json(reports: Sequence[CampaignReport], *, config: RoiConfig) -> dict[str, Any]:
    """The report as plain JSON values (the API's and ``--format json``'s shape)."""
    return {
        "method": METHOD,
        "confidence": 0.95,
        "attribution_days": config.attribution_days,
        "pre_days": config.pre_days,
        "margin_permille": config.margin_permille,
        "send_price_fen": dict(config.send_price_fen),
        "campaigns": [{
            "campaign_id": r.campaign_id, "name": r.name, "template_id": r.template_id,
            "start": r.start.isoformat(), "end": r.end.isoformat(),
            "pre_start": r.pre_start.isoformat(),
            "rows": [row_json(row) for row in r.rows],
            "movement": [{"group": g, "before": b, "after": a, "members": n}
                         for g, b, a, n in r.movement],
        } for r in reports],
    }


def row_json(row: RoiRow) -> dict[str, Any]:
    t, h, u = row.treated, row.held, row.uplift
    return {
        "by": row.by, "value": row.value,
        "targeted": t.members, "held_out": h.members, "issued": t.issued, "sent": t.sent,
        "delivered": t.delivered, "failed_send": t.failed_send, "unreachable": t.unreachable,
        "not_issued": t.not_issued, "in_doubt": t.in_doubt, "redeemed": t.redeemers,
        "uses": t.uses,
        "redemption_rate": round(t.redeemers / t.issued, 4) if t.issued else None,
        "days_to_redeem": round(t.redeem_days / t.redeemers, 2) if t.redeemers else None,
        "messages": dict(t.messages),
        "coupon_cost_fen": row.coupon_cost_fen, "send_cost_fen": row.send_cost_fen,
        "cost_fen": row.cost_fen,
        "revenue_per_treated_fen": _mean(row.treated_moments),
        "revenue_per_held_fen": _mean(row.held_moments),
        "uplift_per_member_fen": None if u is None else round(u.per_member, 2),
        "incremental_revenue_fen": None if u is None else row.incremental_revenue(u.per_member),
        "incremental_revenue_low_fen": None if u is None else row.incremental_revenue(u.low),
        "incremental_revenue_high_fen": None if u is None else row.incremental_revenue(u.high),
        "roi": None if u is None else _round(row.roi(u.per_member)),
        "roi_low": None if u is None else _round(row.roi(u.low)),
        "roi_high": None if u is None else _round(row.roi(u.high)),
        "cuped_theta": None if u is None else round(u.theta, 4),
        "variance_reduction": None if u is None else round(u.variance_reduction, 4),
        "note": row.note,
    }


def _mean(m: Moments) -> int:
    return round(m.y / m.n) if m.n else 0


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def roi_config(settings: Settings, *, send_price_fen: Mapping[str, int]) -> RoiConfig:
    """The report's configuration from settings (margin, windows, timezone) and the price per
    message of each channel (the dispatcher's, ``QUANPAI_CHANNEL_PRICES``)."""
    a = settings.analytics
    return RoiConfig(
        margin_permille=a.margin_permille, attribution_days=a.attribution_days,
        pre_days=a.pre_days, min_holdout=a.min_holdout, send_price_fen=dict(send_price_fen),
        timezone=settings.timezone.key)
