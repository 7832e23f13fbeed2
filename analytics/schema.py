"""The ClickHouse schema of the events table.

Kept to SQL that Debian's clickhouse-server 18.16 and chDB (ClickHouse 26) both accept: no
LowCardinality, no Nullable, no DateTime64. ReplacingMergeTree collapses rows loaded twice
(same ``event_id``) when parts merge; queries still deduplicate by ``event_id`` themselves,
because merges happen whenever the server likes.
"""

from __future__ import annotations

from analytics.events import COLUMNS
from infra.clickhouse import ClickHouse

EVENTS_TABLE = "events"

EVENTS_DDL = f"""
CREATE TABLE IF NOT EXISTS {EVENTS_TABLE} (
    event_id String,
    event_type String,
    merchant_id String,
    campaign_id String,
    member_id String,
    coupon_code String,
    channel String,
    store_id String,
    order_id String,
    amount_fen Int64,
    discount_fen Int64,
    cost_fen Int64,
    reason String,
    ts DateTime('UTC')
) ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMM(ts)
ORDER BY (merchant_id, campaign_id, event_type, event_id)
"""


def ensure_schema(ch: ClickHouse) -> None:
    """Create the tables if they do not exist (idempotent)."""
    ch.execute(EVENTS_DDL)


assert COLUMNS[-1] == "ts", "the loader relies on ts being the last column"
