"""Per-member purchase features from three aligned arrays: member id, local day, amount (fen).

The definitions (DESIGN §2, issue 3): same-day purchases of a member merge into one purchase
day with the amounts summed; ``recency_days`` is the number of days from the last purchase day to
the as-of day; ``frequency`` is the number of distinct purchase days; ``monetary_total`` the total
spend in fen; ``monetary_avg`` the mean spend per purchase day. Transactions after the as-of day
are not seen, so an earlier as-of date gives the view a campaign would have had on that day.

The reduction avoids pandas groupby: member ids become dense integer codes, each (member, day)
pair becomes one integer key, and a single ``np.sort`` of those keys yields distinct purchase
days, first and last day per member; sums are ``np.bincount``. On 10M transactions this is a few
hundred milliseconds on one core.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from segmentation.errors import InvalidInput

IntArray = npt.NDArray[np.int64]
DayArray = npt.NDArray[np.int32]
FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class MemberFeatures:
    """One entry per member who bought on or before ``as_of_day``, in ascending member id order."""

    member_id: npt.NDArray[np.generic]
    frequency: IntArray
    monetary_total: IntArray
    first_day: DayArray
    last_day: DayArray
    as_of_day: int
    # Spend of the first purchase day; only computed when asked (BG/NBD repeat-spend convention).
    first_day_spend: IntArray | None = None

    @property
    def recency_days(self) -> IntArray:
        """Days from the last purchase day to the as-of day."""
        return (self.as_of_day - self.last_day).astype(np.int64)

    @property
    def monetary_avg(self) -> FloatArray:
        """Mean spend per purchase day (fen, fractional)."""
        return self.monetary_total / self.frequency

    def __len__(self) -> int:
        return len(self.frequency)


def _member_codes(member_ids: npt.NDArray[np.generic]) -> tuple[IntArray, npt.NDArray[np.generic]]:
    """Dense codes 0..K-1 and the id of each code, ids ascending.

    Integer ids over a compact range (the usual case: database keys) are used directly as
    offsets, which skips hashing; the caller drops codes that never occur.
    """
    if member_ids.dtype.kind in "iu" and len(member_ids):
        low = int(member_ids.min())
        span = int(member_ids.max()) - low + 1
        if span <= max(2 * len(member_ids), 1 << 22):
            codes = (member_ids - low).astype(np.int64, copy=False)
            return codes, np.arange(low, low + span, dtype=member_ids.dtype)
    if pd.isna(pd.Series(member_ids)).any():
        raise InvalidInput("member_id", "has empty values; every transaction needs a member")
    codes_raw, uniques = pd.factorize(member_ids, sort=True)
    return codes_raw.astype(np.int64, copy=False), np.asarray(uniques)


def compute_features(
    member_ids: npt.NDArray[np.generic],
    days: npt.NDArray[np.integer],
    amounts: npt.NDArray[np.integer],
    *,
    as_of_day: int | None = None,
    first_day_spend: bool = False,
) -> MemberFeatures:
    """Reduce transactions to per-member features.

    ``days`` are local calendar day numbers (``local_dates.day_number``), ``amounts`` integer
    fen (zero allowed, negative refused: net refunds out of the source first). ``as_of_day``
    defaults to the last transaction day; transactions after it are ignored.
    """
    if not (len(member_ids) == len(days) == len(amounts)):
        raise InvalidInput("transactions", "member, time and amount columns differ in length")
    if amounts.dtype.kind not in "iu":
        raise InvalidInput("amount", f"must be integer fen, got {amounts.dtype}")
    days = days.astype(np.int32, copy=False)
    amounts = amounts.astype(np.int64, copy=False)
    if len(amounts) and int(amounts.min()) < 0:
        raise InvalidInput("amount", "has negative amounts; net refunds into their orders first")
    if as_of_day is None:
        if len(days) == 0:
            raise InvalidInput("transactions", "is empty; give --as-of or some transactions")
        as_of_day = int(days.max())
    elif len(days) and int(days.max()) > as_of_day:
        keep = days <= as_of_day
        member_ids, days, amounts = member_ids[keep], days[keep], amounts[keep]
    if len(days) == 0:
        empty_i = np.zeros(0, np.int64)
        empty_d = np.zeros(0, np.int32)
        return MemberFeatures(
            member_ids[:0], empty_i, empty_i, empty_d, empty_d, as_of_day,
            empty_i if first_day_spend else None,
        )

    codes, ids = _member_codes(member_ids)
    n_codes = len(ids)
    low_day = int(days.min())
    day_span = int(days.max()) - low_day + 1
    # One integer per (member, day); uint32 halves the sort when the product fits.
    key_type = np.uint32 if n_codes * day_span < 2**32 else np.int64
    keys: npt.NDArray[Any] = codes.astype(key_type)
    keys *= key_type(day_span)
    keys += (days - low_day).astype(key_type)
    keys.sort()
    distinct = np.empty(len(keys), dtype=bool)
    distinct[0] = True
    np.not_equal(keys[1:], keys[:-1], out=distinct[1:])
    pair_keys = keys[distinct]
    del keys, distinct
    pair_member = (pair_keys // key_type(day_span)).astype(np.int64)
    pair_day = (pair_keys % key_type(day_span)).astype(np.int32) + np.int32(low_day)
    del pair_keys

    frequency = np.bincount(pair_member, minlength=n_codes)
    present = np.flatnonzero(frequency)
    # pair_member is sorted, so each member's pairs are one run: first and last day are its ends.
    starts = np.flatnonzero(np.r_[True, pair_member[1:] != pair_member[:-1]])
    ends = np.r_[starts[1:] - 1, len(pair_member) - 1]
    totals = np.bincount(codes, weights=amounts, minlength=n_codes)
    first_day = pair_day[starts]
    spend_first: IntArray | None = None
    if first_day_spend:
        first_by_code = np.zeros(n_codes, np.int32)
        first_by_code[present] = first_day
        on_first = days == first_by_code[codes]
        spend_first = np.rint(
            np.bincount(codes[on_first], weights=amounts[on_first], minlength=n_codes)[present]
        ).astype(np.int64)
    return MemberFeatures(
        member_id=ids[present],
        frequency=frequency[present].astype(np.int64),
        # float64 sums of integers are exact below 2**53 fen (90 trillion yuan per member).
        monetary_total=np.rint(totals[present]).astype(np.int64),
        first_day=first_day,
        last_day=pair_day[ends],
        as_of_day=as_of_day,
        first_day_spend=spend_first,
    )


def features_frame(features: MemberFeatures) -> pd.DataFrame:
    """The RFM columns of the features, one row per member."""
    return pd.DataFrame(
        {
            "member_id": features.member_id,
            "recency_days": features.recency_days,
            "frequency": features.frequency,
            "monetary_total": features.monetary_total,
            "monetary_avg": features.monetary_avg,
        }
    )


def bgnbd_frame(features: MemberFeatures) -> pd.DataFrame:
    """The BG/NBD (``lifetimes``) convention, in days.

    ``frequency`` = repeat purchase days (distinct days - 1); ``recency`` = age at the last
    purchase (last day - first day); ``T`` = age at the as-of day (as-of - first day);
    ``monetary_value`` = mean spend of the repeat purchase days (0 for one-time buyers).
    """
    if features.first_day_spend is None:
        raise InvalidInput("first_day_spend", "compute features with first_day_spend=True")
    repeat = features.frequency - 1
    repeat_spend = features.monetary_total - features.first_day_spend
    with np.errstate(invalid="ignore", divide="ignore"):
        monetary = np.where(repeat > 0, repeat_spend / np.maximum(repeat, 1), 0.0)
    return pd.DataFrame(
        {
            "member_id": features.member_id,
            "frequency": repeat,
            "recency": (features.last_day - features.first_day).astype(np.int64),
            "T": (features.as_of_day - features.first_day).astype(np.int64),
            "monetary_value": monetary,
        }
    )
