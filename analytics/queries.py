"""Every report's SQL, named and documented, with typed parameters bound in one place.

Queries name their parameters the way ClickHouse does, ``{name:Type}``. ClickHouse 18.16 has no
server-side parameters, so ``bind`` renders each value as a literal of its declared type
(strings escaped by the rules of ClickHouse's string literals, integers checked, DateTime from an
aware datetime, UTC), refusing a missing, extra or mistyped value: no report formats a value
into SQL any other way. ``quanpai sql --query NAME`` runs these by name; docs/analytics.md
lists them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from analytics.errors import QueryError
from analytics.flags import (
    CAMPAIGN_EVENT,
    FLAGS,
    SEND_CHANNELS,
    channel_code,
    channel_name,
    flag_columns,
    name_of,
)
from analytics.schema import (
    CAMPAIGN_MEMBERS_TABLE,
    CAMPAIGNS_TABLE,
    EVENTS_TABLE,
    NEVER,
    ORDERS_TABLE,
)
from infra.clickhouse import ClickHouse

_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*):([A-Za-z0-9]+)\}")
_ESCAPES = {"\\": "\\\\", "'": "\\'", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\0": "\\0"}


def _string(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError("expected a string")
    return "'" + "".join(_ESCAPES.get(c, c) for c in value) + "'"


def _integer(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError("expected an integer")
    return str(value)


def _datetime(value: Any) -> str:
    if not isinstance(value, datetime) or value.tzinfo is None:
        raise TypeError("expected a timezone-aware datetime")
    return f"toDateTime({int(value.timestamp())}, 'UTC')"


_RENDER = {"String": _string, "Int64": _integer, "UInt32": _integer, "DateTime": _datetime}


def placeholders(sql: str) -> dict[str, str]:
    """Parameter name -> ClickHouse type of ``sql``."""
    return {m.group(1): m.group(2) for m in _PLACEHOLDER.finditer(sql)}


def bind(sql: str, params: Mapping[str, Any]) -> str:
    """``sql`` with each ``{name:Type}`` replaced by the typed literal of ``params[name]``."""
    wanted = placeholders(sql)
    missing = sorted(set(wanted) - set(params))
    extra = sorted(set(params) - set(wanted))
    if missing or extra:
        raise QueryError(f"parameter {(missing or extra)[0]}: "
                         + ("missing" if missing else "not used by this query"))
    for name, kind in wanted.items():
        if kind not in _RENDER:
            raise QueryError(f"parameter {name}: type {kind} is not supported")

    def render(match: re.Match[str]) -> str:
        name, kind = match.group(1), match.group(2)
        try:
            return _RENDER[kind](params[name])
        except TypeError as exc:
            raise QueryError(f"parameter {name}: {exc}") from None

    return _PLACEHOLDER.sub(render, sql)


def convert(kind: str, text: str) -> Any:
    """A parameter typed on a command line (``--param since=2026-11-01T00:00+08:00``)."""
    if kind == "String":
        return text
    if kind in ("Int64", "UInt32"):
        return int(text)
    if kind == "DateTime":
        value = datetime.fromisoformat(text)
        if value.tzinfo is None:
            raise ValueError("give a timezone, e.g. 2026-11-11T00:00+08:00")
        return value
    raise ValueError(f"unsupported type {kind}")


@dataclass(frozen=True)
class NamedQuery:
    name: str
    description: str
    sql: str

    def run(self, ch: ClickHouse, **params: Any) -> list[tuple[Any, ...]]:
        return ch.query(bind(self.sql, params))


CAMPAIGN_WINDOWS = NamedQuery(
    "campaign_windows",
    "Per campaign of a merchant: when it started (its first issued, held_out or failed event) "
    "and its last event, as epoch seconds.",
    f"""
SELECT campaign_id, toUInt32(min(ts)) AS started, toUInt32(max(ts)) AS last_event
FROM {EVENTS_TABLE}
WHERE merchant_id = {{merchant:String}} AND campaign_id != ''
  AND event_type IN ('issued', 'held_out', 'failed')
GROUP BY campaign_id
ORDER BY campaign_id""",
)

CAMPAIGN_NAMES = NamedQuery(
    "campaign_names",
    "Name and template of each campaign of a merchant (the campaigns dimension, newest row).",
    f"""
SELECT campaign_id, argMax(name, updated_at), argMax(template_id, updated_at)
FROM {CAMPAIGNS_TABLE}
WHERE merchant_id = {{merchant:String}}
GROUP BY campaign_id""",
)


SEGMENTS = ("no_purchase", "loyal", "active", "lapsing", "dormant")  # RFM segment numbers 0-4


def member_outcomes(dim: str, *, members_only: bool = False) -> str:
    """Per campaign member: group, ``dim`` value, funnel flags, coupon cost, channel used (a
    number, see ``analytics.flags.channel_code``), revenue in the window (y) and before it (x),
    RFM segment before and after (numbers into ``SEGMENTS``).

    One aggregation by member over three streams of rows (``src``): the campaign's members from
    ``campaign_members`` (1: their funnel bits and first targeted time, one row per member and
    month once the table has merged; bits OR-ed and times at their minimum, so rows not merged
    yet count once), its redemptions and refunds once per ``event_id`` (3: ``FINAL`` merges the
    copies of an events row, which share the sorting key, as the table's own merges would) and
    the merchant's orders in the history window (2); members without a campaign event are
    dropped. ``members_only`` also filters the orders by the campaign's members first: worth its
    set when the campaign is small against the merchant's orders."""
    campaign = ("merchant_id = {merchant:String} AND campaign_id = {campaign:String} "
                "AND member_id != ''")
    members = (f"\n          AND member_id IN (SELECT member_id FROM {CAMPAIGN_MEMBERS_TABLE} "
               f"WHERE {campaign})" if members_only else "")
    return f"""
SELECT
    member_id, {flag_columns('flags')},
    redeemed, coupon_cost, {channel_code('flags')} AS send_channel,
    if(targeted = {NEVER}, toDateTime(0, 'UTC'), targeted) AS first_t, redeemed_t,
    y, x, {_segment('last_before', 'f_before', '{start:DateTime}')} AS seg_before,
    {_segment('last_after', 'f_after', '{end:DateTime}')} AS seg_after,
    home_store,
    {dim} AS dim
FROM (
    SELECT member_id,
        groupBitOr(flag) AS flags,
        min(t_first) AS targeted,
        toInt64(countIf(src = 3 AND kind = 'redeemed'))
            - toInt64(countIf(src = 3 AND kind = 'refunded')) AS redeemed,
        sumIf(amount, src = 3 AND kind = 'redeemed')
            - sumIf(amount, src = 3 AND kind = 'refunded') AS coupon_cost,
        minIf(ts, src = 3 AND kind = 'redeemed') AS redeemed_t,
        sumIf(amount, src = 2 AND ts >= {{start:DateTime}} AND ts < {{end:DateTime}}) AS y,
        sumIf(amount, src = 2 AND ts >= {{pre_start:DateTime}} AND ts < {{start:DateTime}}) AS x,
        maxIf(ts, src = 2 AND ts < {{start:DateTime}}) AS last_before,
        countIf(src = 2 AND ts >= {{start:DateTime}} - 7776000 AND ts < {{start:DateTime}})
            AS f_before,
        maxIf(ts, src = 2) AS last_after,
        countIf(src = 2 AND ts >= {{end:DateTime}} - 7776000) AS f_after,
        argMaxIf(text, ts, src = 2 AND ts < {{start:DateTime}}) AS home_store
    FROM (
        SELECT member_id, toUInt8(1) AS src, '' AS kind, '' AS text,
            toDateTime(0, 'UTC') AS ts, toInt64(0) AS amount,
            finalizeAggregation(flags) AS flag, finalizeAggregation(targeted_at) AS t_first
        FROM {CAMPAIGN_MEMBERS_TABLE}
        WHERE {campaign}
        UNION ALL
        SELECT member_id, toUInt8(3), event_type, '', ts, discount_fen,
            toUInt16({CAMPAIGN_EVENT}), {NEVER}
        FROM {EVENTS_TABLE} FINAL
        WHERE {campaign} AND event_type IN ('redeemed', 'refunded')
        UNION ALL
        SELECT member_id, toUInt8(2), '', store_id, ts, amount_fen, toUInt16(0), {NEVER}
        FROM {ORDERS_TABLE}
        WHERE merchant_id = {{merchant:String}}
          AND ts >= {{history_start:DateTime}} AND ts < {{end:DateTime}}{members}
    )
    GROUP BY member_id
    HAVING flags >= {CAMPAIGN_EVENT}
)"""


def _segment(last: str, frequency: str, at: str) -> str:
    """The RFM segment at ``at`` as its number in ``SEGMENTS``: recency of the last order and
    orders in the 90 days before (seconds compared, no division per member)."""
    since = f"toInt64(toUInt32({at})) - toInt64(toUInt32({last}))"
    return (f"multiIf(toUInt32({last}) = 0, 0, {since} <= 2592000 AND {frequency} >= 3, 1, "
            f"{since} <= 2592000, 2, {since} <= 7776000, 3, 4)")


def segment_name(number: str) -> str:
    """The name in ``SEGMENTS`` of a segment number."""
    return name_of(number, SEGMENTS)


# --by: what each member is grouped by (a fixed list: never text from the caller)
DIMENSIONS: dict[str, str] = {
    "campaign": "''",
    "segment": segment_name("seg_before"),
    "channel": f"if(held = 1, '', {channel_name('send_channel', none='none')})",
    "store": "home_store",
    "template": "''",  # one template per campaign: rows are grouped by it after the query
    "day": "toString(toDate(first_t, {tz:String}))",
}


# Per cell (dim, held, segment before, segment after): members, funnel counts, redeemers,
# uses, seconds to redeem (sum), coupon cost, the sums of y, y², x, x², xy, messages per channel.
CELL_SUMS: tuple[tuple[str, str], ...] = (
    ("members", "count()"),
    *((flag, f"sum({flag})") for flag in FLAGS[1:]),
    ("redeemers", "sumIf(1, redeemed > 0)"),
    ("uses", "sum(redeemed)"),
    ("redeem_seconds",
     "sumIf(toInt64(toUInt32(redeemed_t)) - toInt64(toUInt32(first_t)), redeemed > 0)"),
    ("coupon_cost", "sum(coupon_cost)"),
    ("y", "sum(y)"), ("yy", "sum(y * y)"), ("x", "sum(x)"), ("xx", "sum(x * x)"),
    ("xy", "sum(x * y)"),
    *((f"msgs_{c}", f"sumIf(1, (sent = 1 OR in_doubt = 1) AND send_channel = {i + 1})")
      for i, c in enumerate(SEND_CHANNELS)),
)


def roi_cells_sql(by: str, *, members_only: bool = False) -> str:
    """The campaign's members summed per ``by`` value, group and segment movement: the report
    folds these few rows into its groups and its movement table (one pass over the members).
    Segments are grouped as numbers and named on the few cells."""
    sums = ",\n    ".join(f"{expr} AS s_{name}" for name, expr in CELL_SUMS)
    named = ", ".join(f"s_{name}" for name, _ in CELL_SUMS)
    return f"""
SELECT dim, held, {segment_name('seg_b')} AS seg_before, {segment_name('seg_a')} AS seg_after,
    {named}
FROM (
SELECT dim, held, seg_before AS seg_b, seg_after AS seg_a,
    {sums}
FROM ({member_outcomes(DIMENSIONS[by], members_only=members_only)})
GROUP BY dim, held, seg_b, seg_a
)
ORDER BY dim, held, seg_before, seg_after"""


def roi_groups_sql(by: str) -> str:
    sums = ", ".join(f"sum(s_{name}) / 86400" if name == "redeem_seconds" else f"sum(s_{name})"
                     for name, _ in CELL_SUMS)
    return f"""
SELECT dim, held, {sums}
FROM ({roi_cells_sql(by)})
GROUP BY dim, held
ORDER BY dim, held"""


def roi_groups(by: str) -> NamedQuery:
    return NamedQuery(
        f"roi_groups_by_{by}",
        f"ROI sufficient statistics of one campaign by {by}: per value and group (held 0/1), "
        "members, funnel counts, redeemers, uses, days to redeem (sum), coupon cost, sums of y, "
        "y², x, x², xy (y: revenue in the window, x: before it) and messages per channel.",
        roi_groups_sql(by),
    )


ROI_MOVEMENT = NamedQuery(
    "roi_movement",
    "RFM segment movement of one campaign's members: group (held 0/1), segment at the start, "
    "segment at the end of the attribution window, members.",
    f"""
SELECT held, seg_before, seg_after, sum(s_members)
FROM ({roi_cells_sql("campaign")})
GROUP BY held, seg_before, seg_after
ORDER BY held, seg_before, seg_after""",
)

ORDERS_BY_DAY = NamedQuery(
    "orders_by_day",
    "Orders and revenue (fen) per merchant-local day since a time.",
    f"""
SELECT toString(toDate(ts, {{tz:String}})) AS day, count() AS orders, sum(amount_fen) AS revenue
FROM {ORDERS_TABLE}
WHERE merchant_id = {{merchant:String}} AND ts >= {{since:DateTime}}
GROUP BY day ORDER BY day""",
)

EVENTS_BY_TYPE = NamedQuery(
    "events_by_type",
    "Distinct events per type of one campaign.",
    f"""
SELECT event_type, uniqExact(event_id) FROM {EVENTS_TABLE}
WHERE merchant_id = {{merchant:String}} AND campaign_id = {{campaign:String}}
GROUP BY event_type ORDER BY event_type""",
)

CAMPAIGN_COUNTS = NamedQuery(
    "campaign_counts",
    "Per campaign of a merchant (campaign '' for all): members issued, sent, delivered, failed, "
    "held out; uses redeemed net of refunds; order amount, discount and coupon cost net of "
    "refunds (fen).",
    f"""
SELECT
    cid,
    uniqExactIf(mid, etype = 'issued') AS issued,
    uniqExactIf(mid, etype = 'sent') AS sent,
    uniqExactIf(mid, etype = 'delivered') AS delivered,
    uniqExactIf(mid, etype = 'failed') AS failed,
    uniqExactIf(mid, etype = 'held_out') AS held_out,
    toInt64(countIf(etype = 'redeemed')) - toInt64(countIf(etype = 'refunded')) AS redeemed,
    sumIf(amount, etype = 'redeemed') - sumIf(amount, etype = 'refunded') AS order_amount_fen,
    sumIf(discount, etype = 'redeemed') - sumIf(discount, etype = 'refunded') AS discount_fen,
    sumIf(discount, etype = 'redeemed') - sumIf(discount, etype = 'refunded') AS cost_fen
FROM (
    SELECT
        event_id,
        any(event_type) AS etype,
        any(campaign_id) AS cid,
        any(member_id) AS mid,
        any(amount_fen) AS amount,
        any(discount_fen) AS discount
    FROM {EVENTS_TABLE}
    WHERE merchant_id = {{merchant:String}} AND campaign_id != ''
      AND ({{campaign:String}} = '' OR campaign_id = {{campaign:String}})
    GROUP BY event_id
)
GROUP BY cid
ORDER BY cid
""",
)


NAMED: dict[str, NamedQuery] = {
    q.name: q for q in (CAMPAIGN_COUNTS, CAMPAIGN_WINDOWS, CAMPAIGN_NAMES, ROI_MOVEMENT,
                        ORDERS_BY_DAY, EVENTS_BY_TYPE, *(roi_groups(by) for by in DIMENSIONS))
}
