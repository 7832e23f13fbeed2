"""Segment conditions an operator writes in YAML, parsed into a tree and evaluated on members.

    where:
      all:
        - rfm_segment: [At Risk, Can't Lose Them]
        - tier: [gold, platinum]
        - points: {gte: 1000}
        - any: [{reachable: wechat}, {reachable: sms}]
        - not: {birthday_within_days: 7}

A mapping with several keys means all of them. Leaves (``FIELDS`` lists them) are RFM segments,
8-class names, codes, scores and clusters, member attributes (tier, points, balance, spend, home
store, registration date), dormancy, birthdays (solar or lunar, per member) and reachability or
consent by channel, and the behaviour leaves of ``segmentation.behaviour`` (windowed spend and
orders, categories, stores, tags, coupons); ``all``/``any``/``not`` combine them. Every
time-based leaf counts from the evaluation day (as_of). Parsing checks everything before any
member is looked at, and a mistake raises ``InvalidRule`` with the path of the field, e.g.
``segments[1].where.all[2].points.gte``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from segmentation.behaviour import BEHAVIOUR, behaviour_mask, parse_behaviour
from segmentation.errors import InvalidRule
from segmentation.windows import parse_date

Mask = npt.NDArray[np.bool_]

CHANNELS = ("sms", "wechat", "alipay")
TIERS = ("normal", "silver", "gold", "platinum")
# numeric leaf -> column of the audience frame
NUMERIC = {
    "points": "points",
    "balance_fen": "balance_fen",
    "total_spend_fen": "monetary_total",
    "frequency": "frequency",
    "recency_days": "recency_days",
}
COMPARISONS = ("gt", "gte", "lt", "lte", "eq", "between")
NAMED = ("rfm_segment", "eight_class", "rfm_code", "cluster")
SCORES = ("r_score", "f_score", "m_score")
OTHER = ("tier", "home_store", "registered_before", "registered_after", "dormant_days",
         "birthday_within_days", "birthday_today", "reachable", "consent", "has_purchased")
FIELDS = (*NAMED, *SCORES, *NUMERIC, *OTHER, *BEHAVIOUR)


@dataclass(frozen=True)
class Leaf:
    """One test on one field; ``path`` is where it was written, for errors."""

    field: str
    value: Any
    path: str


@dataclass(frozen=True)
class AllOf:
    """Every item holds."""

    items: tuple[Condition, ...]


@dataclass(frozen=True)
class AnyOf:
    """At least one item holds."""

    items: tuple[Condition, ...]


@dataclass(frozen=True)
class Not:
    """The item does not hold."""

    item: Condition


Condition = Leaf | AllOf | AnyOf | Not


@dataclass(frozen=True)
class Vocabulary:
    """Names a condition may use: segment names of the chosen map, cluster numbers and labels."""

    rfm_segments: frozenset[str]
    eight_classes: frozenset[str]
    rfm_codes: frozenset[str]
    bins: int
    clusters: bool


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _int(value: Any, path: str, *, low: int | None = None, high: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidRule(path, f"must be a whole number, got {value!r}")
    if (low is not None and value < low) or (high is not None and value > high):
        raise InvalidRule(path, f"must be between {low} and {high}, got {value}")
    return value


def _comparison(value: Any, path: str) -> dict[str, Any]:
    if not isinstance(value, dict) or not value:
        raise InvalidRule(
            path, f"must be a comparison such as {{gte: 100}} ({', '.join(COMPARISONS)})"
        )
    out: dict[str, Any] = {}
    for op, bound in value.items():
        where = f"{path}.{op}"
        if op not in COMPARISONS:
            raise InvalidRule(where, f"unknown comparison; use one of {', '.join(COMPARISONS)}")
        bounds = bound if op == "between" else [bound]
        if op == "between" and (not isinstance(bound, list) or len(bound) != 2):
            raise InvalidRule(where, "must be a list of two numbers [low, high]")
        for b in bounds:
            if isinstance(b, bool) or not isinstance(b, int | float):
                raise InvalidRule(where, f"must be a number, got {b!r}")
        out[op] = bound
    return out


def _leaf(field: str, value: Any, path: str, vocab: Vocabulary) -> Leaf:
    if field in ("rfm_segment", "eight_class", "rfm_code"):
        known = {"rfm_segment": vocab.rfm_segments, "eight_class": vocab.eight_classes,
                 "rfm_code": vocab.rfm_codes}[field]
        names = [str(v) for v in _as_list(value)]
        for name in names:
            if name not in known:
                raise InvalidRule(path, f"{name!r} is not one of {', '.join(sorted(known))}")
        return Leaf(field, frozenset(names), path)
    if field == "cluster":
        if not vocab.clusters:
            raise InvalidRule(path, "needs a clusters: section in the rules file")
        return Leaf(field, frozenset(_int(v, path, low=0) for v in _as_list(value)), path)
    if field in SCORES:
        scores: set[int] = set()
        for item in _as_list(value):
            low, _, high = str(item).partition("-")
            try:
                a, b = int(low), int(high or low)
            except ValueError:
                raise InvalidRule(path, f"expected a score, 4-5 or a list, got {item!r}") from None
            if not 1 <= a <= b <= vocab.bins:
                raise InvalidRule(path, f"scores lie within 1-{vocab.bins}, got {item!r}")
            scores.update(range(a, b + 1))
        return Leaf(field, frozenset(scores), path)
    if field in NUMERIC:
        return Leaf(field, _comparison(value, path), path)
    if field == "tier":
        tiers = [str(v) for v in _as_list(value)]
        for tier in tiers:
            if tier not in TIERS:
                raise InvalidRule(path, f"{tier!r} is not a tier ({', '.join(TIERS)})")
        return Leaf(field, frozenset(tiers), path)
    if field == "home_store":
        return Leaf(field, frozenset(_int(v, path, low=0) for v in _as_list(value)), path)
    if field in ("registered_before", "registered_after"):
        return Leaf(field, parse_date(value, path), path)
    if field == "dormant_days":
        return Leaf(field, _int(value, path, low=1, high=36_500), path)
    if field == "birthday_within_days":
        return Leaf(field, _int(value, path, low=0, high=366), path)
    if field in ("birthday_today", "has_purchased"):
        if not isinstance(value, bool):
            raise InvalidRule(path, f"must be true or false, got {value!r}")
        return Leaf(field, value, path)
    if field in BEHAVIOUR:
        return Leaf(field, parse_behaviour(field, value, path), path)
    if field in ("reachable", "consent"):
        channels = [str(v) for v in _as_list(value)]
        for channel in channels:
            if channel not in CHANNELS:
                raise InvalidRule(path, f"{channel!r} is not a channel ({', '.join(CHANNELS)})")
        return Leaf(field, frozenset(channels), path)
    raise InvalidRule(path, f"unknown condition; use one of {', '.join(FIELDS)}, all, any, not")


def parse_condition(data: Any, path: str, vocab: Vocabulary) -> Condition:
    """Parse one condition (a mapping) into a tree; ``path`` names it in errors."""
    if not isinstance(data, dict) or not data:
        raise InvalidRule(path, "must be a mapping such as {tier: gold}")
    parts: list[Condition] = []
    for key, value in data.items():
        where = f"{path}.{key}"
        if key in ("all", "any"):
            if not isinstance(value, list) or not value:
                raise InvalidRule(where, "must be a non-empty list of conditions")
            items = tuple(parse_condition(v, f"{where}[{i}]", vocab) for i, v in enumerate(value))
            parts.append(AllOf(items) if key == "all" else AnyOf(items))
        elif key == "not":
            parts.append(Not(parse_condition(value, where, vocab)))
        else:
            parts.append(_leaf(str(key), value, where, vocab))
    return parts[0] if len(parts) == 1 else AllOf(tuple(parts))


def _compare(values: pd.Series, spec: dict[str, Any]) -> Mask:
    numbers = values.to_numpy(dtype=np.float64, na_value=np.nan)
    mask = ~np.isnan(numbers)
    with np.errstate(invalid="ignore"):
        for op, bound in spec.items():
            if op == "between":
                mask &= (numbers >= bound[0]) & (numbers <= bound[1])
            else:
                mask &= {"gt": np.greater, "gte": np.greater_equal, "lt": np.less,
                         "lte": np.less_equal, "eq": np.equal}[op](numbers, bound)
    return _bool(mask)


def _present(frame: pd.DataFrame, column: str) -> Mask:
    if column not in frame.columns:
        return np.zeros(len(frame), bool)
    return _bool(frame[column].notna().to_numpy())


def _flag(frame: pd.DataFrame, column: str) -> Mask:
    if column not in frame.columns:
        return np.zeros(len(frame), bool)
    return _bool(frame[column].astype("boolean").fillna(False).to_numpy(dtype=bool))


def reachable(frame: pd.DataFrame, channel: str) -> Mask:
    """Members a channel can reach now: an address on file and consent given."""
    if channel == "sms":
        return _present(frame, "phone") & _flag(frame, "consent_sms")
    if channel == "wechat":
        return (_present(frame, "wechat_openid") & _flag(frame, "wechat_subscribed")
                & _flag(frame, "consent_wechat"))
    return _present(frame, "alipay_user_id") & _flag(frame, "consent_alipay")


def _need(frame: pd.DataFrame, column: str, leaf: Leaf) -> pd.Series:
    if column not in frame.columns:
        raise InvalidRule(leaf.path, f"the members data has no {column} column")
    return frame[column]


def _bool(values: Any) -> Mask:
    return np.asarray(values, dtype=bool)


def _leaf_mask(leaf: Leaf, frame: pd.DataFrame, today_day: int) -> Mask:
    field, value = leaf.field, leaf.value
    if field in ("rfm_segment", "eight_class"):
        english = frame[field].isin(value).to_numpy()
        return _bool(english | frame[f"{field}_zh"].isin(value).to_numpy())
    if field in ("rfm_code", "cluster", "tier", "home_store", *SCORES):
        column = {"cluster": "cluster", "home_store": "home_store_id"}.get(field, field)
        return _bool(_need(frame, column, leaf).isin(list(value)).to_numpy())
    if field in NUMERIC:
        return _bool(_compare(_need(frame, NUMERIC[field], leaf), value))
    if field in ("registered_before", "registered_after"):
        registered = _need(frame, "registered_day", leaf).to_numpy(dtype=np.float64)
        bound = (value - dt.date(1970, 1, 1)).days
        with np.errstate(invalid="ignore"):
            before = registered < bound
            return _bool(before if field == "registered_before" else registered >= bound)
    if field == "dormant_days":
        last = frame["last_day"].to_numpy(dtype=np.float64, na_value=np.nan)
        since = np.where(np.isnan(last), _need(frame, "registered_day", leaf).to_numpy(
            dtype=np.float64, na_value=np.nan), last)
        with np.errstate(invalid="ignore"):
            return _bool(today_day - since >= value)
    if field in ("birthday_within_days", "birthday_today"):
        until = _need(frame, "days_to_birthday", leaf).to_numpy(dtype=np.float64, na_value=np.nan)
        limit = value if field == "birthday_within_days" else 0
        with np.errstate(invalid="ignore"):
            hit = until <= limit
        return _bool(hit if value is not False else ~hit)
    if field == "has_purchased":
        bought = frame["frequency"].notna().to_numpy()
        return _bool(bought if value else ~bought)
    if field == "reachable":
        return _bool(np.logical_or.reduce([reachable(frame, c) for c in value]))
    if field == "consent":
        return _bool(np.logical_or.reduce([_flag(frame, f"consent_{c}") for c in value]))
    if field in BEHAVIOUR:
        as_of = dt.date(1970, 1, 1) + dt.timedelta(days=today_day)
        return behaviour_mask(field, value, leaf.path, frame, as_of)
    raise InvalidRule(leaf.path, "unknown condition")


def evaluate(condition: Condition, frame: pd.DataFrame, *, today_day: int) -> Mask:
    """Which members (rows of the audience frame) satisfy the condition."""
    if isinstance(condition, Leaf):
        return _leaf_mask(condition, frame, today_day)
    if isinstance(condition, Not):
        return ~evaluate(condition.item, frame, today_day=today_day)
    masks = [evaluate(c, frame, today_day=today_day) for c in condition.items]
    combine = np.logical_and if isinstance(condition, AllOf) else np.logical_or
    return _bool(combine.reduce(masks))


def leaves(condition: Condition) -> list[Leaf]:
    """Every leaf of a condition tree (to compute the columns they read)."""
    if isinstance(condition, Leaf):
        return [condition]
    if isinstance(condition, Not):
        return leaves(condition.item)
    return [leaf for c in condition.items for leaf in leaves(c)]


def fields_used(condition: Condition) -> set[str]:
    """The leaf fields a condition uses (to compute only what it needs, e.g. birthdays)."""
    if isinstance(condition, Leaf):
        return {condition.field}
    if isinstance(condition, Not):
        return fields_used(condition.item)
    return set().union(*(fields_used(c) for c in condition.items))
