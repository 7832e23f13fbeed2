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
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from infra.clickhouse import ClickHouse
from segmentation.behaviour import (
    CouponSpec,
    Measure,
    birthday_month_column,
    resolve_months,
    tag_column,
)
from segmentation.clustering import Clustering, cluster_members
from segmentation.conditions import Leaf, Mask, evaluate, leaves
from segmentation.coupon_conditions import CouponFacts, coupon_columns, facts_frame
from segmentation.errors import InvalidInput
from segmentation.feature_cache import FeatureCache, file_stamp
from segmentation.features import MemberFeatures
from segmentation.local_dates import birthday_in_month, day_date, day_number, days_until_birthday
from segmentation.rfm import scores_from_features
from segmentation.rules import MEMBER_COLUMNS, RulesFile
from segmentation.segments import eight_class_segments
from segmentation.sources import (
    ClickHouseTransactions,
    FileTransactions,
    SegmentSource,
    clickhouse_members,
    file_columns,
    read_table,
)
from segmentation.tags import TagStore
from segmentation.windows import TxFilter


@dataclass(frozen=True)
class Evaluation:
    """The audience frame, one mask per rule segment, and the moment it was evaluated for."""

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


def transaction_source(rules: RulesFile, clickhouse: ClickHouse | None) -> SegmentSource:
    """The transactions source a rules file names."""
    location = rules.transactions
    if location.path is not None:
        return FileTransactions(location.path, rules.columns, rules.timezone)
    if clickhouse is None:
        raise InvalidInput("transactions.clickhouse_table", "needs a ClickHouse connection")
    return ClickHouseTransactions(client=clickhouse, table=str(location.clickhouse_table),
                                  columns=rules.columns, timezone=rules.timezone)


def _members(rules: RulesFile, clickhouse: ClickHouse | None) -> pd.DataFrame | None:
    location = rules.members
    if location is None:
        return None
    theirs = dict(location.renames)  # our name -> the merchant's
    read: Callable[[list[str]], pd.DataFrame]
    if location.path is not None:
        path = location.path
        available = set(file_columns(path))

        def read(columns: list[str]) -> pd.DataFrame:
            return read_table(path, columns).to_pandas()
    elif clickhouse is None:
        raise InvalidInput("members.clickhouse_table", "needs a ClickHouse connection")
    else:
        client = clickhouse
        table = str(location.clickhouse_table)  # checked to be a plain [database.]name on load
        database, _, name = table.rpartition(".")
        described = client.query(
            "SELECT name FROM system.columns WHERE database = "
            f"{repr(database) if database else 'currentDatabase()'} AND table = '{name}'"
        )
        available = {str(row[0]) for row in described}

        def read(columns: list[str]) -> pd.DataFrame:
            return clickhouse_members(client, table, columns)
    for ours, source in theirs.items():
        if source not in available:
            raise InvalidInput(f"members.columns.{ours}", f"the members data has no {source!r}")
    wanted = {ours: theirs.get(ours, ours) for ours in MEMBER_COLUMNS
              if theirs.get(ours, ours) in available}
    if "member_id" not in wanted:
        raise InvalidInput("members.columns.member_id", "the members data has no member_id "
                           "column (map it with columns: {member_id: NAME})")
    frame = read(list(wanted.values()))
    return frame.rename(columns={source: ours for ours, source in wanted.items()})


def _local_days(column: pd.Series, rules: RulesFile) -> npt.NDArray[np.float64]:
    values = pd.to_datetime(column)
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        values = values.dt.tz_convert(rules.timezone).dt.tz_localize(None)
    days: npt.NDArray[np.float64] = values.to_numpy().astype("datetime64[D]").astype(np.float64)
    days[pd.isna(values).to_numpy()] = np.nan
    return days


def _rfm_frame(
    rules: RulesFile, features: MemberFeatures
) -> tuple[pd.DataFrame, Clustering | None]:
    scores = scores_from_features(features, bins=rules.bins, monetary=rules.monetary,
                                  segment_map=rules.segment_map)
    money = features.monetary_total if rules.monetary == "total" else features.monetary_avg
    scores["eight_class"], scores["eight_class_zh"] = eight_class_segments(
        features.recency_days, features.frequency, money, center=rules.eight_class_center
    )
    scores["last_day"] = features.last_day
    scores = scores.rename(columns={"segment": "rfm_segment", "segment_zh": "rfm_segment_zh"})
    clustering = None
    if rules.clusters is not None:
        clustering = cluster_members(scores, k=rules.clusters.k, seed=rules.clusters.seed)
        scores["cluster"] = clustering.labels
        scores["cluster_label"] = pd.Categorical.from_codes(
            clustering.labels, categories=[c.label for c in clustering.clusters])
    return scores, clustering


def _birthday_columns(frame: pd.DataFrame, used: set[str], months: set[tuple[int, int]],
                      today: dt.date) -> None:
    """Days to the next birthday and, per (year, month) a rule names, whether the member's
    birthday (solar or lunar, per member) falls in that month."""
    if "birthday" not in frame.columns:
        return
    known = frame["birthday"].notna().to_numpy()
    births = (pd.to_datetime(frame.loc[known, "birthday"]).to_numpy().astype("datetime64[D]")
              .astype(np.int64))
    lunar = (frame.loc[known, "birthday_is_lunar"].astype("boolean").fillna(False)
             .to_numpy(dtype=bool)
             if "birthday_is_lunar" in frame.columns else np.zeros(int(known.sum()), bool))
    if used & {"birthday_within_days", "birthday_today"}:
        until = np.full(len(frame), np.nan)
        until[known] = days_until_birthday(births, lunar, today=today)
        frame["days_to_birthday"] = until
    for year, month in months:
        hit = np.zeros(len(frame), bool)
        hit[known] = birthday_in_month(births, lunar, year=year, month=month)
        frame[birthday_month_column(year, month)] = hit


def rules_needs(rules: RulesFile) -> tuple[bool, bool]:
    """Whether the rules use coupon conditions, and tag conditions (what clients they need)."""
    found, _, coupons = _needs(rules)
    return bool(coupons), any(leaf.field in ("tag", "not_tag") for leaf in found)


def _needs(rules: RulesFile) -> tuple[list[Leaf], list[TxFilter], list[CouponSpec]]:
    found = [leaf for s in rules.segments for leaf in leaves(s.where)]
    filters = {leaf.value.filter for leaf in found if isinstance(leaf.value, Measure)}
    coupons = {leaf.value for leaf in found if isinstance(leaf.value, CouponSpec)}
    return found, sorted(filters, key=lambda f: f.key), sorted(coupons, key=lambda c: c.column)


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
    found, filters, coupon_specs = _needs(rules)
    fields = {leaf.field for leaf in found}
    if coupon_specs and coupon_facts is None:
        raise InvalidInput("coupon_facts", "coupon conditions need the catalog's coupon facts "
                           "(REDIS_URL of the catalog)")
    tag_names = {t for leaf in found if leaf.field in ("tag", "not_tag") for t in leaf.value}
    if tag_names and tags is None:
        raise InvalidInput("tags", "tag conditions need the tag store (REDIS_URL)")
    source = transaction_source(rules, clickhouse)
    got = (cache.rule_features(source, as_of=day, filters=filters) if cache is not None
           else source.rule_features(as_of=day, filters=filters))
    features = got.features
    scores, clustering = _rfm_frame(rules, features)
    scores["first_day"] = features.first_day
    for column in got.aggregates.columns:
        scores[column] = got.aggregates[column].to_numpy()
    members = (cache.get(("members", rules.members, _members_stamp(rules)),
                         lambda: _members(rules, clickhouse))
               if cache is not None and rules.members is not None
               and rules.members.path is not None else _members(rules, clickhouse))
    if members is None:
        frame = scores
    else:
        if members.member_id.duplicated().any():
            raise InvalidInput("members.member_id", "has duplicate member ids")
        frame = members.merge(scores, on="member_id", how="outer", sort=True)
    if "registered_at" in frame.columns:
        frame["registered_day"] = _local_days(frame["registered_at"], rules)
    months = {ym for leaf in found if leaf.field == "birthday_month"
              for ym in resolve_months(leaf.value, day)}
    _birthday_columns(frame, fields, months, day)
    extra: dict[str, Any] = {tag_column(t): (tags.members(t).mask(frame["member_id"])
                                             if tags is not None else None)
                             for t in sorted(tag_names)}
    if coupon_specs and coupon_facts is not None:
        facts = facts_frame(coupon_facts())
        extra.update(coupon_columns(coupon_specs, facts, frame["member_id"], as_of=day))
    if extra:
        frame = pd.concat([frame, pd.DataFrame(extra, index=frame.index)], axis=1)
    today_day = day_number(day)
    masks = {rule.name: evaluate(rule.where, frame, today_day=today_day) for rule in rules.segments}
    warnings = []
    if got.newest_day is None:
        warnings.append("there are no transactions: only attribute conditions can match")
    elif today_day - got.newest_day > rules.stale_after_days:
        newest = day_date(got.newest_day)
        warnings.append(f"the newest transaction is from {newest}, {today_day - got.newest_day} "
                        f"days before {day}: is the transactions file up to date? "
                        f"(最新交易日期 {newest}，数据可能未更新)")
    return Evaluation(rules, frame, masks, day, day, clustering, tuple(warnings))


def _members_stamp(rules: RulesFile) -> Any:
    location = rules.members
    return file_stamp(location.path) if location is not None and location.path else None
