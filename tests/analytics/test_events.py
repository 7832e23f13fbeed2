"""The event model's constructors agree: a campaign worker's events are the events
``Event(...)`` makes, under the same checks."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from analytics.events import Event, campaign_event_maker, decode_events, encode_events


def test_campaign_event_maker_makes_the_events_event_makes() -> None:
    ts = datetime(2026, 12, 4, 10, 0, tzinfo=UTC)
    make = campaign_event_maker(merchant_id="m1", campaign_id="c9", ts=ts)
    made = [make("issued", "u1", "CODE1", "", "extended"), make("sent", "u2", "C2", "sms"),
            make("failed", "u3", "", "wechat_mass", "43004")]
    assert made == [
        Event(event_id="issued:c9:u1", event_type="issued", merchant_id="m1", campaign_id="c9",
              member_id="u1", coupon_code="CODE1", reason="extended", ts=ts),
        Event(event_id="sent:c9:u2", event_type="sent", merchant_id="m1", campaign_id="c9",
              member_id="u2", coupon_code="C2", channel="sms", ts=ts),
        Event(event_id="failed:c9:u3", event_type="failed", merchant_id="m1", campaign_id="c9",
              member_id="u3", channel="wechat_mass", reason="43004", ts=ts),
    ]
    assert all(type(e) is Event for e in made)
    assert decode_events(encode_events(made)) == made


def test_campaign_event_maker_refuses_what_event_refuses() -> None:
    make = campaign_event_maker(merchant_id="m1", campaign_id="c9", ts=datetime.now(UTC))
    with pytest.raises(ValueError, match="unknown event_type"):
        make("clicked", "u1")
    with pytest.raises(ValueError, match="timezone-aware"):
        campaign_event_maker(merchant_id="m1", campaign_id="c9", ts=datetime(2026, 12, 4))
