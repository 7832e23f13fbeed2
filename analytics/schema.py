"""The ClickHouse schema, versioned: ``migrate`` applies what a database lacks, once.

Every statement keeps to SQL that Debian's clickhouse-server 18.16 and chDB (ClickHouse 26)
both accept: no LowCardinality, no Nullable, no DateTime64, no SimpleAggregateFunction, no
``ADD COLUMN IF NOT EXISTS`` (a column step looks at ``system.columns`` first). One step runs on
chDB only: the inbox of chDB's loader (18.16 cannot read its Array(Tuple) column; a server's
loader does not use it). Applied versions are rows of ``schema_migrations``; a step that ran but
was not recorded (a crash between the two) is safe to run again because each step checks or uses
``IF NOT EXISTS``, and the one that copies rows (``campaign_members``) copies states that give
the same answer however often they are copied.

ReplacingMergeTree collapses rows loaded twice when parts merge; the loader does not load twice
(see ``analytics.loader``), and the ROI queries still read one row per ``event_id``, so a row
inserted by hand twice is not counted twice either; ``campaign_members`` keeps only states that
a second copy leaves unchanged. Sorting keys start with the merchant and the column the ROI
queries filter on (campaign for events and campaign_members, member for orders); partitions are
months, so old months can be dropped whole. docs/analytics.md describes every column.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from analytics.events import COLUMNS
from analytics.flags import FLAG, TARGETED
from infra.clickhouse import ClickHouse

EVENTS_TABLE = "events"
EVENTS_INBOX = "events_inbox"
ORDERS_TABLE = "orders"
CAMPAIGNS_TABLE = "campaigns"
TEMPLATES_TABLE = "templates"
CAMPAIGN_MEMBERS_TABLE = "campaign_members"
MIGRATIONS_TABLE = "schema_migrations"

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

ORDERS_DDL = f"""
CREATE TABLE IF NOT EXISTS {ORDERS_TABLE} (
    merchant_id String,
    member_id String,
    store_id String,
    order_id String,
    ts DateTime('UTC'),
    amount_fen Int64,
    paid_channel String,
    category String,
    sku String,
    source String
) ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMM(ts)
ORDER BY (merchant_id, member_id, ts, order_id)
"""

CAMPAIGNS_DDL = f"""
CREATE TABLE IF NOT EXISTS {CAMPAIGNS_TABLE} (
    merchant_id String,
    campaign_id String,
    name String,
    template_id String,
    channels String,
    holdout_permille UInt16,
    created_at String,
    updated_at DateTime('UTC')
) ENGINE = ReplacingMergeTree(updated_at)
ORDER BY (merchant_id, campaign_id)
"""

TEMPLATES_DDL = f"""
CREATE TABLE IF NOT EXISTS {TEMPLATES_TABLE} (
    merchant_id String,
    template_id String,
    name String,
    kind String,
    updated_at DateTime('UTC')
) ENGINE = ReplacingMergeTree(updated_at)
ORDER BY (merchant_id, template_id)
"""

MIGRATIONS_DDL = f"""
CREATE TABLE IF NOT EXISTS {MIGRATIONS_TABLE} (
    version UInt32,
    name String,
    applied_at DateTime('UTC')
) ENGINE = MergeTree()
ORDER BY version
"""


# The types of the event fields in an encoded stream entry (``ts`` is epoch milliseconds there).
_ENTRY_TYPES = {"amount_fen": "Int64", "discount_fen": "Int64", "cost_fen": "Int64",
                "ts": "Int64"}
_ENTRY_ROW = ", ".join(_ENTRY_TYPES.get(column, "String") for column in COLUMNS)

# chDB's loader hands ClickHouse stream entries as they are (one row per entry: its id and its
# array of event rows); the view unpacks them into ``events``, and the Null table keeps nothing.
# 18.16 cannot read Array(Tuple) columns, and a server's loader sends native columns instead, so
# only chDB gets these two.
EVENTS_INBOX_DDL = f"""
CREATE TABLE IF NOT EXISTS {EVENTS_INBOX} (
    stream_id String,
    rows Array(Tuple({_ENTRY_ROW}))
) ENGINE = Null
"""
_UNPACK = ",\n    ".join(
    f"toDateTime(intDiv(tupleElement(r, {i}), 1000), 'UTC') AS {column}" if column == "ts"
    else f"tupleElement(r, {i}) AS {column}" for i, column in enumerate(COLUMNS, start=1))
EVENTS_INBOX_VIEW_DDL = f"""
CREATE MATERIALIZED VIEW IF NOT EXISTS {EVENTS_INBOX}_load TO {EVENTS_TABLE} AS
SELECT
    {_UNPACK},
    stream_id
FROM {EVENTS_INBOX}
ARRAY JOIN rows AS r
"""


# The ROI report's view of a campaign's members: per (merchant, campaign, member, month of the
# events) the member's funnel bits OR-ed (``analytics.flags``) and the first time the campaign
# targeted them, kept up by a materialized view on ``events``, so the report reads about one row
# per member instead of every event. Only states that a second copy of an event leaves unchanged
# (OR, min) are kept: a row the loader stores again after a crash, a copy ``events`` has not
# merged away yet, or a copy that runs twice changes nothing. Money and counts (redemptions,
# refunds) stay in ``events``, read once per event id. Partitions are the months of ``events``:
# drop a month from both.
NEVER = "toDateTime(4294967295, 'UTC')"  # targeted_at of a member never targeted (2106-02-07)
CAMPAIGN_MEMBERS_DDL = f"""
CREATE TABLE IF NOT EXISTS {CAMPAIGN_MEMBERS_TABLE} (
    merchant_id String,
    campaign_id String,
    member_id String,
    month UInt32,
    flags AggregateFunction(groupBitOr, UInt16),
    targeted_at AggregateFunction(min, DateTime('UTC'))
) ENGINE = AggregatingMergeTree()
PARTITION BY month
ORDER BY (merchant_id, campaign_id, member_id)
"""
_KEY = "merchant_id, campaign_id, member_id, toUInt32(toYYYYMM(ts)) AS month"
_CAMPAIGN_EVENTS = f"FROM {EVENTS_TABLE} WHERE campaign_id != '' AND member_id != ''"
_TARGETED_AT = f"if({TARGETED}, ts, {NEVER})"

# The view writes one row of states per event, not a GROUP BY of each insert: measured cheaper
# for the loader (about half the added CPU per event), and the table's merges combine the rows.
CAMPAIGN_MEMBERS_VIEW_DDL = f"""
CREATE MATERIALIZED VIEW IF NOT EXISTS {CAMPAIGN_MEMBERS_TABLE}_load
TO {CAMPAIGN_MEMBERS_TABLE} AS
SELECT {_KEY},
    arrayReduce('groupBitOrState', [{FLAG}]) AS flags,
    arrayReduce('minState', [{_TARGETED_AT}]) AS targeted_at
{_CAMPAIGN_EVENTS}
"""


def copy_campaign_members(ch: ClickHouse, where: str) -> None:
    """Write the ``campaign_members`` states of the stored events that ``where`` (an SQL
    condition on ``events``) selects, one row per member and month; again is harmless."""
    ch.execute(f"""
INSERT INTO {CAMPAIGN_MEMBERS_TABLE}
    (merchant_id, campaign_id, member_id, month, flags, targeted_at)
SELECT {_KEY}, groupBitOrState({FLAG}) AS flags, minState({_TARGETED_AT}) AS targeted_at
{_CAMPAIGN_EVENTS} AND ({where})
GROUP BY merchant_id, campaign_id, member_id, month""")


def _campaign_members(ch: ClickHouse) -> None:
    ch.execute(CAMPAIGN_MEMBERS_DDL)
    # The view first, then the copy of what is already stored: an event loaded in between goes
    # into the table twice, which changes nothing; the other order could miss it.
    ch.execute(CAMPAIGN_MEMBERS_VIEW_DDL)
    # a month at a time, so the copy's memory is bounded by one month's members
    for (month,) in ch.query(f"SELECT DISTINCT toYYYYMM(ts) FROM {EVENTS_TABLE}"):
        copy_campaign_members(ch, f"toYYYYMM(ts) = {int(month)}")


def _add_column(table: str, column: str, ddl_type: str, after: str) -> Callable[[ClickHouse], None]:
    def step(ch: ClickHouse) -> None:
        if not has_column(ch, table, column):
            ch.execute(f"ALTER TABLE {table} ADD COLUMN {column} {ddl_type} AFTER {after}")

    return step


def _statement(sql: str) -> Callable[[ClickHouse], None]:
    def step(ch: ClickHouse) -> None:
        ch.execute(sql)

    return step


def _chdb_statements(*sqls: str) -> Callable[[ClickHouse], None]:
    def step(ch: ClickHouse) -> None:
        if ch.kind == "chdb":
            for sql in sqls:
                ch.execute(sql)

    return step


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    apply: Callable[[ClickHouse], None]


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "events", _statement(EVENTS_DDL)),
    # the stream entry an event arrived in: how a restarted loader sees what it already stored
    Migration(2, "events.stream_id", _add_column(EVENTS_TABLE, "stream_id", "String", "ts")),
    Migration(3, "orders", _statement(ORDERS_DDL)),
    Migration(4, "campaigns", _statement(CAMPAIGNS_DDL)),
    Migration(5, "templates", _statement(TEMPLATES_DDL)),
    # chDB's loader: entries in as they are stored in Redis (see EVENTS_INBOX_DDL)
    Migration(6, "events_inbox", _chdb_statements(EVENTS_INBOX_DDL, EVENTS_INBOX_VIEW_DDL)),
    # the ROI report's per-member funnel, kept up from events (see CAMPAIGN_MEMBERS_DDL)
    Migration(7, "campaign_members", _campaign_members),
)
LATEST = MIGRATIONS[-1].version


def has_column(ch: ClickHouse, table: str, column: str) -> bool:
    rows = ch.query(
        "SELECT count() FROM system.columns WHERE database = currentDatabase() "
        f"AND table = '{table}' AND name = '{column}'"
    )
    return bool(rows and int(rows[0][0]))


def applied_versions(ch: ClickHouse) -> set[int]:
    ch.execute(MIGRATIONS_DDL)
    return {int(row[0]) for row in ch.query(f"SELECT DISTINCT version FROM {MIGRATIONS_TABLE}")}


def migrate(ch: ClickHouse) -> list[Migration]:
    """Apply the migrations this database lacks, in order; returns the ones applied now."""
    done = applied_versions(ch)
    applied = []
    for migration in MIGRATIONS:
        if migration.version in done:
            continue
        migration.apply(ch)
        ch.insert(MIGRATIONS_TABLE, ("version", "name", "applied_at"),
                  [(migration.version, migration.name, _now())])
        applied.append(migration)
    return applied


def ensure_schema(ch: ClickHouse) -> None:
    """The schema at its latest version (idempotent; cheap when nothing is missing)."""
    migrate(ch)


def _now() -> object:
    from datetime import UTC, datetime

    return datetime.now(UTC).replace(microsecond=0)


assert COLUMNS[-1] == "ts", "the loader relies on ts being the last event field"
