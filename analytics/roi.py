"""Campaign ROI from the events table, the same SQL on chDB and on a ClickHouse server.

Each event counts once: the inner query keeps one row per ``event_id`` (rows loaded twice after a
loader retry collapse here). Members are counted distinct per event type; money is summed in fen.
"""

from __future__ import annotations

from dataclasses import dataclass

from analytics.schema import EVENTS_TABLE
from infra.clickhouse import ClickHouse


@dataclass(frozen=True)
class CampaignRoi:
    campaign_id: str
    issued: int
    sent: int
    delivered: int
    failed: int
    held_out: int
    redeemed: int
    order_amount_fen: int
    discount_fen: int
    cost_fen: int


def _quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def roi_sql(*, merchant_id: str, campaign_id: str | None = None) -> str:
    where = f"merchant_id = {_quote(merchant_id)} AND campaign_id != ''"
    if campaign_id is not None:
        where += f" AND campaign_id = {_quote(campaign_id)}"
    return f"""
SELECT
    cid,
    uniqExactIf(mid, etype = 'issued') AS issued,
    uniqExactIf(mid, etype = 'sent') AS sent,
    uniqExactIf(mid, etype = 'delivered') AS delivered,
    uniqExactIf(mid, etype = 'failed') AS failed,
    uniqExactIf(mid, etype = 'held_out') AS held_out,
    countIf(etype = 'redeemed') - countIf(etype = 'refunded') AS redeemed,
    sumIf(amount, etype = 'redeemed') - sumIf(amount, etype = 'refunded') AS order_amount_fen,
    sumIf(discount, etype = 'redeemed') - sumIf(discount, etype = 'refunded') AS discount_fen,
    sum(cost) AS cost_fen
FROM (
    SELECT
        event_id,
        any(event_type) AS etype,
        any(campaign_id) AS cid,
        any(member_id) AS mid,
        any(amount_fen) AS amount,
        any(discount_fen) AS discount,
        any(cost_fen) AS cost
    FROM {EVENTS_TABLE}
    WHERE {where}
    GROUP BY event_id
)
GROUP BY cid
ORDER BY cid
"""


def campaign_roi(
    ch: ClickHouse, *, merchant_id: str, campaign_id: str | None = None
) -> list[CampaignRoi]:
    """ROI per campaign of ``merchant_id`` (all campaigns, or the one named)."""
    rows = ch.query(roi_sql(merchant_id=merchant_id, campaign_id=campaign_id))
    return [
        CampaignRoi(str(row[0]), *(int(value) for value in row[1:])) for row in rows
    ]
