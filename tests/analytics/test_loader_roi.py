"""Events go through a real Redis stream into chDB and a real ClickHouse server; the same ROI
SQL gives the same numbers on both, and rows loaded twice are counted once."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest
import redis

from analytics.events import Event, decode_events, encode_events, event_row
from analytics.loader import INSERT_COLUMNS, drain, load_once
from analytics.roi import campaign_roi
from analytics.schema import EVENTS_TABLE, ensure_schema
from analytics.stream import RedisStreamSink, StreamReader
from infra.clickhouse import ClickHouse

STREAM = "test:events"


def _events() -> list[Event]:
    ts = datetime(2026, 11, 11, 2, 0, tzinfo=UTC)
    events = []
    for member in range(1, 101):
        events.append(Event(f"issued:c1:{member}", "issued", "m1", "c1", str(member), ts=ts))
        if member % 10:
            events.append(Event(f"sent:c1:{member}", "sent", "m1", "c1", str(member), ts=ts,
                                channel="sms", cost_fen=5))
        else:
            events.append(Event(f"failed:c1:{member}", "failed", "m1", "c1", str(member), ts=ts,
                                reason="isv.MOBILE_NUMBER_ILLEGAL"))
    for member in range(1, 6):
        events.append(Event(f"redeemed:c1:{member}", "redeemed", "m1", "c1", str(member), ts=ts,
                            amount_fen=10000, discount_fen=1500, cost_fen=1500))
    # the catalog's refund repeats the returned discount as its cost: it must not add a cost
    events.append(Event("refunded:c1:1", "refunded", "m1", "c1", "1", ts=ts,
                        amount_fen=10000, discount_fen=1500, cost_fen=1500))
    events.append(Event("held_out:c1:999", "held_out", "m1", "c1", "999", ts=ts))
    events.append(Event("issued:c2:1", "issued", "m1", "c2", "1", ts=ts))
    events.append(Event("issued:c9:1", "issued", "other-merchant", "c9", "1", ts=ts))
    return events


def test_event_encoding_round_trips() -> None:
    events = _events()
    assert decode_events(encode_events(events)) == events


@pytest.fixture(params=["chdb", "server"])
def ch(request: pytest.FixtureRequest) -> ClickHouse:
    name = "chdb_client" if request.param == "chdb" else "clickhouse_driver"
    client: ClickHouse = request.getfixturevalue(name)
    return client


def _load(redis_client: redis.Redis, ch: ClickHouse, *, duplicate: bool) -> None:
    sink = RedisStreamSink(client=redis_client, stream=STREAM)
    events = _events()
    for start in range(0, len(events), 50):
        sink.emit(events[start:start + 50])
    ensure_schema(ch)
    reader = StreamReader(client=redis_client, stream=STREAM, consumer="t1")
    if duplicate:
        # A loader that inserted and then died before acknowledging: the entries stay pending
        # and are loaded again by the next run.
        entries = reader.read(count=2, block_ms=0)
        ch.insert(EVENTS_TABLE, INSERT_COLUMNS,
                  [(*event_row(e), "0-0") for _, batch in entries for e in batch])
    drain(reader=reader, ch=ch)
    assert reader.lag() == 0


def test_roi_counts(redis_client: redis.Redis, ch: ClickHouse) -> None:
    _load(redis_client, ch, duplicate=True)
    raw = ch.query(f"SELECT count() FROM {EVENTS_TABLE}")[0][0]
    assert raw > len(_events()) - 1  # duplicates really are in the table
    rows = {r.campaign_id: r for r in campaign_roi(ch, merchant_id="m1")}
    assert set(rows) == {"c1", "c2"}
    c1 = rows["c1"]
    assert (c1.issued, c1.sent, c1.failed, c1.held_out) == (100, 90, 10, 1)
    assert c1.redeemed == 4
    assert c1.order_amount_fen == 40000
    assert c1.discount_fen == 6000
    assert c1.cost_fen == 4 * 1500  # five redemptions, one refunded: counted once, net
    assert rows["c2"].issued == 1


def test_same_numbers_on_chdb_and_server(
    redis_client: redis.Redis, chdb_client: ClickHouse, clickhouse_driver: ClickHouse
) -> None:
    _load(redis_client, chdb_client, duplicate=False)
    redis_client.flushall()
    _load(redis_client, clickhouse_driver, duplicate=True)
    embedded = campaign_roi(chdb_client, merchant_id="m1")
    server = campaign_roi(clickhouse_driver, merchant_id="m1")
    assert embedded == server
    assert embedded[0].issued == 100
    assert clickhouse_driver.server_version()[0] == 18
    assert chdb_client.server_version()[0] >= 24


def test_load_once_on_empty_stream(redis_client: redis.Redis, chdb_client: ClickHouse) -> None:
    ensure_schema(chdb_client)
    reader = StreamReader(client=redis_client, stream=STREAM, consumer="t1")
    assert load_once(reader=reader, ch=chdb_client) == 0


ODD_TEXT = ("it's \"quoted\" \\ back\\slash\nnew line\ttab \x00 nul ],[ 中文 🎟️ \u2028", "",
            "\\u0041 not an escape", "'; DROP TABLE events; --")


def test_chdb_takes_entries_as_they_are(redis_client: redis.Redis,
                                        chdb_client: ClickHouse) -> None:
    """Entries go into chDB undecoded: any string content comes back exactly; an entry written
    before entries carried their event count still loads; payments still become orders."""
    ts = datetime(2026, 11, 11, 2, 0, 0, tzinfo=UTC)
    events = [Event(f"failed:c1:{i}", "failed", "m1", "c1", str(i), reason=text, channel="sms",
                    store_id=text, amount_fen=-5, ts=ts) for i, text in enumerate(ODD_TEXT)]
    payment = Event("points_granted:earn:S1|o1", "points_granted", "m1", member_id="7",
                    store_id="S1", order_id="o1", amount_fen=2500, reason="25", ts=ts)
    sink = RedisStreamSink(client=redis_client, stream=STREAM)
    sink.emit(events[:2])
    redis_client.xadd(STREAM, {"e": encode_events(events[2:])})  # no event count: older entry
    sink.emit([payment])
    # the catalog's redemption script writes its entry with Redis's cjson ("\/" escapes)
    redis_client.xadd(STREAM, {"e": b'[["redeemed:m1:c1:9","redeemed","m1","c1","9","C\\/9",'
                                    b'"","S1","R9",10000,1500,1500,"a\\/b",1794362400000]]'})
    ensure_schema(chdb_client)
    reader = StreamReader(client=redis_client, stream=STREAM, consumer="t1")
    assert drain(reader=reader, ch=chdb_client) == len(events) + 2
    assert chdb_client.query(
        f"SELECT coupon_code, reason, toUInt32(ts) FROM {EVENTS_TABLE} WHERE order_id = 'R9'"
    ) == [("C/9", "a/b", 1794362400)]
    stored = chdb_client.query(
        f"SELECT {', '.join(INSERT_COLUMNS[:-2])}, toUInt32(ts) FROM {EVENTS_TABLE} "
        "WHERE event_type = 'failed' ORDER BY event_id")
    assert stored == [(*event_row(e)[:-1], int(ts.timestamp())) for e in events]
    assert chdb_client.query("SELECT member_id, order_id, amount_fen, toUInt32(ts) FROM orders"
                             ) == [("7", "o1", 2500, int(ts.timestamp()))]
    assert reader.lag() == 0


def test_redelivered_entries_add_only_what_is_missing(redis_client: redis.Redis,
                                                      ch: ClickHouse) -> None:
    """A loader that stored part of its batch and died: the entries come back redelivered and
    only the missing events are inserted (chDB re-encodes those entries, a server gets rows)."""
    events = _events()
    sink = RedisStreamSink(client=redis_client, stream=STREAM)
    for start in range(0, len(events), 50):
        sink.emit(events[start:start + 50])
    ensure_schema(ch)
    first = StreamReader(client=redis_client, stream=STREAM, consumer="t1")
    entries = first.read_entries(count=3, block_ms=0).entries
    stored = [(*event_row(e), entry.stream_id) for entry in entries[:2]
              for e in decode_events(entry.payload)[::3]]
    ch.insert(EVENTS_TABLE, INSERT_COLUMNS, stored)
    assert drain(reader=first, ch=ch) == len(events) - len(stored)
    assert ch.query(f"SELECT count(), uniqExact(event_id) FROM {EVENTS_TABLE}") == \
        [(len(events), len(events))]


def test_small_entries_are_gathered_into_one_batch(redis_client: redis.Redis) -> None:
    """Receipts arrive a few events an entry: the loader reads on (new entries only) until its
    limit, waiting for entries that arrive meanwhile; a redelivered batch is left as it is."""
    events = _events()
    sink = RedisStreamSink(client=redis_client, stream=STREAM)
    for event in events[:150]:
        sink.emit([event])
    reader = StreamReader(client=redis_client, stream=STREAM, consumer="t1")
    first = reader.read_entries(count=40, block_ms=0)
    assert len(first.entries) == 40 and not first.redelivered
    gathered = reader.read_more(first, max_events=100, max_entries=1000, wait_s=0, count=40)
    assert len(gathered.entries) == 120  # reads of 40 until 100 events were in hand
    assert [e.stream_id for e in gathered.entries] == sorted(
        {e.stream_id for e in gathered.entries}, key=lambda i: tuple(map(int, i.split("-"))))
    reader.ack([e.stream_id for e in gathered.entries])
    rest = reader.read_more(reader.read_entries(count=40, block_ms=0), max_events=1000,
                            max_entries=1000, wait_s=0, count=40)
    assert len(rest.entries) == 30  # nothing more waiting: no wait asked, none done
    reader.ack([e.stream_id for e in rest.entries])

    # entries that arrive while the loader waits join the batch
    timer = threading.Timer(0.1, lambda: sink.emit(events[150:160]))
    timer.start()
    sink.emit(events[160:161])
    waited = reader.read_more(reader.read_entries(count=40, block_ms=0), max_events=11,
                              max_entries=1000, wait_s=5.0)
    timer.join()
    assert sum(e.count or 0 for e in waited.entries) == 11

    # unacknowledged: a new reader of the same consumer gets them back redelivered, and only
    # those (gathering never reads past a redelivered batch)
    again = StreamReader(client=redis_client, stream=STREAM, consumer="t1")
    pending = again.read_entries(count=1000, block_ms=0)
    assert pending.redelivered and pending.entries == waited.entries
    assert again.read_more(pending, max_events=10_000, max_entries=10_000, wait_s=1.0) == pending


def test_drain_gathers_small_entries_exactly_once(redis_client: redis.Redis,
                                                  ch: ClickHouse) -> None:
    events = _events()
    sink = RedisStreamSink(client=redis_client, stream=STREAM)
    for event in events:
        sink.emit([event])
    ensure_schema(ch)
    reader = StreamReader(client=redis_client, stream=STREAM, consumer="t1")
    assert load_once(reader=reader, ch=ch, count=50, gather_s=0) == len(events)
    assert reader.lag() == 0
    assert ch.query(f"SELECT count(), uniqExact(event_id) FROM {EVENTS_TABLE}") == \
        [(len(events), len(events))]
