"""Windowed per-member aggregates (spend and orders per transaction filter) in numpy.

The transactions are read once into arrays (member code, local day, fen, and dictionary codes of
store, category and SKU when a rule filters on them); each filter is then one boolean mask over
the transactions and two ``np.bincount`` calls. ``RuleFeatures`` carries the RFM features and
these columns together, which is what both sources (files here, ClickHouse in
``segmentation.sources``) return, so a condition tree sees the same columns from either.

Semantics (equal in SQL): ``orders`` counts transaction rows the filter keeps (one row per
order; a file of order lines counts lines), ``spend`` sums their fen; a member with nothing in a
window has 0 and 0.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from segmentation.behaviour import orders_column, spend_column
from segmentation.errors import InvalidInput
from segmentation.features import MemberFeatures, compute_features
from segmentation.windows import TxFilter


@dataclass(frozen=True)
class TextColumn:
    """A dictionary-encoded text column: ``codes`` index ``values`` (-1 for empty)."""

    codes: npt.NDArray[np.int32]
    values: tuple[str, ...]

    @classmethod
    def of(cls, column: pa.ChunkedArray) -> TextColumn:
        encoded = pc.dictionary_encode(column.cast(pa.string())).combine_chunks()
        codes = encoded.indices.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int32)
        return cls(codes, tuple(str(v) for v in encoded.dictionary.to_pylist()))

    def isin(self, names: frozenset[str]) -> npt.NDArray[np.bool_]:
        lookup = np.array([v in names for v in self.values] + [False], dtype=bool)
        return lookup[self.codes]  # -1 picks the trailing False


@dataclass
class TransactionArrays:
    """Transactions as aligned arrays; text columns are read lazily and kept."""

    member_ids: npt.NDArray[np.generic]
    days: npt.NDArray[np.int32]
    amounts: npt.NDArray[np.int64]
    text: dict[str, TextColumn] = field(default_factory=dict)

    @property
    def newest_day(self) -> int | None:
        return int(self.days.max()) if len(self.days) else None


@dataclass(frozen=True)
class RuleFeatures:
    """What a rule needs from the transactions: RFM features (first and last day included),
    one spend and one orders column per filter (``aggregates``, indexed by member id), and the
    newest transaction day of the whole source (for the staleness warning)."""

    features: MemberFeatures
    aggregates: pd.DataFrame
    newest_day: int | None


def _dense(member_ids: npt.NDArray[np.generic], present: npt.NDArray[np.generic]
           ) -> npt.NDArray[np.int64]:
    """Position of each transaction's member in ``present`` (ascending ids)."""
    return np.searchsorted(present, member_ids).astype(np.int64)


def window_aggregates(
    arrays: TransactionArrays, filters: Sequence[TxFilter], *, as_of_day: int,
    member_order: npt.NDArray[np.generic],
) -> pd.DataFrame:
    """Spend and orders per filter for the members of ``member_order`` (ascending ids)."""
    out: dict[str, npt.NDArray[np.int64]] = {}
    if filters:
        seen = arrays.days <= as_of_day
        codes = _dense(arrays.member_ids, member_order)
        n = len(member_order)
        for f in filters:
            first, last = f.window.day_range(as_of_day)
            keep = seen & (arrays.days >= first) & (arrays.days <= last)
            for name, values in (("store", f.stores), ("category", f.categories),
                                 ("sku", f.skus)):
                if values:
                    if name not in arrays.text:
                        raise InvalidInput(name, "the transactions have no such column; map it "
                                           f"with transactions: {{{name}_col: NAME}}")
                    keep &= arrays.text[name].isin(values)
            chosen = codes[keep]
            out[spend_column(f)] = np.bincount(chosen, weights=arrays.amounts[keep],
                                               minlength=n).round().astype(np.int64)
            out[orders_column(f)] = np.bincount(chosen, minlength=n).astype(np.int64)
    return pd.DataFrame(out, index=pd.Index(member_order, name="member_id"))


def array_rule_features(arrays: TransactionArrays, filters: Sequence[TxFilter], *,
                        as_of_day: int) -> RuleFeatures:
    """RFM features and window aggregates of in-memory transaction arrays."""
    if len(arrays.member_ids) and arrays.member_ids.dtype.kind == "O" and pd.isna(
            pd.Series(arrays.member_ids)).any():
        raise InvalidInput("member_id", "has empty values; every transaction needs a member")
    features = compute_features(arrays.member_ids, arrays.days, arrays.amounts,
                                as_of_day=as_of_day)
    aggregates = window_aggregates(arrays, filters, as_of_day=as_of_day,
                                   member_order=features.member_id)
    return RuleFeatures(features, aggregates, arrays.newest_day)
