"""A campaign member's funnel as bits: how one event sets them, and how a report reads them.

Every campaign event of a member becomes a ``UInt16`` (``FLAG``); OR-ed together they are the
member's funnel: bit 256 says the member has a campaign event at all (orders carry 0), bits 1 to
128 the funnel steps (``FLAGS``), bits 512 and up the channels that carried a message (sent or
in doubt). OR gives the same answer however often an event is counted, so the bits survive an
event stored twice; and no string is kept per member while aggregating.

The ``campaign_members`` table stores these bits (schema version 7): changing what a bit means
needs a migration that rebuilds that table, not only a new query.
"""

from __future__ import annotations

SEND_CHANNELS = ("wechat", "wechat_mass", "sms", "alipay", "alipay_cash")
FLAGS = ("held", "issued", "sent", "delivered", "failed_send", "unreachable", "not_issued",
         "in_doubt")
CAMPAIGN_EVENT = 256  # set by every campaign event

_CHANNEL_BITS = " + ".join(
    f"if(channel = '{c}', {512 << i}, 0)" for i, c in enumerate(SEND_CHANNELS))
# the bits of one events row (its event_type and channel)
FLAG = f"""toUInt16({CAMPAIGN_EVENT} + multiIf(event_type = 'held_out', 1,
    event_type = 'issued', 2, event_type = 'sent', 4, event_type = 'delivered', 8,
    event_type = 'failed' AND channel = '', 64, event_type = 'failed' AND channel = 'none', 32,
    event_type = 'failed', 16, event_type = 'in_doubt', 128, 0)
    + if(event_type IN ('sent', 'in_doubt'), {_CHANNEL_BITS}, 0))"""

# the events that say when the campaign first targeted the member (its start, days to redeem)
TARGETED = "event_type IN ('issued', 'held_out', 'failed')"


def flag_columns(flags: str) -> str:
    """One 0/1 column per funnel step of the bits in ``flags``, named as in ``FLAGS``."""
    return ", ".join(f"bitAnd({flags}, {1 << i}) != 0 AS {name}" for i, name in enumerate(FLAGS))


def channel_code(flags: str) -> str:
    """The channel of the member's message as a number: 0 none, ``i + 1`` for
    ``SEND_CHANNELS[i]``, the first in that order if there were several."""
    return "multiIf({}, 0)".format(", ".join(
        f"bitAnd({flags}, {512 << i}) != 0, {i + 1}" for i in range(len(SEND_CHANNELS))))


def name_of(number: str, names: tuple[str, ...]) -> str:
    """SQL for the name a 0-based ``number`` stands for in ``names`` (fixed words, never text
    from a caller)."""
    listed = ", ".join(f"'{name}'" for name in names)
    return f"arrayElement([{listed}], {number} + 1)"


def channel_name(code: str, *, none: str) -> str:
    """The channel name of ``channel_code``'s number (``none`` for 0)."""
    return name_of(code, (none, *SEND_CHANNELS))
