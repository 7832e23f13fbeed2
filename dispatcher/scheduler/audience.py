"""A definition's audience on one day: the members, their purchase features as of that day,
the segment condition's mask, and the dates the triggers need.

Everything is evaluated as of the run's day (``today`` and ``as_of`` both that day), so a run
made late (catch-up) or replayed sees the purchases a run on time would have seen, not later
ones. A scheduler evaluates every definition every day, so for file sources whose condition
needs no RFM scores (attributes, dormancy, birthdays, reachability) the files are read once
(again when they change) and each day costs one vectorised reduction of the purchases; any other
audience goes through segmentation's ``evaluate_rules``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from dispatcher.scheduler.definitions import AUDIENCE_SEGMENT, Definition
from dispatcher.scheduler.triggers import NO_DAY, Mask, MemberDays
from infra.clickhouse import ClickHouse
from segmentation.audience import evaluate_rules, transaction_source
from segmentation.conditions import evaluate, fields_used
from segmentation.features import MemberFeatures, compute_features
from segmentation.local_dates import day_number, days_until_birthday, series_to_days
from segmentation.rfm import amounts_in_fen
from segmentation.rules import RulesFile
from segmentation.sources import read_members, read_table

# Conditions that need RFM scores or clusters: those take segmentation's full evaluation.
SCORED = {"rfm_segment", "eight_class", "rfm_code", "cluster", "r_score", "f_score", "m_score"}


@dataclass(frozen=True)
class AudienceDay:
    """Every member of the data on one day, and which of them the audience condition keeps."""

    frame: pd.DataFrame
    members: MemberDays
    selected: Mask


@dataclass(frozen=True)
class _Static:
    """What does not change from day to day: ids, birthdays, registration days."""

    ids: np.ndarray
    birth: np.ndarray
    lunar: Mask
    registered: np.ndarray


@dataclass(frozen=True)
class _Files:
    stamp: tuple[float, float]
    members: pd.DataFrame
    static: _Static
    buyer: np.ndarray
    day: np.ndarray
    fen: np.ndarray


def _days(column: pd.Series) -> np.ndarray:
    values = pd.to_datetime(column, errors="coerce")
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        values = values.dt.tz_localize(None)
    raw = values.to_numpy().astype("datetime64[D]").astype(np.int64)
    return np.where(pd.isna(values).to_numpy(), NO_DAY, raw)


def _day_column(frame: pd.DataFrame, column: str) -> np.ndarray:
    if column not in frame.columns:
        return np.full(len(frame), NO_DAY, np.int64)
    values = frame[column].to_numpy(dtype=np.float64, na_value=np.nan)
    return np.where(np.isnan(values), NO_DAY, np.nan_to_num(values)).astype(np.int64)


def _static(frame: pd.DataFrame) -> _Static:
    n = len(frame)
    if "birthday" in frame.columns:
        birth = _days(frame["birthday"])
        lunar = (frame["birthday_is_lunar"].astype("boolean").fillna(False).to_numpy(dtype=bool)
                 if "birthday_is_lunar" in frame.columns else np.zeros(n, bool))
    else:
        birth, lunar = np.full(n, NO_DAY, np.int64), np.zeros(n, bool)
    return _Static(frame["member_id"].astype(str).to_numpy(dtype=str), birth, lunar,
                   _day_column(frame, "registered_day"))


def _paths(rules: RulesFile) -> tuple[Path, Path]:
    tx_path = rules.transactions.path
    members_path = rules.members.path if rules.members else None
    assert tx_path is not None and members_path is not None  # checked by _fast
    return tx_path, members_path


def _fast(rules: RulesFile) -> bool:
    members = rules.members
    return (rules.transactions.path is not None and members is not None
            and members.path is not None and not members.renames
            and not fields_used(rules.segments[0].where) & SCORED)


class AudienceLoader:
    """Evaluates definitions' audiences (``clickhouse`` for ClickHouse-held data)."""

    def __init__(self, *, clickhouse: ClickHouse | None = None) -> None:
        self._clickhouse = clickhouse
        self._files: dict[tuple[Path, Path], _Files] = {}
        # The last day's purchase view per data files: definitions sharing data share it.
        self._day: dict[tuple[Path, Path], tuple[dt.date, pd.DataFrame, MemberFeatures]] = {}

    def load(self, definition: Definition, day: dt.date) -> AudienceDay:
        """The audience of ``definition`` as of ``day``."""
        rules = replace(definition.audience, today=day, as_of=day)
        if _fast(rules):
            frame, features, static = self._from_files(rules, day)
            selected = evaluate(rules.segments[0].where, frame, today_day=day_number(day))
        else:
            evaluation = evaluate_rules(rules, clickhouse=self._clickhouse, today=day)
            frame = evaluation.frame.reset_index(drop=True)
            frame["member_id"] = frame["member_id"].astype(str)
            selected = np.asarray(evaluation.masks[AUDIENCE_SEGMENT])
            features = transaction_source(rules, self._clickhouse).features(as_of=day)
            static = _static(frame)
        first = pd.Series(features.first_day.astype(np.int64),
                          index=pd.Index(features.member_id.astype(str)))
        frequency = frame["frequency"].to_numpy(dtype=np.float64, na_value=np.nan)
        members = MemberDays(
            member_id=static.ids, birth_day=static.birth, birth_lunar=static.lunar,
            first_day=first.reindex(static.ids).fillna(NO_DAY).to_numpy(np.int64),
            last_day=_day_column(frame, "last_day"),
            repeat_days=np.nan_to_num(frequency - 1, nan=0).astype(np.int64),
            registered_day=static.registered,
        )
        return AudienceDay(frame, members, np.asarray(selected, dtype=bool))

    def _read(self, rules: RulesFile) -> _Files:
        tx_path, members_path = _paths(rules)
        stamp = (tx_path.stat().st_mtime, members_path.stat().st_mtime)
        cached = self._files.get((tx_path, members_path))
        if cached is not None and cached.stamp == stamp:
            return cached
        cols = rules.columns
        table = read_table(tx_path, list(dict.fromkeys([cols.member, cols.time, cols.amount])))
        frame = table.to_pandas()
        days = series_to_days(frame[cols.time], tz=rules.timezone, field=cols.time)
        fen = amounts_in_fen(frame[cols.amount], unit=cols.amount_unit, field=cols.amount)
        members = read_members(members_path)
        members["member_id"] = members["member_id"].astype(str)
        if "registered_at" in members.columns:
            registered = pd.to_datetime(members["registered_at"])
            if isinstance(registered.dtype, pd.DatetimeTZDtype):
                registered = registered.dt.tz_convert(rules.timezone).dt.tz_localize(None)
            days_reg = registered.to_numpy().astype("datetime64[D]").astype(np.float64)
            days_reg[pd.isna(registered).to_numpy()] = np.nan
            members["registered_day"] = days_reg
        # Purchases by row of the members table; buyers missing from it have no address, no
        # birthday and no channel, so no trigger could reach them.
        rows = pd.Index(members["member_id"]).get_indexer(frame[cols.member].astype(str))
        known = rows >= 0
        found = _Files(stamp, members, _static(members), rows[known],
                       np.asarray(days, np.int32)[known],
                       np.asarray(fen, np.int64)[known])
        self._files[(tx_path, members_path)] = found
        return found

    def _from_files(self, rules: RulesFile, day: dt.date
                    ) -> tuple[pd.DataFrame, MemberFeatures, _Static]:
        files = self._read(rules)
        key = _paths(rules)
        kept = self._day.get(key)
        if kept is not None and kept[0] == day:
            frame, features = kept[1], kept[2]
        else:
            frame, features = self._purchases(files, day)
            self._day[key] = (day, frame, features)
        used = fields_used(rules.segments[0].where)
        if (used & {"birthday_within_days", "birthday_today"} and "birthday" in frame.columns
                and "days_to_birthday" not in frame.columns):
            known = files.static.birth != NO_DAY
            until = np.full(len(frame), np.nan)
            until[known] = days_until_birthday(files.static.birth[known],
                                               files.static.lunar[known], today=day)
            frame["days_to_birthday"] = until
        return frame, features, files.static

    @staticmethod
    def _purchases(files: _Files, day: dt.date) -> tuple[pd.DataFrame, MemberFeatures]:
        today = day_number(day)
        seen = files.day <= today
        features = compute_features(files.buyer[seen], files.day[seen], files.fen[seen],
                                    as_of_day=today)
        rows = features.member_id.astype(np.int64)
        frame = files.members.copy(deep=False)
        for name, values in (("frequency", features.frequency),
                             ("monetary_total", features.monetary_total),
                             ("recency_days", features.recency_days),
                             ("last_day", features.last_day)):
            column = np.full(len(frame), np.nan)
            column[rows] = values
            frame[name] = column
        return frame, replace(features, member_id=files.static.ids[rows])
