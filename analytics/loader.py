"""Events from the Redis stream into ClickHouse, exactly once.

A batch of stream entries is inserted, then acknowledged and deleted. Every row carries the id
of the stream entry it came in (``stream_id``). A loader that dies between the insert and the
acknowledgement leaves its entries pending; the next read hands them back marked
``redelivered``, and for those entries only the loader first asks ClickHouse which
``(stream_id, event_id)`` it already holds and inserts the rest (and writes the
``campaign_members`` states of what it holds again, in case the crash came between the two
tables: those states are unchanged by a second copy). So a crash at any point neither
loses an event nor stores one twice, on chDB and on an 18.16 server alike (the
``insert_deduplication_token`` setting would need ClickHouse 22.2 and a table setting; this
check needs nothing but a SELECT, and runs only after a crash). On chDB, fresh entries go in
undecoded, through ``events_inbox`` (see ``_insert_entries``): Python never touches their events.

Payment events (``points_granted`` with an order) also become ``orders`` rows, under the same
rule (``source`` is ``stream:<entry id>``).

ClickHouse down: nothing is acknowledged, the entries wait in Redis, the loader retries with a
growing pause and records the error where ``quanpai loader status`` reads it.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import msgspec
import redis

from analytics.events import COLUMNS
from analytics.schema import (
    EVENTS_INBOX,
    EVENTS_TABLE,
    ORDERS_TABLE,
    copy_campaign_members,
    ensure_schema,
)
from analytics.stream import Backlog, Entry, StreamReader
from infra.clickhouse import ClickHouse
from infra.errors import ClickHouseError
from infra.metrics import metrics

INSERT_COLUMNS: tuple[str, ...] = (*COLUMNS, "stream_id")
ORDER_COLUMNS: tuple[str, ...] = (
    "merchant_id", "member_id", "store_id", "order_id", "ts", "amount_fen", "paid_channel",
    "category", "sku", "source",
)
KILL_AFTER_INSERT = "loader:after_insert"  # crash tests: die between insert and acknowledgement


def _quoted(values: Sequence[str]) -> str:
    # stream ids are Redis ids (digits and one dash), checked before they reach SQL
    for value in values:
        left, _, right = value.partition("-")
        if not (left.isdigit() and right.isdigit()):
            raise ValueError(f"not a stream id: {value!r}")
    return ", ".join(f"'{v}'" for v in values)


def _stored(ch: ClickHouse, stream_ids: Sequence[str]) -> tuple[set[tuple[str, str]], set[str]]:
    """(stream_id, event_id) pairs and order sources already in ClickHouse."""
    ids = _quoted(stream_ids)
    events = {(str(r[0]), str(r[1])) for r in ch.query(
        f"SELECT stream_id, event_id FROM {EVENTS_TABLE} WHERE stream_id IN ({ids})")}
    sources = ", ".join(f"'stream:{v}'" for v in stream_ids)
    orders = {str(r[0]) for r in ch.query(
        f"SELECT source FROM {ORDERS_TABLE} WHERE source IN ({sources})")}
    return events, orders


def _restate_members(ch: ClickHouse, stored: set[tuple[str, str]]) -> None:
    """``campaign_members`` states of the events a crashed loader already stored, written again.

    ``campaign_members`` is written by a view after ``events``: a loader killed between the two
    leaves events whose states are missing, and the events are skipped as stored when their
    entries come back. Writing the states of every stored event of those entries again fills
    the gap; where nothing was missing it changes nothing (its states are OR and min)."""
    if stored:
        ids = _quoted(sorted({stream_id for stream_id, _ in stored}))
        copy_campaign_members(ch, f"stream_id IN ({ids})")


_TYPE, _MERCHANT, _MEMBER, _STORE, _ORDER, _AMOUNT, _CHANNEL, _TS = (
    COLUMNS.index(c) for c in ("event_type", "merchant_id", "member_id", "store_id", "order_id",
                               "amount_fen", "channel", "ts"))


def order_row(event: Sequence[Any], source: str) -> tuple[Any, ...] | None:
    """The ``orders`` row of an encoded payment event (a member's paid order), else None."""
    if event[_TYPE] != "points_granted" or not event[_ORDER] or not event[_MEMBER]:
        return None
    return (event[_MERCHANT], event[_MEMBER], event[_STORE], event[_ORDER],
            datetime.fromtimestamp(int(event[_TS]) // 1000, UTC), event[_AMOUNT],
            event[_CHANNEL], "", "", source)


def _insert_events(ch: ClickHouse, rows: list[list[Any]]) -> None:
    """Decoded rows (``ts`` in ms, ``stream_id`` appended) into a server's events table as
    native columns."""
    if not rows:
        return
    for row in rows:
        row[_TS] = datetime.fromtimestamp(int(row[_TS]) // 1000, UTC)
    ch.insert(EVENTS_TABLE, INSERT_COLUMNS, rows)


def _insert_entries(ch: ClickHouse, entries: Sequence[tuple[str, bytes]]) -> None:
    """Stream entries (id, encoded rows) into chDB as they are: one JSON line per entry into
    ``events_inbox``, whose view unpacks the rows. ClickHouse parses the JSON, so no event
    becomes a Python object, and any string content is read back exactly as it was written."""
    if not entries:
        return
    # stream ids are digits and a dash (load_once checks); the payload is the emitter's JSON on
    # one line (JSON escapes every control character)
    data = b"\n".join(b'["%s",%s]' % (sid.encode(), payload) for sid, payload in entries)
    # Measured cheaper (about a quarter less CPU): no collapsing of equal keys inside each insert
    # (the loader inserts no copies, the queries read one row per event, and the table's merges
    # still collapse), and no parallel parsing (its chunks and threads cost more than they save
    # on entries of 100 kB and two cores)
    ch.execute(f"INSERT INTO {EVENTS_INBOX} SETTINGS optimize_on_insert = 0, "
               f"input_format_parallel_parsing = 0 FORMAT JSONCompactEachRow\n{data.decode()}")


def _has_payment(payload: bytes) -> bool:
    # a payment event's type is written as this exact JSON string; a false positive (the text
    # inside another field) only costs decoding that entry
    return b'"points_granted"' in payload


# One insert gathers up to this many events (or entries) of fresh entries: at a few events an
# entry (callback receipts), an insert per read cost the loader about 30 µs of CPU an event
GATHER_EVENTS = 50_000
GATHER_ENTRIES = 20_000


def load_once(
    *, reader: StreamReader, ch: ClickHouse, count: int = 200, block_ms: int = 0,
    kill_at: str = "", gather_s: float | None = None,
) -> int:
    """Move up to ``count`` stream entries into ClickHouse; returns the events inserted.

    With ``gather_s`` set, fresh entries are gathered into one insert: further new entries
    are read until ``GATHER_EVENTS`` events are in hand or ``gather_s`` has passed (0: until
    nothing more is waiting)."""
    batch = reader.read_entries(count=count, block_ms=block_ms)
    if gather_s is not None:
        batch = reader.read_more(batch, max_events=GATHER_EVENTS, max_entries=GATHER_ENTRIES,
                                 wait_s=gather_s, count=count)
    if not batch.entries:
        return 0
    stream_ids = [e.stream_id for e in batch.entries]
    _quoted(stream_ids)  # Redis makes them, but they reach SQL and JSON text: refuse others
    if ch.kind == "chdb" and not batch.redelivered:
        inserted, orders = _load_whole(ch, batch.entries)
    else:
        stored = _stored(ch, stream_ids) if batch.redelivered else (set(), set())
        _restate_members(ch, stored[0])
        inserted, orders = _load_decoded(ch, batch.entries, *stored)
    ch.insert(ORDERS_TABLE, ORDER_COLUMNS, orders)
    if kill_at == KILL_AFTER_INSERT:
        os.kill(os.getpid(), signal.SIGKILL)
    reader.ack(stream_ids)
    metrics().loader_rows.inc(inserted)
    return inserted


def _load_whole(ch: ClickHouse, entries: Sequence[Entry]) -> tuple[int, list[tuple[Any, ...]]]:
    """Fresh entries into chDB undecoded; only those that may carry payments are decoded, for
    their ``orders`` rows (and those without an event count, to count them)."""
    inserted = 0
    orders: list[tuple[Any, ...]] = []
    for entry in entries:
        if entry.count is not None and not _has_payment(entry.payload):
            inserted += entry.count
            continue
        events = json.loads(entry.payload)
        inserted += len(events)
        orders.extend(_orders(events, entry.stream_id))
    _insert_entries(ch, [(e.stream_id, e.payload) for e in entries])
    return inserted, orders


def _load_decoded(
    ch: ClickHouse, entries: Sequence[Entry], events_in: set[tuple[str, str]],
    orders_in: set[str],
) -> tuple[int, list[tuple[Any, ...]]]:
    """Entries decoded, leaving out the events and orders already stored (a redelivered batch),
    into a server as native columns, or back into chDB's inbox as re-encoded entries."""
    inserted = 0
    rows: list[list[Any]] = []
    kept: list[tuple[str, bytes]] = []
    orders: list[tuple[Any, ...]] = []
    for entry in entries:
        events = json.loads(entry.payload)
        if f"stream:{entry.stream_id}" not in orders_in:
            orders.extend(_orders(events, entry.stream_id))
        if events_in:
            events = [e for e in events if (entry.stream_id, e[0]) not in events_in]
        inserted += len(events)
        if ch.kind != "chdb":
            rows.extend([*e, entry.stream_id] for e in events)
        elif events:
            kept.append((entry.stream_id, _dumps(events)))
    if ch.kind == "chdb":
        _insert_entries(ch, kept)
    else:
        _insert_events(ch, rows)
    return inserted, orders


def _orders(events: list[list[Any]], stream_id: str) -> list[tuple[Any, ...]]:
    source = f"stream:{stream_id}"
    return [row for event in events if (row := order_row(event, source)) is not None]


_dumps = msgspec.json.Encoder().encode  # compact, UTF-8 as written (as ``encode_events``)


def drain(*, reader: StreamReader, ch: ClickHouse, kill_at: str = "") -> int:
    """Load until the stream has nothing pending; returns the number of events loaded."""
    ensure_schema(ch)
    total = 0
    while True:
        before = reader.lag()
        loaded = load_once(reader=reader, ch=ch, count=200, kill_at=kill_at, gather_s=0)
        total += loaded
        if not loaded and reader.lag() in (0, before):
            return total


@dataclass(frozen=True)
class LoaderStatus:
    backlog: Backlog
    state: dict[str, str]  # what the running loader last wrote (pid, loaded, last_error, ...)


def status_key(stream: str) -> str:
    return f"{stream}:loader"


def loader_status(*, reader: StreamReader, client: redis.Redis, stream: str) -> LoaderStatus:
    raw: Any = client.hgetall(status_key(stream))
    state = {k.decode(): v.decode() for k, v in raw.items()}
    return LoaderStatus(backlog=reader.backlog(), state=state)


def run_loader(
    *, reader: StreamReader, ch: ClickHouse, stop: threading.Event, client: redis.Redis,
    stream: str, reconnect: Callable[[], ClickHouse] | None = None, kill_at: str = "",
    idle_sleep: float = 0.2, max_pause: float = 30.0,
) -> int:
    """Load continuously until ``stop`` is set, then drain what is left.

    A ClickHouse error leaves the batch in Redis and pauses (1 s doubling to ``max_pause``);
    ``reconnect`` builds a new client after an error (the owner of chDB may have changed)."""
    key = status_key(stream)
    client.hset(key, mapping={"pid": os.getpid(), "started": int(time.time()),
                              "clickhouse": ch.kind, "last_error": ""})
    total, pause, ready = 0, 1.0, False
    while not stop.is_set():
        try:
            if not ready:
                ensure_schema(ch)
                ready = True
            loaded = load_once(reader=reader, ch=ch, count=200, block_ms=200, kill_at=kill_at,
                               gather_s=1.0)
        except ClickHouseError as exc:
            client.hset(key, mapping={"last_error": str(exc)[:300],
                                      "last_error_at": int(time.time())})
            stop.wait(pause)
            pause = min(pause * 2, max_pause)
            if reconnect is not None:
                try:
                    ch.close()
                finally:
                    ch = reconnect()
                ready = False
            continue
        pause = 1.0
        total += loaded
        client.hset(key, mapping={"loaded": total, "last_ok": int(time.time()),
                                  "last_error": ""})
        if not loaded:
            stop.wait(idle_sleep)
    return total + drain(reader=reader, ch=ch)
