"""The event model: every state change an analyst needs (DESIGN.md §5).

Events travel in batches: one Redis stream entry carries many events as a compact JSON array of
rows in ``COLUMNS`` order, because one entry per coupon would cost a round trip per member.
``event_id`` is deterministic where the fact is unique (``issued:<campaign>:<member>``), so an
event emitted twice after a retry is counted once (ROI queries count distinct ids).
"""

from __future__ import annotations

import json
import operator
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

EVENT_TYPES = frozenset(
    {
        "issued", "sent", "delivered", "failed", "in_doubt", "held_out", "redeemed",
        "refunded", "expired", "points_granted", "printed",
    }
)


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class Event:
    event_id: str
    event_type: str
    merchant_id: str
    campaign_id: str = ""
    member_id: str = ""
    coupon_code: str = ""
    channel: str = ""
    store_id: str = ""
    order_id: str = ""
    amount_fen: int = 0
    discount_fen: int = 0
    cost_fen: int = 0
    reason: str = ""
    ts: datetime = field(default_factory=_utcnow)

    def __post_init__(self) -> None:
        if self.event_type not in EVENT_TYPES:
            raise ValueError(f"unknown event_type {self.event_type!r}")
        if self.ts.tzinfo is None:
            raise ValueError("event ts must be timezone-aware")


COLUMNS: tuple[str, ...] = tuple(Event.__dataclass_fields__)
# dataclasses.astuple deep-copies every field; events are flat, so read the fields directly.
_values = operator.attrgetter(*COLUMNS)


def event_row(event: Event) -> tuple[Any, ...]:
    """The event's values in ``COLUMNS`` order."""
    values: tuple[Any, ...] = _values(event)
    return values


def encode_events(events: Sequence[Event]) -> bytes:
    """Events as one JSON array of rows (``ts`` as epoch milliseconds)."""
    rows = []
    for event in events:
        row: list[Any] = list(_values(event))
        row[-1] = int(event.ts.timestamp() * 1000)
        rows.append(row)
    return json.dumps(rows, ensure_ascii=False, separators=(",", ":")).encode()


def row_fields(row: Sequence[Any]) -> dict[str, Any]:
    """The ``Event`` fields of one encoded row."""
    values = dict(zip(COLUMNS, row, strict=True))
    values["ts"] = datetime.fromtimestamp(values["ts"] / 1000, UTC)
    return values


def decode_events(payload: bytes) -> list[Event]:
    return [Event(**row_fields(row)) for row in json.loads(payload)]


class EventSink(Protocol):
    def emit(self, events: Sequence[Event]) -> None: ...


class MemorySink:
    """Keeps events in a list: for callers that want to look at what would be emitted."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    def emit(self, events: Sequence[Event]) -> None:
        self.events.extend(events)
