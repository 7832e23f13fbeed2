"""Campaign counts from the events table, the same SQL on chDB and on a ClickHouse server.

Events may sit in the table twice before a merge, so the inner query keeps one row per
``event_id``. Members are counted distinct per event type; money is summed in fen. The coupon
cost is the discount of redemptions less the discount given back by refunds: a refund's
``cost_fen`` repeats the discount it returns, so summing ``cost_fen`` over both would count a
refunded coupon's cost twice. The full "did it pay?" report is ``analytics.report``.
"""

from __future__ import annotations

from dataclasses import dataclass

from analytics.queries import CAMPAIGN_COUNTS
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
    cost_fen: int  # coupon cost: discounts of redemptions, net of refunds


def campaign_roi(
    ch: ClickHouse, *, merchant_id: str, campaign_id: str | None = None
) -> list[CampaignRoi]:
    """Counts per campaign of ``merchant_id`` (all campaigns, or the one named)."""
    rows = CAMPAIGN_COUNTS.run(ch, merchant=merchant_id, campaign=campaign_id or "")
    return [
        CampaignRoi(str(row[0]), *(int(value) for value in row[1:])) for row in rows
    ]
