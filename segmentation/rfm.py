"""RFM scores and named segments, one row per member: the entry point of segmentation.

    scores = rfm_scores(transactions, as_of=date(2024, 6, 30), bins=5)
    at_risk = scores[scores.segment.isin(["At Risk", "Can't Lose Them"])].member_id

Definitions live in ``features`` (recency, frequency, monetary), ``scoring`` (quantile scores
with equal scores for ties) and ``segments`` (the maps from codes to names).
"""

from __future__ import annotations

import datetime as dt
from typing import Literal
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from segmentation.errors import InvalidInput
from segmentation.features import MemberFeatures, compute_features, features_frame
from segmentation.local_dates import DEFAULT_TZ, day_number, series_to_days
from segmentation.segments import (
    SegmentMap,
    assign_segments,
    check_bins,
    quantile_scores,
    rfm11_map,
)

Monetary = Literal["total", "avg"]
AmountUnit = Literal["fen", "yuan"]

SCORE_COLUMNS = [
    "member_id", "recency_days", "frequency", "monetary_total", "monetary_avg",
    "r_score", "f_score", "m_score", "rfm_code", "segment", "segment_zh",
]


def amounts_in_fen(series: pd.Series, *, unit: AmountUnit, field: str = "amount") -> np.ndarray:
    """Integer fen from a column of fen or yuan; yuan are rounded to the fen (half away from 0)."""
    if unit not in ("fen", "yuan"):
        raise InvalidInput("amount_unit", f"must be fen or yuan, got {unit!r}")
    if series.isna().any():
        raise InvalidInput(field, f"has {int(series.isna().sum())} empty values")
    if not pd.api.types.is_numeric_dtype(series.dtype):
        try:
            series = pd.to_numeric(series)
        except (ValueError, TypeError):
            raise InvalidInput(field, "is not numeric") from None
    values: np.ndarray = np.asarray(series.to_numpy())
    if unit == "yuan":
        # Decimal rounding of the yuan text would be exact; x*100 rounded is exact for any
        # amount with at most two decimals below 2**53 / 100 yuan, which covers retail.
        cents = values.astype(np.float64) * 100.0
        return (np.sign(cents) * np.floor(np.abs(cents) + 0.5)).astype(np.int64)
    if values.dtype.kind == "f":
        if not np.all(np.equal(np.mod(values, 1), 0)):
            raise InvalidInput(field, "has fractional fen; pass the amount unit yuan if it is yuan")
        return values.astype(np.int64)
    return values.astype(np.int64, copy=False)


def scores_from_features(
    features: MemberFeatures,
    *,
    bins: int = 5,
    monetary: Monetary = "total",
    segment_map: SegmentMap | None = None,
) -> pd.DataFrame:
    """Score features into R/F/M 1..bins (higher = better), the code and the named segment."""
    check_bins(bins)
    if monetary not in ("total", "avg"):
        raise InvalidInput("monetary", f"must be total or avg, got {monetary!r}")
    segment_map = segment_map or rfm11_map(bins)
    if segment_map.bins != bins:
        raise InvalidInput("bins", f"is {bins} but the segment map is for {segment_map.bins} bins")
    frame = features_frame(features)
    r = quantile_scores(features.recency_days, bins, higher_is_better=False)
    f = quantile_scores(features.frequency, bins)
    money = features.monetary_total if monetary == "total" else features.monetary_avg
    m = quantile_scores(money, bins)
    frame["r_score"] = r
    frame["f_score"] = f
    frame["m_score"] = m
    # A categorical of at most bins**3 codes: cheap to build for millions, compact in Parquet.
    code_numbers = r.astype(np.int16) * 100 + f.astype(np.int16) * 10 + m
    labels, positions = np.unique(code_numbers, return_inverse=True)
    frame["rfm_code"] = pd.Categorical.from_codes(positions, categories=[str(v) for v in labels])
    frame["segment"], frame["segment_zh"] = assign_segments(r, f, m, segment_map)
    return frame


def transaction_features(
    transactions: pd.DataFrame,
    *,
    as_of: dt.date | None = None,
    member_col: str = "member_id",
    time_col: str = "ts",
    amount_col: str = "amount_fen",
    amount_unit: AmountUnit = "fen",
    timezone: ZoneInfo = DEFAULT_TZ,
    first_day_spend: bool = False,
) -> MemberFeatures:
    """Per-member features of a transactions frame whose columns are named by the options."""
    for option, column in (("member_col", member_col), ("time_col", time_col),
                           ("amount_col", amount_col)):
        if column not in transactions.columns:
            raise InvalidInput(option, f"column {column!r} is not in the transactions "
                               f"(columns: {', '.join(map(str, transactions.columns))})")
    members = transactions[member_col]
    if members.isna().any():
        raise InvalidInput(member_col, f"has {int(members.isna().sum())} empty values")
    days = series_to_days(transactions[time_col], tz=timezone, field=time_col)
    amounts = amounts_in_fen(transactions[amount_col], unit=amount_unit, field=amount_col)
    return compute_features(
        members.to_numpy(), days, amounts,
        as_of_day=None if as_of is None else day_number(as_of),
        first_day_spend=first_day_spend,
    )


def rfm_scores(
    transactions: pd.DataFrame,
    *,
    as_of: dt.date | None = None,
    bins: int = 5,
    monetary: Monetary = "total",
    member_col: str = "member_id",
    time_col: str = "ts",
    amount_col: str = "amount_fen",
    amount_unit: AmountUnit = "fen",
    segment_map: SegmentMap | None = None,
    timezone: ZoneInfo = DEFAULT_TZ,
) -> pd.DataFrame:
    """One row per member: recency_days, frequency, monetary_total, monetary_avg, the R/F/M
    scores, ``rfm_code`` and the named ``segment`` (English) and ``segment_zh``.

    ``as_of`` defaults to the last transaction day; later transactions are ignored. Scores are
    ``bins`` quantile bins (3, 4 or 5), higher = better, ties scored alike; ``monetary`` picks
    the spend column M is scored on. ``segment_map`` defaults to the 11-segment map.
    """
    check_bins(bins)
    features = transaction_features(
        transactions, as_of=as_of, member_col=member_col, time_col=time_col,
        amount_col=amount_col, amount_unit=amount_unit, timezone=timezone,
    )
    return scores_from_features(features, bins=bins, monetary=monetary, segment_map=segment_map)
