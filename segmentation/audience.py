"""Evaluate a rules file: one frame of every member with RFM, class, cluster and attributes, and
one boolean mask per rule segment.

Members come from the members source (with their attributes) joined to the RFM scores of the
transactions; members who never bought are kept (their RFM columns are empty, so only
attribute, dormancy and birthday conditions can pick them), and buyers missing from the members
data are kept too (they have no address, so no channel reaches them).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd

from infra.clickhouse import ClickHouse
from segmentation.clustering import Clustering, cluster_members
from segmentation.conditions import Mask, evaluate, fields_used
from segmentation.errors import InvalidInput
from segmentation.features import MemberFeatures
from segmentation.local_dates import day_number, days_until_birthday
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


@dataclass(frozen=True)
class Evaluation:
    """The audience frame, one mask per rule segment, and the moment it was evaluated for."""

    rules: RulesFile
    frame: pd.DataFrame
    masks: dict[str, Mask]
    today: dt.date
    as_of: dt.date
    clustering: Clustering | None

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


def evaluate_rules(
    rules: RulesFile, *, clickhouse: ClickHouse | None = None, today: dt.date | None = None
) -> Evaluation:
    """Compute the audience of every rule segment (reads the data; writes nothing)."""
    today = today or rules.today or dt.datetime.now(rules.timezone).date()
    features = transaction_source(rules, clickhouse).features(as_of=rules.as_of)
    scores, clustering = _rfm_frame(rules, features)
    members = _members(rules, clickhouse)
    if members is None:
        frame = scores
    else:
        if members.member_id.duplicated().any():
            raise InvalidInput("members.member_id", "has duplicate member ids")
        frame = members.merge(scores, on="member_id", how="outer", sort=True)
    if "registered_at" in frame.columns:
        frame["registered_day"] = _local_days(frame["registered_at"], rules)
    used = set().union(*(fields_used(s.where) for s in rules.segments))
    if used & {"birthday_within_days", "birthday_today"} and "birthday" in frame.columns:
        known = frame["birthday"].notna().to_numpy()
        until = np.full(len(frame), np.nan)
        births = pd.to_datetime(frame.loc[known, "birthday"]).to_numpy().astype("datetime64[D]")
        lunar = (frame.loc[known, "birthday_is_lunar"].astype("boolean").fillna(False)
                 .to_numpy(dtype=bool)
                 if "birthday_is_lunar" in frame.columns else np.zeros(int(known.sum()), bool))
        until[known] = days_until_birthday(births.astype(np.int64), lunar, today=today)
        frame["days_to_birthday"] = until
    today_day = day_number(today)
    masks = {rule.name: evaluate(rule.where, frame, today_day=today_day) for rule in rules.segments}
    as_of = dt.date(1970, 1, 1) + dt.timedelta(days=features.as_of_day)
    return Evaluation(rules, frame, masks, today, as_of, clustering)
