"""The expiry sweep: one ``expired`` event per coupon whose validity ended unused.

Reads the store through ``catalog.holdings.coupon_facts`` (nothing is written but a marker) and
emits through the catalog's event sink. A marker per merchant remembers the last day swept, so a
daily or hourly run emits each lapsed coupon once; the event id is the coupon's
(template, campaign, member) — one coupon per campaign and member — so a run repeated after a
crash before the marker was written repeats ids the ROI queries count once.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, tzinfo

import redis

from analytics.events import Event, EventSink
from catalog.holdings import coupon_facts

LAPSED_STATES = ("active",)  # unused and still in the member's wallet


def marker_key(merchant_id: str) -> str:
    return f"qp:{{{merchant_id}}}:expired_through"


def sweep_expired(*, client: redis.Redis, sink: EventSink, merchant_id: str, today: date,
                  tz: tzinfo) -> int:
    """Emit ``expired`` for coupons whose last valid day is before ``today`` (merchant-local)
    and after the last sweep; returns how many were emitted."""
    raw = client.get(marker_key(merchant_id))
    swept = date.fromisoformat(raw.decode()) if isinstance(raw, bytes) else date.min
    facts = coupon_facts(client, merchant_id)
    events = []
    for member, template, campaign, state, expires in zip(
            facts["member_id"], facts["template_id"], facts["campaign_id"], facts["state"],
            facts["expires"], strict=True):
        if state not in LAPSED_STATES or expires is None or not swept <= expires < today:
            continue
        lapsed = datetime.combine(expires + timedelta(days=1), time(), tz)
        events.append(Event(
            event_id=f"expired:{merchant_id}:{template}:{campaign}:{member}",
            event_type="expired", merchant_id=merchant_id, campaign_id=campaign,
            member_id=member, reason=template, ts=lapsed))
    for first in range(0, len(events), 1000):
        sink.emit(events[first:first + 1000])
    client.set(marker_key(merchant_id), today.isoformat())
    return len(events)
