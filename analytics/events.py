"""The event model: every state change an analyst needs (DESIGN.md §5).

Events travel in batches: one Redis stream entry carries many events as a compact JSON array of
rows in ``COLUMNS`` order, because one entry per coupon would cost a round trip per member.
``event_id`` is deterministic where the fact is unique (``issued:<campaign>:<member>``), so an
event emitted twice after a retry is counted once (ROI queries count distinct ids).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, NamedTuple, Protocol

import msgspec

EVENT_TYPES = frozenset(
    {
        "issued", "sent", "delivered", "failed", "in_doubt", "held_out", "redeemed",
        "refunded", "expired", "points_granted", "printed",
    }
)


class _EventFields(NamedTuple):
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
    ts: datetime = datetime.min.replace(tzinfo=UTC)  # ``Event`` puts the time of creation


_tuple_new = tuple.__new__


class Event(_EventFields):
    """One fact, immutable, its values in ``COLUMNS`` order.

    A named tuple rather than a frozen dataclass: a worker makes two or three of these a
    coupon, and a frozen dataclass's ``__init__`` (one ``object.__setattr__`` a field) cost
    about 2.3 µs each against 0.7 µs here, with the same checks."""

    __slots__ = ()

    def __new__(
        cls, event_id: str, event_type: str, merchant_id: str, campaign_id: str = "",
        member_id: str = "", coupon_code: str = "", channel: str = "", store_id: str = "",
        order_id: str = "", amount_fen: int = 0, discount_fen: int = 0, cost_fen: int = 0,
        reason: str = "", ts: datetime | None = None,
    ) -> Event:
        if event_type not in EVENT_TYPES:
            raise ValueError(f"unknown event_type {event_type!r}")
        if ts is None:
            ts = datetime.now(UTC)
        elif ts.tzinfo is None:
            raise ValueError("event ts must be timezone-aware")
        return _tuple_new(cls, (event_id, event_type, merchant_id, campaign_id, member_id,
                                coupon_code, channel, store_id, order_id, amount_fen,
                                discount_fen, cost_fen, reason, ts))


COLUMNS: tuple[str, ...] = Event._fields


class CampaignEventMaker(Protocol):
    def __call__(self, kind: str, member_id: str, code: str = "", channel: str = "",
                 reason: str = "") -> Event: ...


def campaign_event_maker(*, merchant_id: str, campaign_id: str,
                         ts: datetime) -> CampaignEventMaker:
    """Events about members of one campaign at one time, id ``<kind>:<campaign>:<member>``.

    The same events ``Event(...)`` makes, under the same checks, without its keyword
    arguments: a campaign worker makes two a coupon, and building each through ``Event(...)``
    and a keyword helper cost about 3.8 µs against 1.4 µs here."""
    if ts.tzinfo is None:
        raise ValueError("event ts must be timezone-aware")

    def make(kind: str, member_id: str, code: str = "", channel: str = "",
             reason: str = "") -> Event:
        if kind not in EVENT_TYPES:
            raise ValueError(f"unknown event_type {kind!r}")
        return _tuple_new(Event, (f"{kind}:{campaign_id}:{member_id}", kind, merchant_id,
                                  campaign_id, member_id, code, channel, "", "", 0, 0, 0,
                                  reason, ts))

    return make


_encode = msgspec.json.Encoder().encode


def event_row(event: Event) -> tuple[Any, ...]:
    """The event's values in ``COLUMNS`` order."""
    return tuple(event)


def encode_events(events: Sequence[Event]) -> bytes:
    """Events as one JSON array of rows (``ts`` as epoch milliseconds)."""
    rows = []
    last_ts: datetime | None = None
    last_ms = 0
    for event in events:
        row: list[Any] = list(event)
        ts = row[-1]
        if ts is not last_ts:  # a batch's events mostly share one time
            last_ts, last_ms = ts, int(ts.timestamp() * 1000)
        row[-1] = last_ms
        rows.append(row)
    # msgspec writes the same bytes as json.dumps(ensure_ascii=False, compact) at a tenth of
    # the cost (1.7 ms against 0.13 ms for 1,000 rows with Chinese text)
    return _encode(rows)


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
