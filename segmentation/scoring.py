"""Quantile scores 1..bins for R, F and M, with ties always scored alike.

A member's score is ``1 + floor(bins * worse / n)`` where ``worse`` is the number of members
with a strictly worse value (for R: strictly more days since the last purchase; for F and M:
strictly less). So members with equal values always share a score, and a value shared by many
members collapses the bins it spans (with 60% one-time buyers, F scores 1 for all of them and 4
or 5 for the rest: no member scores 2 or 3; if everyone ties, everyone scores 1). This is
``pandas.qcut`` on ``rank(method="min", pct=True)``, without its "bin edges must be unique" error.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from segmentation.errors import InvalidInput

VALID_BINS = (3, 4, 5)
ScoreArray = npt.NDArray[np.int8]


def check_bins(bins: int) -> int:
    """``bins`` if it is a supported number of score bins, else ``InvalidInput``."""
    if bins not in VALID_BINS:
        raise InvalidInput("bins", f"must be 3, 4 or 5, got {bins}")
    return bins


def _worse_counts(
    values: npt.NDArray[np.generic], *, higher_is_better: bool
) -> npt.NDArray[np.int64]:
    n = len(values)
    if values.dtype.kind in "iu" and n and int(values.max()) - int(values.min()) <= 4 * n + 1024:
        # Small integer ranges (days, purchase counts): counting beats sorting.
        low = int(values.min())
        offsets = (values - low).astype(np.intp)
        counts = np.bincount(offsets)
        inverse = offsets
    else:
        _, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
    cumulative = np.cumsum(counts)
    worse_by_value = cumulative - counts if higher_is_better else n - cumulative
    return worse_by_value[inverse].astype(np.int64)


def quantile_scores(
    values: npt.NDArray[np.generic], bins: int, *, higher_is_better: bool = True
) -> ScoreArray:
    """Scores 1..``bins`` (higher = better) by the share of members with a strictly worse value."""
    check_bins(bins)
    n = len(values)
    if n == 0:
        return np.zeros(0, np.int8)
    if values.dtype.kind == "f" and np.isnan(values).any():
        raise InvalidInput("values", "contain NaN; every scored member needs a value")
    worse = _worse_counts(values, higher_is_better=higher_is_better)
    return (1 + (bins * worse) // n).astype(np.int8)


def code_index(r: ScoreArray, f: ScoreArray, m: ScoreArray, bins: int) -> npt.NDArray[np.intp]:
    """Position 0..bins**3-1 of each (r, f, m) in the code table (r major, m minor)."""
    b = np.intp(bins)
    return (r.astype(np.intp) - 1) * b * b + (f.astype(np.intp) - 1) * b + (m.astype(np.intp) - 1)


def all_codes(bins: int) -> list[str]:
    """Every RFM code for ``bins``, in ``code_index`` order: "111", "112", ... ."""
    return [f"{r}{f}{m}" for r in range(1, bins + 1) for f in range(1, bins + 1)
            for m in range(1, bins + 1)]
