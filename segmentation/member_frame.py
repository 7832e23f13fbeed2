"""The member frame rules are evaluated on: every member with attributes, RFM scores, classes
and clusters as of a day, plus the per-rule columns (window aggregates, birthdays, tags, coupons).

Members come from the members source joined to the RFM scores of the transactions; members who
never bought are kept (their RFM columns are empty, so only attribute, dormancy and birthday
conditions can pick them), and buyers missing from the members data are kept too (they have no
address, so no channel reaches them). The base frame depends only on the rules' data and the
day, so ``FeatureCache`` keeps it between the console's counts; the per-rule columns are cheap.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from infra.clickhouse import ClickHouse
from segmentation.behaviour import CouponSpec, birthday_month_column, tag_column
from segmentation.clustering import Clustering, cluster_members
from segmentation.coupon_conditions import CouponFacts, coupon_columns, facts_frame
from segmentation.errors import InvalidInput
from segmentation.features import MemberFeatures
from segmentation.local_dates import birthday_in_month, days_until_birthday
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


def transaction_source(rules: RulesFile, clickhouse: ClickHouse | None) -> SegmentSource:
    """The transactions source a rules file names."""
    location = rules.transactions
    if location.path is not None:
        return FileTransactions(location.path, rules.columns, rules.timezone)
    if clickhouse is None:
        raise InvalidInput("transactions.clickhouse_table", "needs a ClickHouse connection")
    return ClickHouseTransactions(client=clickhouse, table=str(location.clickhouse_table),
                                  columns=rules.columns, timezone=rules.timezone,
                                  final=location.final, merchant_id=location.merchant_id)


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
                      today: dt.date) -> dict[str, Any]:
    """Days to the next birthday and, per (year, month) a rule names, whether the member's
    birthday (solar or lunar, per member) falls in that month."""
    out: dict[str, Any] = {}
    if "birthday" not in frame.columns or not (
            months or used & {"birthday_within_days", "birthday_today"}):
        return out
    known = frame["birthday"].notna().to_numpy()
    births = (pd.to_datetime(frame.loc[known, "birthday"]).to_numpy().astype("datetime64[D]")
              .astype(np.int64))
    lunar = (frame.loc[known, "birthday_is_lunar"].astype("boolean").fillna(False)
             .to_numpy(dtype=bool)
             if "birthday_is_lunar" in frame.columns else np.zeros(int(known.sum()), bool))
    if used & {"birthday_within_days", "birthday_today"}:
        until = np.full(len(frame), np.nan)
        until[known] = days_until_birthday(births, lunar, today=today)
        out["days_to_birthday"] = until
    for year, month in months:
        hit = np.zeros(len(frame), bool)
        hit[known] = birthday_in_month(births, lunar, year=year, month=month)
        out[birthday_month_column(year, month)] = hit
    return out


def base_frame(rules: RulesFile, features: MemberFeatures, members: pd.DataFrame | None
               ) -> tuple[pd.DataFrame, Clustering | None]:
    """Members joined to their RFM scores (and first purchase day) as of the features' day."""
    scores, clustering = _rfm_frame(rules, features)
    scores["first_day"] = features.first_day
    if members is None:
        frame = scores
    else:
        scores["member_id"] = _like(scores["member_id"], members["member_id"])
        if members.member_id.duplicated().any():
            raise InvalidInput("members.member_id", "has duplicate member ids")
        frame = members.merge(scores, on="member_id", how="outer", sort=True)
    if "registered_at" in frame.columns:
        frame["registered_day"] = _local_days(frame["registered_at"], rules)
    return frame, clustering


def _like(ids: pd.Series, other: pd.Series) -> pd.Series:
    """``ids`` in the type of ``other``: ClickHouse tables often keep member ids as String
    while a members file has integers; digit strings ("123", not "0123") become integers."""
    if other.dtype.kind in "iu" and ids.dtype.kind not in "iu" and len(ids):
        text = ids.astype(str)
        numbers = pd.to_numeric(text, errors="coerce")
        if numbers.notna().all() and (numbers.astype(np.int64).astype(str) == text).all():
            return numbers.astype(np.int64)
    elif other.dtype.kind not in "iu" and ids.dtype.kind in "iu":
        return ids.astype(str).astype(object)
    return ids


def read_members(rules: RulesFile, clickhouse: ClickHouse | None) -> pd.DataFrame | None:
    """The members data of the rules (None when the rules name none)."""
    return _members(rules, clickhouse)


def aligned(values: pd.DataFrame, member_ids: pd.Series) -> dict[str, npt.NDArray[np.int64]]:
    """Columns of a frame indexed by member id, in the order of ``member_ids`` (0 if absent)."""
    index = pd.Index(_like(values.index.to_series(), member_ids).to_numpy())
    positions = index.get_indexer(member_ids.to_numpy())
    found = positions >= 0
    out = {}
    for column in values.columns:
        column_values = np.zeros(len(member_ids), np.int64)
        column_values[found] = values[column].to_numpy()[positions[found]]
        out[str(column)] = column_values
    return out


def rule_columns(frame: pd.DataFrame, *, as_of: dt.date, fields: set[str],
                 months: set[tuple[int, int]], tag_names: set[str], tags: TagStore | None,
                 coupon_specs: Sequence[CouponSpec], coupon_facts: CouponFacts | None
                 ) -> dict[str, Any]:
    """The birthday, tag and coupon columns a rule reads, aligned with ``frame``'s rows."""
    out: dict[str, Any] = _birthday_columns(frame, fields, months, as_of)
    if tag_names:
        if tags is None:
            raise InvalidInput("tags", "tag conditions need the tag store (REDIS_URL)")
        for name in sorted(tag_names):
            out[tag_column(name)] = tags.members(name).mask(frame["member_id"])
    if coupon_specs:
        if coupon_facts is None:
            raise InvalidInput("coupon_facts", "coupon conditions need the catalog's coupon "
                               "facts (REDIS_URL of the catalog)")
        facts = facts_frame(coupon_facts())
        out.update(coupon_columns(coupon_specs, facts, frame["member_id"], as_of=as_of))
    return out
