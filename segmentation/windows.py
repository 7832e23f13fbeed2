"""Time windows, transaction filters and money amounts as operators write them in conditions.

    spend:      {last: 90d, gte: 200元}                 # the 90 days ending on as_of
    spend_yuan: {between: [30d, 90d], gte: 200}        # 30 to 90 days ago: not the last 30
    orders:     {from: 2026-01-01, to: 2026-03-31, stores: [S1, S2], gte: 3}
    bought:     {categories: [咖啡], last: 30d}

A window is counted in days before ``as_of`` (day 0 is as_of itself): ``last: 90d`` is days 0-89
ago, ``between: [30d, 90d]`` days 30-89 ago, so "the last 90 days but not the last 30" is exactly
``between: [30d, 90d]``; ``from``/``to`` (or ``between`` with two dates) are inclusive calendar
dates. Transactions after as_of are never seen. Amounts are fen unless written in yuan: ``200元``,
``200 yuan``, ``¥200``, or a bare number under a ``*_yuan`` field; ``20000分`` is fen.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from dataclasses import dataclass, field
from typing import Any, Literal

from segmentation.errors import InvalidRule

WINDOW_KEYS = ("last", "between", "from", "to")
FILTER_KEYS = ("store", "stores", "category", "categories", "sku", "skus")
COMPARISONS = ("gt", "gte", "lt", "lte", "eq", "between")
_DURATION = re.compile(r"^\s*(\d+)\s*(d|天|w|周|m|个月|月)\s*$")
_AMOUNT = re.compile(r"^\s*[¥￥]?\s*(\d+(?:\.\d{1,2})?)\s*(元|yuan|分|fen)?\s*$", re.IGNORECASE)
NO_LOWER_BOUND = -(1 << 30)
Bare = Literal["yuan", "fen", "refuse"]


def duration_days(value: Any, path: str) -> int:
    """``90d`` / ``12w`` / ``3m`` (30 days a month) / ``90天`` / a bare number of days."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    match = _DURATION.match(str(value))
    if match is None:
        raise InvalidRule(path, f"expected a number of days like 90d, 12w or 3m, got {value!r}")
    number, unit = int(match.group(1)), match.group(2)
    return number * {"d": 1, "天": 1, "w": 7, "周": 7, "m": 30, "个月": 30, "月": 30}[unit]


def amount_fen(value: Any, path: str, *, bare: Bare) -> int:
    """An amount in fen; ``bare`` says what a number without a unit means (``*_yuan`` fields:
    yuan, ``*_fen``: fen, plain ``spend``: refused, since 200 could be either)."""
    if isinstance(value, bool):
        raise InvalidRule(path, f"must be an amount, got {value!r}")
    if isinstance(value, int | float):
        if value < 0:
            raise InvalidRule(path, f"must not be negative, got {value!r}")
        if bare == "refuse":
            raise InvalidRule(path, f"write the unit: {value}元 (yuan) or {value}分 (fen), or use "
                              "the _yuan / _fen form of the field")
        if bare == "fen":
            if isinstance(value, float) and not value.is_integer():
                raise InvalidRule(path, "fen are whole numbers")
            return int(value)
        return round(value * 100)
    match = _AMOUNT.match(str(value))
    if match is None:
        raise InvalidRule(path, f"expected an amount like 200元, 12.5元 or 20000分, got {value!r}")
    number, unit = match.group(1), (match.group(2) or "").lower()
    if unit in ("分", "fen"):
        if "." in number:
            raise InvalidRule(path, "fen are whole numbers")
        return int(number)
    if not unit and not str(value).strip().startswith(("¥", "￥")):
        if bare == "refuse":
            raise InvalidRule(path, f"write the unit: {number}元 (yuan) or {number}分 (fen)")
        if bare == "fen":
            return amount_fen(float(number), path, bare="fen")
    whole, _, cents = number.partition(".")
    return int(whole) * 100 + int((cents + "00")[:2])


def parse_date(value: Any, path: str) -> dt.date:
    """A date (a YAML date or ISO text); ``InvalidRule`` at ``path`` otherwise."""
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        raise InvalidRule(path, f"must be a date like 2024-06-30, got {value!r}") from None


@dataclass(frozen=True)
class Window:
    """Days before as_of (``ago``: first inclusive, last exclusive) or calendar dates."""

    ago: tuple[int, int] | None = None
    dates: tuple[dt.date, dt.date] | None = None

    def day_range(self, as_of_day: int) -> tuple[int, int]:
        """Inclusive (first, last) day numbers of the window, never after as_of."""
        if self.ago is not None:
            return as_of_day - self.ago[1] + 1, as_of_day - self.ago[0]
        if self.dates is not None:
            first = (self.dates[0] - dt.date(1970, 1, 1)).days
            last = (self.dates[1] - dt.date(1970, 1, 1)).days
            return first, min(last, as_of_day)
        return NO_LOWER_BOUND, as_of_day

    def describe(self) -> str:
        if self.ago is not None:
            return (f"last {self.ago[1]}d" if self.ago[0] == 0
                    else f"{self.ago[0]}-{self.ago[1]}d ago")
        if self.dates is not None:
            return f"{self.dates[0]}..{self.dates[1]}"
        return "ever"


def _is_window_between(value: Any) -> bool:
    if not isinstance(value, list) or len(value) != 2:
        return False
    return all(isinstance(v, dt.date) or (isinstance(v, str) and not _AMOUNT.match(v))
               for v in value)


def parse_window(spec: dict[str, Any], path: str) -> Window:
    """The window keys of a condition mapping (none: everything up to as_of)."""
    if "last" in spec:
        if any(k in spec for k in ("from", "to")) or _is_window_between(spec.get("between")):
            raise InvalidRule(f"{path}.last", "give one window: last, between, or from/to")
        days = duration_days(spec["last"], f"{path}.last")
        if days < 1:
            raise InvalidRule(f"{path}.last", "a window is at least 1 day")
        return Window(ago=(0, days))
    if _is_window_between(spec.get("between")):
        low, high = spec["between"]
        if isinstance(low, dt.date) or isinstance(high, dt.date) or "-" in str(low):
            first = parse_date(low, f"{path}.between[0]")
            last = parse_date(high, f"{path}.between[1]")
            if first > last:
                raise InvalidRule(f"{path}.between", "the first date is after the second")
            return Window(dates=(first, last))
        near = duration_days(low, f"{path}.between[0]")
        far = duration_days(high, f"{path}.between[1]")
        if near >= far:
            raise InvalidRule(f"{path}.between", f"expected [nearer, farther] days ago, e.g. "
                              f"[30d, 90d], got {spec['between']!r}")
        return Window(ago=(near, far))
    if "from" in spec or "to" in spec:
        first = parse_date(spec["from"], f"{path}.from") if "from" in spec else dt.date(1970, 1, 1)
        last = parse_date(spec["to"], f"{path}.to") if "to" in spec else dt.date(9999, 12, 31)
        if first > last:
            raise InvalidRule(f"{path}.to", "is before from")
        return Window(dates=(first, last))
    return Window()


def _names(value: Any, path: str) -> frozenset[str]:
    items = value if isinstance(value, list) else [value]
    if not items:
        raise InvalidRule(path, "must name at least one")
    out = set()
    for item in items:
        if isinstance(item, bool) or not isinstance(item, str | int) or not str(item).strip():
            raise InvalidRule(path, f"expected names or ids, got {item!r}")
        out.add(str(item).strip())
    return frozenset(out)


@dataclass(frozen=True)
class TxFilter:
    """Which transactions an aggregate counts: a window, and optionally stores/categories/SKUs
    (each a set; a transaction must match every set given). Values compare as text."""

    window: Window = field(default_factory=Window)
    stores: frozenset[str] = frozenset()
    categories: frozenset[str] = frozenset()
    skus: frozenset[str] = frozenset()

    @property
    def key(self) -> str:
        """A short stable name for the aggregate columns of this filter."""
        text = repr((self.window, sorted(self.stores), sorted(self.categories), sorted(self.skus)))
        return "f" + hashlib.blake2b(text.encode(), digest_size=5).hexdigest()

    def columns_needed(self) -> set[str]:
        """Which optional transaction columns (store, category, sku) the filter reads."""
        return {name for name, values in (("store", self.stores), ("category", self.categories),
                                          ("sku", self.skus)) if values}


def parse_filter(spec: dict[str, Any], path: str) -> TxFilter:
    """The window and store/category/SKU keys of a condition mapping."""
    sets: dict[str, frozenset[str]] = {}
    for plural in ("stores", "categories", "skus"):
        singular = {"stores": "store", "categories": "category", "skus": "sku"}[plural]
        if plural in spec and singular in spec:
            raise InvalidRule(f"{path}.{singular}", f"give {singular} or {plural}, not both")
        for key in (plural, singular):
            if key in spec:
                sets[plural] = _names(spec[key], f"{path}.{key}")
    return TxFilter(parse_window(spec, path), sets.get("stores", frozenset()),
                    sets.get("categories", frozenset()), sets.get("skus", frozenset()))


def parse_comparison(spec: dict[str, Any], path: str, *, money: Bare | None,
                     skip: tuple[str, ...] = ()) -> dict[str, Any]:
    """The comparison keys of a mapping; ``money`` None: plain numbers, else amounts in fen
    (``amount_fen``'s ``bare``). Keys in ``skip`` belong to something else (``between`` is a
    window when it holds durations or dates, a comparison when it holds numbers or amounts)."""
    out: dict[str, Any] = {}
    for op, bound in spec.items():
        if (op in skip and op != "between") or (op == "between" and _is_window_between(bound)):
            continue
        where = f"{path}.{op}"
        if op not in COMPARISONS:
            raise InvalidRule(where, f"unknown key; use a comparison ({', '.join(COMPARISONS)}) "
                              f"or {', '.join((*WINDOW_KEYS, *FILTER_KEYS))}")
        if op == "between" and (not isinstance(bound, list) or len(bound) != 2):
            raise InvalidRule(where, "must be a list of two values [low, high]")
        bounds = bound if op == "between" else [bound]
        values = []
        for i, b in enumerate(bounds):
            at = f"{where}[{i}]" if op == "between" else where
            if money is None:
                if isinstance(b, bool) or not isinstance(b, int | float):
                    raise InvalidRule(at, f"must be a number, got {b!r}")
                values.append(b)
            else:
                values.append(amount_fen(b, at, bare=money))
        out[op] = values if op == "between" else values[0]
    if not out:
        raise InvalidRule(path, "needs a comparison such as {gte: 1}")
    return out
