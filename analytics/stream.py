"""Events into and out of a Redis stream.

``RedisStreamSink`` appends one stream entry per batch of events: field ``e`` holds the batch
(``analytics.events.encode_events``), field ``n`` the number of events in it, so the loader can
hand the bytes to ClickHouse without decoding them and still count what it loaded (entries
written before ``n`` existed are counted by decoding them). The loader reads with a consumer
group, so a crashed loader's entries are delivered again, marked ``redelivered``: the loader then
asks ClickHouse which of their events it already stored (``analytics.loader``).
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import redis
from redis.typing import EncodableT, FieldT

from analytics.events import Event, encode_events, row_fields

GROUP = "analytics-loader"


@dataclass(frozen=True)
class StreamBatch:
    entries: list[tuple[bytes, list[Event]]]
    redelivered: bool  # read before by a consumer that did not acknowledge it


@dataclass(frozen=True)
class Entry:
    stream_id: str
    payload: bytes  # a JSON array of rows, as ``encode_events`` wrote it
    count: int | None  # events in ``payload`` when the emitter said (None: decode to know)


@dataclass(frozen=True)
class EntryBatch:
    """Entries as they are stored in Redis: the loader's path, where decoding each event into
    Python values would cost most of the time."""

    entries: list[Entry]
    redelivered: bool  # read before by a consumer that did not acknowledge it


@dataclass(frozen=True)
class RawBatch:
    """Entries as their JSON rows (``COLUMNS`` order, ``ts`` in epoch ms), not decoded into
    ``Event`` objects: the loader's path, where an object per event would cost most of the time."""

    entries: list[tuple[bytes, list[list[Any]]]]
    redelivered: bool


@dataclass(frozen=True)
class Backlog:
    entries: int  # in the stream, not yet loaded and deleted
    pending: int  # delivered to a loader, not acknowledged
    oldest_ms: int  # arrival time of the oldest entry (epoch ms), 0 when empty


class RedisStreamSink:
    def __init__(self, *, client: redis.Redis, stream: str) -> None:
        self._client = client
        self._stream = stream

    def emit(self, events: Sequence[Event]) -> None:
        if events:
            self._client.xadd(self._stream, _fields(events))

    def emit_in(self, pipe: Any, events: Sequence[Event]) -> None:
        """Queue the XADD on a pipeline the caller executes (one round trip with other work)."""
        if events:
            pipe.xadd(self._stream, _fields(events))


def _entries(raw: Any) -> list[Entry]:
    return [Entry(entry_id.decode(), fields[b"e"], int(fields[b"n"]) if b"n" in fields else None)
            for entry_id, fields in raw]


def _fields(events: Sequence[Event]) -> dict[FieldT, EncodableT]:
    return {"e": encode_events(events), "n": len(events)}


class StreamReader:
    """Reads event batches through a consumer group; ``ack`` after they are stored."""

    def __init__(self, *, client: redis.Redis, stream: str, consumer: str) -> None:
        self._client = client
        self._stream = stream
        self._consumer = consumer
        try:
            self._client.xgroup_create(stream, GROUP, id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    def read(self, *, count: int = 500, block_ms: int = 1000) -> list[tuple[bytes, list[Event]]]:
        """Entries not yet acknowledged (see ``read_batch``)."""
        return self.read_batch(count=count, block_ms=block_ms).entries

    def read_batch(self, *, count: int = 500, block_ms: int = 1000) -> StreamBatch:
        """Entries not yet acknowledged, decoded (see ``read_raw``)."""
        raw = self.read_raw(count=count, block_ms=block_ms)
        return StreamBatch([(entry_id, [Event(**row_fields(row)) for row in rows])
                            for entry_id, rows in raw.entries], redelivered=raw.redelivered)

    def read_raw(self, *, count: int = 500, block_ms: int = 1000) -> RawBatch:
        """Entries not yet acknowledged, as JSON rows (see ``read_entries``)."""
        batch = self.read_entries(count=count, block_ms=block_ms)
        return RawBatch([(e.stream_id.encode(), json.loads(e.payload)) for e in batch.entries],
                        redelivered=batch.redelivered)

    def read_entries(self, *, count: int = 500, block_ms: int = 1000) -> EntryBatch:
        """Entries not yet acknowledged: first this consumer's own pending ones (after a
        crash), then entries idle too long in other consumers, then new entries, waiting up to
        ``block_ms`` for them (0: do not wait). The first two kinds are ``redelivered``: they
        may already be stored."""
        pending: Any = self._client.xreadgroup(
            GROUP, self._consumer, {self._stream: "0"}, count=count
        )
        entries = pending[0][1] if pending else []
        if not entries:
            claimed: Any = self._client.xautoclaim(
                self._stream, GROUP, self._consumer, min_idle_time=60_000, count=count
            )
            entries = [e for e in claimed[1] if e[1]]
        redelivered = bool(entries)
        if not entries:
            return EntryBatch(self._read_new(count, block_ms), redelivered=False)
        return EntryBatch(_entries(entries), redelivered=redelivered)

    def _read_new(self, count: int, block_ms: int) -> list[Entry]:
        """Entries never delivered to any consumer, waiting up to ``block_ms`` (0: not at
        all)."""
        fresh: Any = self._client.xreadgroup(
            GROUP, self._consumer, {self._stream: ">"}, count=count, block=block_ms or None)
        return _entries(fresh[0][1]) if fresh else []

    def read_more(self, batch: EntryBatch, *, max_events: int, max_entries: int,
                  wait_s: float, count: int = 500) -> EntryBatch:
        """``batch`` (fresh entries) with further new entries appended, until ``max_events``
        events or ``max_entries`` entries are in hand, or ``wait_s`` has passed, or (with
        ``wait_s`` 0) nothing more is waiting.

        Events reach the stream in many small entries (a callback request's receipts, a
        redemption), and each ClickHouse insert has a fixed cost and leaves a part to merge:
        one insert of what arrived in a second costs a fraction of one insert a read. Only new
        entries (``>``) are read here: this consumer's pending ones are those it already holds,
        and a crash before the acknowledgement hands them all back, redelivered."""
        if batch.redelivered or not batch.entries:
            return batch
        entries = list(batch.entries)
        events = sum(e.count or 1 for e in entries)
        deadline = time.monotonic() + wait_s
        while events < max_events and len(entries) < max_entries:
            left_ms = int((deadline - time.monotonic()) * 1000)
            if wait_s and left_ms <= 0:
                break
            more = self._read_new(min(count, max_entries - len(entries)),
                                  left_ms if wait_s else 0)
            if not more:
                break  # blocked until the deadline, or (no wait) nothing left
            entries.extend(more)
            events += sum(e.count or 1 for e in more)
        return EntryBatch(entries, redelivered=False)

    def backlog(self) -> Backlog:
        """What waits in the stream: entries, of which delivered but not acknowledged, and the
        age of the oldest (its id is its arrival time in milliseconds)."""
        length = int(self._client.xlen(self._stream))
        summary: Any = self._client.xpending(self._stream, GROUP)
        first: Any = self._client.xrange(self._stream, count=1)
        oldest_ms = int(first[0][0].split(b"-")[0]) if first else 0
        return Backlog(entries=length, pending=int(summary["pending"]), oldest_ms=oldest_ms)

    def ack(self, entry_ids: Sequence[str | bytes]) -> None:
        if entry_ids:
            pipe = self._client.pipeline(transaction=False)
            pipe.xack(self._stream, GROUP, *entry_ids)
            pipe.xdel(self._stream, *entry_ids)
            pipe.execute()

    def lag(self) -> int:
        """Entries in the stream not yet loaded and deleted."""
        return int(self._client.xlen(self._stream))
