"""``campaign_members`` on chDB and on the 18.16 server: the migration copies what ``events``
already holds (and a second ``migrate`` changes nothing), the view keeps it up, a redelivered
batch fills what a crash left out and doubles nothing, and events stored twice (refunds
included) count once in the ROI report."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
import redis

from analytics.events import decode_events, event_row
from analytics.flags import FLAG, TARGETED
from analytics.loader import INSERT_COLUMNS, ORDER_COLUMNS, drain
from analytics.report import RoiConfig, report_json, roi_report
from analytics.schema import (
    CAMPAIGN_MEMBERS_TABLE,
    EVENTS_TABLE,
    MIGRATIONS,
    NEVER,
    ORDERS_TABLE,
    applied_versions,
    migrate,
)
from analytics.stream import RedisStreamSink, StreamReader
from analytics.synthetic import PlantedCampaign, planted_campaign
from infra.clickhouse import ClickHouse

CONFIG = RoiConfig(margin_permille=400, min_holdout=50,
                   send_price_fen={"sms": 4, "wechat": 1, "alipay": 0})
STREAM = "test:members"


@pytest.fixture(params=["chdb", "server"])
def ch(request: pytest.FixtureRequest) -> ClickHouse:
    name = "chdb_client" if request.param == "chdb" else "clickhouse_driver"
    client: ClickHouse = request.getfixturevalue(name)
    return client


def _stored_states(ch: ClickHouse) -> list[tuple[Any, ...]]:
    """Each member's bits and first targeted time as ``campaign_members`` gives them."""
    return ch.query(
        f"SELECT merchant_id, campaign_id, member_id, groupBitOrMerge(flags), "
        f"toUInt32(minMerge(targeted_at)) FROM {CAMPAIGN_MEMBERS_TABLE} "
        "GROUP BY merchant_id, campaign_id, member_id "
        "ORDER BY merchant_id, campaign_id, member_id")


def _event_states(ch: ClickHouse) -> list[tuple[Any, ...]]:
    """The same, computed from every row of ``events``."""
    return ch.query(
        f"SELECT merchant_id, campaign_id, member_id, groupBitOr({FLAG}), "
        f"toUInt32(min(if({TARGETED}, ts, {NEVER}))) FROM {EVENTS_TABLE} "
        "WHERE campaign_id != '' AND member_id != '' "
        "GROUP BY merchant_id, campaign_id, member_id "
        "ORDER BY merchant_id, campaign_id, member_id")


def _rows(campaign: PlantedCampaign) -> list[tuple[Any, ...]]:
    return [(*event_row(e), "1-0") for e in campaign.events()]


def _report(ch: ClickHouse) -> dict[str, Any]:
    return report_json(roi_report(ch, merchant_id="m1", by="channel", config=CONFIG),
                       config=CONFIG)


def _reload_through_the_view(ch: ClickHouse, rows: list[tuple[Any, ...]]) -> None:
    """Events and campaign_members emptied (schema from scratch), then ``rows`` inserted."""
    for table in (f"{CAMPAIGN_MEMBERS_TABLE}_load", CAMPAIGN_MEMBERS_TABLE, EVENTS_TABLE,
                  "schema_migrations"):
        ch.execute(f"DROP TABLE {table}")
    migrate(ch)
    ch.insert(EVENTS_TABLE, INSERT_COLUMNS, rows)


def _count(ch: ClickHouse, table: str) -> int:
    return int(ch.query(f"SELECT count() FROM {table}")[0][0])


def test_migration_copies_stored_events_once(ch: ClickHouse) -> None:
    """A database with events from before version 7: the migration copies their states (a
    member whose events span two months included), and a second migrate applies nothing."""
    campaign = planted_campaign(members=500, effect_fen=1000, seed=21,
                                start=datetime(2026, 11, 28, 2, 0, tzinfo=UTC))
    for migration in MIGRATIONS[:-1]:
        migration.apply(ch)
    rows = _rows(campaign)
    ch.insert(EVENTS_TABLE, INSERT_COLUMNS, rows)
    ch.insert(EVENTS_TABLE, INSERT_COLUMNS, rows[:40])  # copies not merged away yet
    ch.insert(ORDERS_TABLE, ORDER_COLUMNS, campaign.order_rows())
    assert [m.name for m in migrate(ch)] == [m.name for m in MIGRATIONS]
    assert applied_versions(ch) == {m.version for m in MIGRATIONS}
    states = _stored_states(ch)
    assert states == _event_states(ch)
    assert len(states) == len(campaign.member_ids)
    months = ch.query(f"SELECT DISTINCT month FROM {CAMPAIGN_MEMBERS_TABLE} ORDER BY month")
    assert [int(m[0]) for m in months] == [202611, 202612]  # redemptions run into December
    rows_before = _count(ch, CAMPAIGN_MEMBERS_TABLE)
    assert migrate(ch) == []
    assert _count(ch, CAMPAIGN_MEMBERS_TABLE) == rows_before
    # the same report as a database whose events went in through the view
    backfilled = _report(ch)
    _reload_through_the_view(ch, rows)
    assert _stored_states(ch) == states
    assert _report(ch) == backfilled


def test_events_stored_twice_count_once(ch: ClickHouse) -> None:
    """Every event inserted again (the view sees each copy): the members' states, uses, coupon
    cost net of refunds and the whole report are what one copy gives."""
    campaign = planted_campaign(members=400, effect_fen=0, seed=11, discount_fen=2000)
    assert campaign.refunded.sum() > 0
    migrate(ch)
    rows = _rows(campaign)
    ch.insert(EVENTS_TABLE, INSERT_COLUMNS, rows)
    ch.insert(ORDERS_TABLE, ORDER_COLUMNS, campaign.order_rows())
    once = _report(ch)
    states = _stored_states(ch)
    ch.insert(EVENTS_TABLE, INSERT_COLUMNS, rows)
    money = [r for r in rows if r[1] in ("redeemed", "refunded")]
    ch.insert(EVENTS_TABLE, INSERT_COLUMNS, money)  # a third copy of the money rows
    assert _stored_states(ch) == states
    assert _report(ch) == once
    [report] = roi_report(ch, merchant_id="m1", config=CONFIG)
    net = int(campaign.redeemed.sum() - campaign.refunded.sum())
    assert report.rows[0].coupon_cost_fen == net * 2000
    assert report.rows[0].treated.uses == net


def test_redelivered_batch_fills_what_a_crash_left_out(redis_client: redis.Redis,
                                                       ch: ClickHouse) -> None:
    """A loader that stored part of its batch in ``events`` and died before the view wrote
    ``campaign_members``: the entries come back, the missing events are inserted once and the
    members of the stored ones get their states; the report is the clean load's."""
    campaign = planted_campaign(members=300, effect_fen=1000, seed=5)
    events = campaign.events()
    migrate(ch)
    ch.insert(ORDERS_TABLE, ORDER_COLUMNS, campaign.order_rows())
    sink = RedisStreamSink(client=redis_client, stream=STREAM)
    for first in range(0, len(events), 100):
        sink.emit(events[first:first + 100])
    crashed = StreamReader(client=redis_client, stream=STREAM, consumer="t1")
    entries = crashed.read_entries(count=4, block_ms=0).entries
    stored = [(*event_row(e), entry.stream_id) for entry in entries[:3]
              for e in decode_events(entry.payload)[::2]]
    ch.insert(EVENTS_TABLE, INSERT_COLUMNS, stored)
    ch.execute(f"ALTER TABLE {CAMPAIGN_MEMBERS_TABLE} DROP PARTITION 202611")
    assert _stored_states(ch) != _event_states(ch)
    assert drain(reader=crashed, ch=ch) == len(events) - len(stored)
    assert redis_client.xlen(STREAM) == 0
    assert ch.query(f"SELECT count(), uniqExact(event_id) FROM {EVENTS_TABLE}") == \
        [(len(events), len(events))]
    assert _stored_states(ch) == _event_states(ch)
    assert len(_stored_states(ch)) == len(campaign.member_ids)
    crashed_report = _report(ch)
    _reload_through_the_view(ch, _rows(campaign))
    assert _report(ch) == crashed_report


def test_redelivered_batch_fully_stored_changes_nothing(redis_client: redis.Redis,
                                                        ch: ClickHouse) -> None:
    """A loader that stored its whole batch (both tables) and died before acknowledging: the
    entries come back, nothing is inserted again and the states are written again unchanged."""
    campaign = planted_campaign(members=200, effect_fen=1000, seed=9)
    events = campaign.events()
    migrate(ch)
    sink = RedisStreamSink(client=redis_client, stream=STREAM)
    for first in range(0, len(events), 100):
        sink.emit(events[first:first + 100])
    crashed = StreamReader(client=redis_client, stream=STREAM, consumer="t1")
    entries = crashed.read_entries(count=1000, block_ms=0).entries
    ch.insert(EVENTS_TABLE, INSERT_COLUMNS, [(*event_row(e), entry.stream_id)
                                             for entry in entries
                                             for e in decode_events(entry.payload)])
    states = _stored_states(ch)
    assert drain(reader=crashed, ch=ch) == 0
    assert _count(ch, EVENTS_TABLE) == len(events)
    assert _stored_states(ch) == states == _event_states(ch)
