"""Events from the Redis stream into ClickHouse.

At-least-once: a batch of stream entries is inserted, then acknowledged and deleted. A loader
that dies between the two leaves the entries pending; the next read takes them again and the
rows land twice, which the ROI queries absorb by counting distinct ``event_id``.
"""

from __future__ import annotations

import threading
import time

from analytics.events import COLUMNS, event_row
from analytics.schema import EVENTS_TABLE, ensure_schema
from analytics.stream import StreamReader
from infra.clickhouse import ClickHouse
from infra.metrics import metrics


def load_once(*, reader: StreamReader, ch: ClickHouse, count: int = 200, block_ms: int = 0) -> int:
    """Move up to ``count`` stream entries into ClickHouse; returns the number of events."""
    entries = reader.read(count=count, block_ms=block_ms)
    if not entries:
        return 0
    rows = [event_row(event) for _, events in entries for event in events]
    ch.insert(EVENTS_TABLE, COLUMNS, rows)
    reader.ack([entry_id for entry_id, _ in entries])
    metrics().loader_rows.inc(len(rows))
    return len(rows)


def drain(*, reader: StreamReader, ch: ClickHouse) -> int:
    """Load until the stream has nothing pending; returns the number of events loaded."""
    ensure_schema(ch)
    total = 0
    while loaded := load_once(reader=reader, ch=ch, count=500):
        total += loaded
    return total


def run_loader(
    *, reader: StreamReader, ch: ClickHouse, stop: threading.Event, idle_sleep: float = 0.2
) -> int:
    """Load continuously until ``stop`` is set, then drain what is left."""
    ensure_schema(ch)
    total = 0
    while not stop.is_set():
        loaded = load_once(reader=reader, ch=ch, count=500, block_ms=200)
        total += loaded
        if not loaded:
            time.sleep(idle_sleep)
    return total + drain(reader=reader, ch=ch)
