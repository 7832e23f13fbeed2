"""Delivery receipts counted per campaign and channel, for ``campaign status``, the API and the
console: ``delivered`` beside ``sent`` without a trip to ClickHouse.

The callback receiver takes each receipt once (``channels.receipts``: a repeated push finds it
taken) and only then emits its event, so counting what is emitted counts each receipt once. The
counts go in the same MULTI/EXEC as the events: a connection lost before EXEC stores neither,
so the counts agree with the events the analyst reads later.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import redis

from analytics.events import Event
from analytics.stream import RedisStreamSink
from dispatcher.campaigns import receipts_key

# a receipt that says the message did not arrive is not a failed send (those are in counts)
KIND = {"delivered": "delivered", "failed": "undelivered"}


class ReceiptCountingSink:
    """An event sink for the callback receiver: appends the events to the stream and adds them
    to their campaigns' receipt counts in one MULTI/EXEC."""

    def __init__(self, *, client: redis.Redis, events: RedisStreamSink) -> None:
        self._client = client
        self._events = events

    def emit(self, events: Sequence[Event]) -> None:
        if not events:
            return
        pipe = self._client.pipeline(transaction=True)
        self._events.emit_in(pipe, events)
        counted = Counter((e.campaign_id, KIND[e.event_type], e.channel) for e in events
                          if e.event_type in KIND and e.campaign_id)
        for (campaign_id, kind, channel), n in counted.items():
            pipe.hincrby(receipts_key(campaign_id), f"{kind}:{channel}", n)
        pipe.execute()
