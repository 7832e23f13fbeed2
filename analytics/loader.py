"""Events from the Redis stream into ClickHouse, exactly once.

A batch of stream entries is inserted, then acknowledged and deleted. Every row carries the id
of the stream entry it came in (``stream_id``). A loader that dies between the insert and the
acknowledgement leaves its entries pending; the next read hands them back marked
``redelivered``, and for those entries only the loader first asks ClickHouse which
``(stream_id, event_id)`` it already holds and inserts the rest. So a crash at any point neither
loses an event nor stores one twice, on chDB and on an 18.16 server alike (the
``insert_deduplication_token`` setting would need ClickHouse 22.2 and a table setting; this
check needs nothing but a SELECT, and runs only after a crash).

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

import redis

from analytics.events import COLUMNS
from analytics.schema import EVENTS_TABLE, ORDERS_TABLE, ensure_schema
from analytics.stream import Backlog, StreamReader
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


_TYPE, _MERCHANT, _MEMBER, _STORE, _ORDER, _AMOUNT, _TS = (
    COLUMNS.index(c) for c in ("event_type", "merchant_id", "member_id", "store_id", "order_id",
                               "amount_fen", "ts"))


def order_row(event: Sequence[Any], source: str) -> tuple[Any, ...] | None:
    """The ``orders`` row of an encoded payment event (a member's paid order), else None."""
    if event[_TYPE] != "points_granted" or not event[_ORDER] or not event[_MEMBER]:
        return None
    return (event[_MERCHANT], event[_MEMBER], event[_STORE], event[_ORDER],
            datetime.fromtimestamp(int(event[_TS]) // 1000, UTC), event[_AMOUNT], "", "", "",
            source)


def _insert_events(ch: ClickHouse, rows: list[list[Any]]) -> None:
    """Encoded rows (``ts`` in ms, ``stream_id`` appended) into the events table. chDB takes
    them as JSON text in one statement (no object per value); a server gets native columns."""
    if not rows:
        return
    for row in rows:
        row[_TS] = int(row[_TS]) // 1000
    if ch.kind == "chdb":
        text = "\n".join(map(_dumps, rows))
        ch.execute(f"INSERT INTO {EVENTS_TABLE} ({', '.join(INSERT_COLUMNS)}) "
                   f"FORMAT JSONCompactEachRow\n{text}")
        return
    for row in rows:
        row[_TS] = datetime.fromtimestamp(row[_TS], UTC)
    ch.insert(EVENTS_TABLE, INSERT_COLUMNS, rows)


_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def load_once(
    *, reader: StreamReader, ch: ClickHouse, count: int = 200, block_ms: int = 0,
    kill_at: str = "",
) -> int:
    """Move up to ``count`` stream entries into ClickHouse; returns the events inserted."""
    batch = reader.read_raw(count=count, block_ms=block_ms)
    if not batch.entries:
        return 0
    stream_ids = [entry_id.decode() for entry_id, _ in batch.entries]
    events_in, orders_in = _stored(ch, stream_ids) if batch.redelivered else (set(), set())
    rows: list[list[Any]] = []
    orders: list[tuple[Any, ...]] = []
    for stream_id, (_, events) in zip(stream_ids, batch.entries, strict=True):
        source = f"stream:{stream_id}"
        for event in events:
            if source not in orders_in and (order := order_row(event, source)) is not None:
                orders.append(order)
            if not events_in or (stream_id, event[0]) not in events_in:
                event.append(stream_id)
                rows.append(event)
    _insert_events(ch, rows)
    ch.insert(ORDERS_TABLE, ORDER_COLUMNS, orders)
    if kill_at == KILL_AFTER_INSERT:
        os.kill(os.getpid(), signal.SIGKILL)
    reader.ack([entry_id for entry_id, _ in batch.entries])
    metrics().loader_rows.inc(len(rows))
    return len(rows)


def drain(*, reader: StreamReader, ch: ClickHouse, kill_at: str = "") -> int:
    """Load until the stream has nothing pending; returns the number of events loaded."""
    ensure_schema(ch)
    total = 0
    while True:
        before = reader.lag()
        loaded = load_once(reader=reader, ch=ch, count=200, kill_at=kill_at)
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
            loaded = load_once(reader=reader, ch=ch, count=200, block_ms=200, kill_at=kill_at)
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
