"""Evaluate a rules file: one frame of every member with RFM, class, cluster and attributes, and
one boolean mask per rule segment.

Every time-based condition counts from one day, ``as_of`` (default: today in the merchant's
timezone), RFM recency included; a warning says when the newest transaction is older than the
rules' ``stale_after_days``. Members come from the members source (with their attributes)
joined to the RFM scores of the transactions; members who never bought are kept (their RFM
columns are empty, so only attribute, dormancy and birthday conditions can pick them), and buyers
missing from the members data are kept too (they have no address, so no channel reaches them).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from infra.clickhouse import ClickHouse
from segmentation.aggregates import window_aggregates
from segmentation.behaviour import CouponSpec, Measure, resolve_months
from segmentation.clustering import Clustering
from segmentation.conditions import Condition, Leaf, Mask, evaluate, leaves
from segmentation.coupon_conditions import CouponFacts
from segmentation.errors import InvalidInput
from segmentation.feature_cache import FeatureCache, file_stamp
from segmentation.local_dates import day_date, day_number
from segmentation.member_frame import (
    aligned,
    base_frame,
    read_members,
    rule_columns,
    transaction_source,
)
from segmentation.rules import RulesFile
from segmentation.sources import FileTransactions, SegmentSource
from segmentation.tags import TagStore
from segmentation.windows import TxFilter

__all__ = ["Evaluation", "evaluate_conditions", "evaluate_rules", "rules_needs",
           "transaction_source"]


@dataclass(frozen=True)
class Evaluation:
    """The audience frame, one mask per rule segment, and the day it was evaluated for."""

    rules: RulesFile
    frame: pd.DataFrame
    masks: dict[str, Mask]
    today: dt.date  # the evaluation day (as_of); both names kept for callers
    as_of: dt.date
    clustering: Clustering | None
    warnings: tuple[str, ...] = ()

    def counts(self) -> dict[str, int]:
        """Members per rule segment, in rules-file order."""
        return {name: int(mask.sum()) for name, mask in self.masks.items()}

    def members_of(self, segment: str) -> pd.DataFrame:
        """The audience rows of one rule segment."""
        if segment not in self.masks:
            raise InvalidInput("segment", f"{segment!r} is not in the rules "
                               f"({', '.join(self.masks)})")
        return self.frame[self.masks[segment]]


def rules_needs(rules: RulesFile) -> tuple[bool, bool]:
    """Whether the rules use coupon conditions, and tag conditions (what clients they need)."""
    found = [leaf for s in rules.segments for leaf in leaves(s.where)]
    return (any(isinstance(leaf.value, CouponSpec) for leaf in found),
            any(leaf.field in ("tag", "not_tag") for leaf in found))


@dataclass(frozen=True)
class _Base:
    frame: pd.DataFrame
    clustering: Clustering | None
    newest_day: int | None
    buyers: Any  # member ids of the features, ascending (the order of window aggregates)


def _identity(source: SegmentSource) -> Any:
    if isinstance(source, FileTransactions):
        return file_stamp(source.path)
    return getattr(source, "cache_key", None)


def _cached_base(rules: RulesFile, source: SegmentSource, clickhouse: ClickHouse | None,
                 day: dt.date, cache: FeatureCache) -> _Base:
    members = rules.members
    members_stamp = (file_stamp(members.path) if members is not None and members.path
                     else repr(members))

    def build() -> _Base:
        got = cache.rule_features(source, as_of=day, filters=())
        frame, clustering = base_frame(rules, got.features, read_members(rules, clickhouse))
        return _Base(frame, clustering, got.newest_day, got.features.member_id)

    key = ("base", rules.source_text, repr(rules.transactions), members_stamp, day,
           _identity(source))
    return cache.get(key, build)


def _cached_aggregates(source: SegmentSource, base: _Base, filters: Sequence[TxFilter],
                       day: dt.date, cache: FeatureCache) -> dict[str, Any]:
    """Window aggregates aligned with the base frame: one cached entry per filter for files
    (a console edit recomputes only the filter it changed), per filter set elsewhere."""
    member_ids = base.frame["member_id"]
    out: dict[str, Any] = {}
    if isinstance(source, FileTransactions):
        stamp = file_stamp(source.path)
        for f in filters:
            def one(f: TxFilter = f) -> dict[str, Any]:
                arrays = cache.arrays(source, f.columns_needed())
                values = window_aggregates(arrays, [f], as_of_day=day_number(day),
                                           member_order=base.buyers)
                return aligned(values, member_ids)
            out.update(cache.get(("aggregates", stamp, day, f), one))
        return out
    got = cache.rule_features(source, as_of=day, filters=filters)
    return aligned(got.aggregates, member_ids)


def evaluate_conditions(
    rules: RulesFile, conditions: Sequence[Condition], *, as_of: dt.date,
    clickhouse: ClickHouse | None = None, coupon_facts: CouponFacts | None = None,
    tags: TagStore | None = None, cache: FeatureCache | None = None,
) -> tuple[pd.DataFrame, list[Mask], Clustering | None, tuple[str, ...]]:
    """Evaluate condition trees on the rules' data as of ``as_of``: the member frame, one mask
    per condition, the clustering and the warnings (stale transactions)."""
    found: list[Leaf] = [leaf for c in conditions for leaf in leaves(c)]
    filters = sorted({leaf.value.filter for leaf in found if isinstance(leaf.value, Measure)},
                     key=lambda f: f.key)
    coupon_specs = sorted({leaf.value for leaf in found if isinstance(leaf.value, CouponSpec)},
                          key=lambda c: c.column)
    source = transaction_source(rules, clickhouse)
    if cache is None:
        got = source.rule_features(as_of=as_of, filters=filters)
        frame, clustering = base_frame(rules, got.features, read_members(rules, clickhouse))
        newest = got.newest_day
        extra = aligned(got.aggregates, frame["member_id"])
    else:
        base = _cached_base(rules, source, clickhouse, as_of, cache)
        frame, clustering, newest = base.frame, base.clustering, base.newest_day
        extra = _cached_aggregates(source, base, filters, as_of, cache)
    extra.update(rule_columns(
        frame, as_of=as_of, fields={leaf.field for leaf in found},
        months={ym for leaf in found if leaf.field == "birthday_month"
                for ym in resolve_months(leaf.value, as_of)},
        tag_names={t for leaf in found if leaf.field in ("tag", "not_tag") for t in leaf.value},
        tags=tags, coupon_specs=coupon_specs, coupon_facts=coupon_facts))
    if extra:
        frame = pd.concat([frame, pd.DataFrame(extra, index=frame.index)], axis=1)
    today_day = day_number(as_of)
    masks = [evaluate(c, frame, today_day=today_day) for c in conditions]
    warnings = []
    if newest is None:
        warnings.append("there are no transactions: only attribute conditions can match")
    elif today_day - newest > rules.stale_after_days:
        warnings.append(f"the newest transaction is from {day_date(newest)}, "
                        f"{today_day - newest} days before {as_of}: is the transactions data "
                        f"up to date? (最新交易日期 {day_date(newest)}，数据可能未更新)")
    return frame, masks, clustering, tuple(warnings)


def evaluate_rules(
    rules: RulesFile, *, clickhouse: ClickHouse | None = None, as_of: dt.date | None = None,
    today: dt.date | None = None, coupon_facts: CouponFacts | None = None,
    tags: TagStore | None = None, cache: FeatureCache | None = None,
) -> Evaluation:
    """Compute the audience of every rule segment (reads the data; writes nothing).

    ``as_of`` is the day every time-based condition counts from (RFM recency, windows,
    dormancy, birthdays, coupon expiry); default: the rules file's, else today in the merchant's
    timezone. ``today`` is the older name of the same parameter. Coupon conditions need
    ``coupon_facts``, tag conditions ``tags``; ``cache`` keeps features between calls.
    """
    day = (as_of or today or rules.as_of or rules.today
           or dt.datetime.now(rules.timezone).date())
    frame, masks, clustering, warnings = evaluate_conditions(
        rules, [s.where for s in rules.segments], as_of=day, clickhouse=clickhouse,
        coupon_facts=coupon_facts, tags=tags, cache=cache)
    named = {rule.name: mask for rule, mask in zip(rules.segments, masks, strict=True)}
    return Evaluation(rules, frame, named, day, day, clustering, warnings)
