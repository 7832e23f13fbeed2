"""Conditions on behaviour over time: windowed spend and orders, categories and stores, first
purchase and registration, birthday month, tags and coupons.

Parsing here turns each leaf into a small frozen spec; the audience step computes the columns the
specs name (window aggregates from the transactions source, coupon columns from the catalog's
coupon facts, tag membership, birthday months) and ``leaf_mask`` only compares columns, so the
same tree gives the same members whether the aggregates came from pandas or from ClickHouse.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd

from segmentation.errors import InvalidRule
from segmentation.windows import (
    FILTER_KEYS,
    WINDOW_KEYS,
    Bare,
    TxFilter,
    Window,
    parse_comparison,
    parse_filter,
    parse_window,
)

Mask = npt.NDArray[np.bool_]
MEASURES = ("spend", "spend_yuan", "spend_fen", "orders", "avg_ticket", "avg_ticket_yuan",
            "avg_ticket_fen")
COUPONS = ("holds_coupon", "redeemed_coupon", "never_redeemed_coupon", "coupons_received")
BEHAVIOUR = (*MEASURES, "bought", "never_bought", "first_purchase_within_days",
             "registered_within_days", "birthday_month", "tag", "not_tag", *COUPONS)
TAG_NAME = re.compile(r"^[^\s:{}]{1,32}$")
_RELATIVE_MONTHS = {"current": 0, "this": 0, "本月": 0, "当月": 0, "next": 1, "下月": 1,
                    "下个月": 1}


@dataclass(frozen=True)
class Measure:
    """Spend, orders or average ticket over the transactions a filter keeps, compared."""

    measure: Literal["spend", "orders", "avg_ticket"]
    filter: TxFilter
    compare: tuple[tuple[str, Any], ...]


@dataclass(frozen=True)
class CouponSpec:
    """A coupon condition: which coupons (templates, campaigns) and what about them."""

    kind: Literal["holds", "redeemed", "received"]
    templates: frozenset[str] = frozenset()
    campaigns: frozenset[str] = frozenset()
    window: Window = field(default_factory=Window)
    expires_within_days: int | None = None
    compare: tuple[tuple[str, Any], ...] = ()

    @property
    def column(self) -> str:
        text = repr((self.kind, sorted(self.templates), sorted(self.campaigns), self.window,
                     self.expires_within_days))
        return "c" + hashlib.blake2b(text.encode(), digest_size=5).hexdigest()


def spend_column(f: TxFilter) -> str:
    """The audience column holding the spend (fen) of a filter's transactions."""
    return f"{f.key}_spend"


def orders_column(f: TxFilter) -> str:
    """The audience column holding the number of a filter's transactions."""
    return f"{f.key}_orders"


def birthday_month_column(year: int, month: int) -> str:
    return f"birthday_in_{year}_{month:02d}"


def tag_column(tag: str) -> str:
    return f"tag:{tag}"


def _mapping(value: Any, path: str, example: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise InvalidRule(path, f"must be a mapping such as {example}")
    return value


def _days(value: Any, path: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 36_500:
        raise InvalidRule(path, f"must be a whole number of days 0-36500, got {value!r}")
    return value


def _names(value: Any, path: str) -> frozenset[str]:
    items = value if isinstance(value, list) else [value]
    names = {str(v).strip() for v in items if not isinstance(v, bool | dict | list)}
    if not items or len(names) != len(items) or not all(names):
        raise InvalidRule(path, f"expected a name or a list of names, got {value!r}")
    return frozenset(names)


def _measure(field: str, value: Any, path: str) -> Measure:
    spec = _mapping(value, path, "{last: 90d, gte: 200元}")
    base = field.removesuffix("_yuan").removesuffix("_fen")
    money: Bare | None = None
    if base in ("spend", "avg_ticket"):
        money = ("yuan" if field.endswith("_yuan") else "fen" if field.endswith("_fen")
                 else "refuse")
    compare = parse_comparison(spec, path, money=money, skip=(*WINDOW_KEYS, *FILTER_KEYS))
    kind: Literal["spend", "orders", "avg_ticket"] = (
        "spend" if base == "spend" else "orders" if base == "orders" else "avg_ticket")
    return Measure(kind, parse_filter(spec, path), tuple(compare.items()))


def _coupon(field: str, value: Any, path: str) -> CouponSpec:
    if value is True and field in ("holds_coupon", "redeemed_coupon", "never_redeemed_coupon"):
        value = {}
    spec = _mapping(value, path, "{template: t3, expires_within_days: 3}")
    allowed = {"template", "templates", "campaign", "campaigns"}
    if field == "holds_coupon":
        allowed.add("expires_within_days")
    else:
        allowed.update(WINDOW_KEYS)
    if field == "coupons_received":
        allowed.update(("gt", "gte", "lt", "lte", "eq", "between"))
    for key in spec:
        if key not in allowed:
            raise InvalidRule(f"{path}.{key}", f"unknown key; expected one of "
                              f"{', '.join(sorted(allowed))}")
    picked: dict[str, frozenset[str]] = {}
    for plural, singular in (("templates", "template"), ("campaigns", "campaign")):
        for key in (plural, singular):
            if key in spec:
                picked[plural] = _names(spec[key], f"{path}.{key}")
    templates = picked.get("templates", frozenset())
    campaigns = picked.get("campaigns", frozenset())
    if field == "holds_coupon":
        within = spec.get("expires_within_days")
        return CouponSpec("holds", templates, campaigns, expires_within_days=(
            None if within is None else _days(within, f"{path}.expires_within_days")))
    window = parse_window(spec, path)
    if field == "coupons_received":
        has_compare = any(k in spec for k in ("gt", "gte", "lt", "lte", "eq")) or (
            "between" in spec and window.ago is None and window.dates is None)
        compare = (parse_comparison(spec, path, money=None, skip=(*WINDOW_KEYS, "template",
                                    "templates", "campaign", "campaigns"))
                   if has_compare else {"gte": 1})
        return CouponSpec("received", templates, campaigns, window, compare=tuple(compare.items()))
    return CouponSpec("redeemed", templates, campaigns, window)


def _birthday_months(value: Any, path: str) -> tuple[tuple[str, int], ...]:
    items = value if isinstance(value, list) else [value]
    out: list[tuple[str, int]] = []
    for item in items:
        if isinstance(item, int) and not isinstance(item, bool) and 1 <= item <= 12:
            out.append(("month", item))
        elif str(item).strip().lower() in _RELATIVE_MONTHS:
            out.append(("relative", _RELATIVE_MONTHS[str(item).strip().lower()]))
        else:
            raise InvalidRule(path, f"expected current, next or a month 1-12, got {item!r}")
    if not out:
        raise InvalidRule(path, "name at least one month")
    return tuple(out)


def parse_behaviour(field: str, value: Any, path: str) -> Any:
    """The spec of one behaviour leaf (``field`` is one of ``BEHAVIOUR``)."""
    if field in MEASURES:
        return _measure(field, value, path)
    if field in ("bought", "never_bought"):
        spec = _mapping(value, path, "{categories: [咖啡], last: 30d}")
        for key in spec:
            if key not in (*WINDOW_KEYS, *FILTER_KEYS):
                raise InvalidRule(f"{path}.{key}", "unknown key; expected a window (last, "
                                  "between, from, to) or stores/categories/skus")
        return Measure("orders", parse_filter(spec, path), (("gte", 1),))
    if field in ("first_purchase_within_days", "registered_within_days"):
        days = _days(value, path)
        if days < 1:
            raise InvalidRule(path, "must be at least 1 day")
        return days
    if field == "birthday_month":
        return _birthday_months(value, path)
    if field in ("tag", "not_tag"):
        names = _names(value, path)
        for name in names:
            if not TAG_NAME.match(name):
                raise InvalidRule(path, f"{name!r} is not a tag name (1-32 characters, no "
                                  "spaces, ':', '{' or '}')")
        return names
    return _coupon(field, value, path)


def resolve_months(spec: tuple[tuple[str, int], ...], as_of: dt.date) -> list[tuple[int, int]]:
    """(year, month) pairs a birthday_month leaf means on ``as_of``."""
    out = []
    for kind, n in spec:
        if kind == "month":
            out.append((as_of.year, n))
        else:
            index = as_of.year * 12 + as_of.month - 1 + n
            out.append((index // 12, index % 12 + 1))
    return out


def _compare(values: npt.NDArray[np.float64], spec: tuple[tuple[str, Any], ...]) -> Mask:
    mask = ~np.isnan(values)
    with np.errstate(invalid="ignore"):
        for op, bound in spec:
            if op == "between":
                mask &= (values >= bound[0]) & (values <= bound[1])
            else:
                mask &= {"gt": np.greater, "gte": np.greater_equal, "lt": np.less,
                         "lte": np.less_equal, "eq": np.equal}[op](values, bound)
    return np.asarray(mask, dtype=bool)


def _floats(frame: pd.DataFrame, column: str, fill: float) -> npt.NDArray[np.float64]:
    if column not in frame.columns:
        return np.full(len(frame), fill)
    values = frame[column].to_numpy(dtype=np.float64, na_value=np.nan)
    return np.where(np.isnan(values), fill, values)


def behaviour_mask(field: str, value: Any, path: str, frame: pd.DataFrame, as_of: dt.date) -> Mask:
    """Which members satisfy one behaviour leaf, from the columns the audience step added."""
    as_of_day = (as_of - dt.date(1970, 1, 1)).days
    if isinstance(value, Measure):
        spend = _floats(frame, spend_column(value.filter), 0.0)
        orders = _floats(frame, orders_column(value.filter), 0.0)
        if value.measure == "avg_ticket":
            with np.errstate(invalid="ignore", divide="ignore"):
                numbers = np.where(orders > 0, spend / np.maximum(orders, 1), np.nan)
        else:
            numbers = spend if value.measure == "spend" else orders
        hit = _compare(numbers, value.compare)
        return ~hit if field == "never_bought" else hit
    if field in ("first_purchase_within_days", "registered_within_days"):
        column = "first_day" if field == "first_purchase_within_days" else "registered_day"
        if column not in frame.columns:
            raise InvalidRule(path, "the members data has no registered_at column"
                              if column == "registered_day" else "no transactions data")
        since = as_of_day - frame[column].to_numpy(dtype=np.float64, na_value=np.nan)
        with np.errstate(invalid="ignore"):
            return np.asarray((since >= 0) & (since < value), dtype=bool)
    if field == "birthday_month":
        if "birthday" not in frame.columns:
            raise InvalidRule(path, "the members data has no birthday column")
        columns = [birthday_month_column(y, m) for y, m in resolve_months(value, as_of)]
        return np.asarray(np.logical_or.reduce([frame[c].to_numpy(dtype=bool) for c in columns]),
                          dtype=bool)
    if field in ("tag", "not_tag"):
        tagged = np.logical_or.reduce([frame[tag_column(t)].to_numpy(dtype=bool) for t in value])
        return np.asarray(tagged if field == "tag" else ~tagged, dtype=bool)
    spec: CouponSpec = value
    numbers = _floats(frame, spec.column, 0.0)
    if spec.kind == "received":
        return _compare(numbers, spec.compare)
    hit = numbers > 0
    return np.asarray(~hit if field == "never_redeemed_coupon" else hit, dtype=bool)
