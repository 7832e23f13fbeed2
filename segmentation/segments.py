"""Scores and named segments: R, F and M quantile scores, then the maps from codes to names.

Scores: a member's score is ``1 + floor(bins * worse / n)`` where ``worse`` is the number of
members with a strictly worse value (for R: strictly more days since the last purchase; for F
and M: strictly less). So members with equal values always share a score, and a value shared by
many members collapses the bins it spans (with 60% one-time buyers, F scores 1 for all of them
and 4 or 5 for the rest: no member scores 2 or 3; if everyone ties, everyone scores 1). This is
``pandas.qcut`` on ``rank(method="min", pct=True)``, without its "bin edges must be unique"
error.

Segments: a segment map is a table from every RFM code to exactly one segment (names in English
and Chinese). It is written in YAML, either as explicit codes or as score ranges::

    name: my-map
    bins: 5
    segments:
      - {name: VIP, name_zh: 贵宾, codes: [555, 554]}
      - {name: Sleeping, name_zh: 沉睡, r: 1-2}        # r/f/m: "a-b", a number, or a list
    rest: {name: Others, name_zh: 其他}                 # optional: codes no segment claims

A code claimed twice, or left unclaimed without ``rest``, is an error naming the code. The
built-in 11-segment map is ``maps/rfm11.yaml`` in this same format. For 3 or 4 bins the built-in
map reads each score at its bin's middle on the 1-5 scale (3 bins: 1, 3, 5; 4 bins: 1, 2, 4, 5).

The 8-class model (RFM 八类客户) compares each of R, F and M with the mean (or median) over the
members: recency below it, frequency and spend above it count as "high".
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd
import yaml

from segmentation.errors import InvalidInput, InvalidRule

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


MAPS_DIR = Path(__file__).parent / "maps"

# (R high, F high, M high) -> (English, Chinese)
EIGHT_CLASSES: dict[tuple[bool, bool, bool], tuple[str, str]] = {
    (True, True, True): ("Important Value", "重要价值客户"),
    (True, False, True): ("Important Development", "重要发展客户"),
    (False, True, True): ("Important Retention", "重要保持客户"),
    (False, False, True): ("Important Win-back", "重要挽留客户"),
    (True, True, False): ("General Value", "一般价值客户"),
    (True, False, False): ("General Development", "一般发展客户"),
    (False, True, False): ("General Retention", "一般保持客户"),
    (False, False, False): ("General Win-back", "一般挽留客户"),
}


@dataclass(frozen=True)
class SegmentMap:
    """Every RFM code of ``bins`` mapped to one segment; ``names``/``names_zh`` in map order."""

    name: str
    bins: int
    names: tuple[str, ...]
    names_zh: tuple[str, ...]
    # segment position per code, in scoring.code_index order (len == bins**3)
    table: tuple[int, ...]

    def segment_of(self, code: str) -> str:
        """The English segment name of one code such as ``"545"``."""
        r, f, m = (int(c) for c in code)
        index = ((r - 1) * self.bins + (f - 1)) * self.bins + (m - 1)
        return self.names[self.table[index]]

    def codes_of(self, name: str) -> list[str]:
        """The codes of one segment, in code order."""
        position = self.names.index(name)
        return [c for c, p in zip(all_codes(self.bins), self.table, strict=True) if p == position]


def _score_set(value: Any, field: str, bins: int) -> set[int]:
    """Scores named by ``4``, ``"4-5"`` or ``[1, 2]``."""
    items = value if isinstance(value, list) else [value]
    scores: set[int] = set()
    for item in items:
        text = str(item).strip()
        low_text, _, high_text = text.partition("-")
        try:
            low = int(low_text)
            high = int(high_text) if high_text else low
        except ValueError:
            raise InvalidRule(
                field, f"expected a score, a range like 4-5, or a list; got {item!r}"
            ) from None
        if not 1 <= low <= high <= bins:
            raise InvalidRule(field, f"scores must lie within 1-{bins}, got {text}")
        scores.update(range(low, high + 1))
    return scores


def _segment_codes(spec: dict[str, Any], where: str, bins: int) -> list[str]:
    if "codes" in spec:
        if any(k in spec for k in ("r", "f", "m")):
            raise InvalidRule(where, "give either codes or r/f/m ranges, not both")
        codes = spec["codes"]
        if not isinstance(codes, list) or not codes:
            raise InvalidRule(f"{where}.codes", "must be a non-empty list of codes like 555")
        valid = set(all_codes(bins))
        out = []
        for code in codes:
            text = str(code)
            if text not in valid:
                raise InvalidRule(f"{where}.codes", f"{text!r} is not an RFM code for {bins} bins")
            out.append(text)
        return out
    if not any(k in spec for k in ("r", "f", "m")):
        raise InvalidRule(where, "needs codes or at least one of r, f, m")
    every = set(range(1, bins + 1))
    rs, fs, ms = (
        _score_set(spec[k], f"{where}.{k}", bins) if k in spec else every for k in ("r", "f", "m")
    )
    return [c for c in all_codes(bins) if int(c[0]) in rs and int(c[1]) in fs and int(c[2]) in ms]


def _name_pair(spec: Any, where: str) -> tuple[str, str]:
    if not isinstance(spec, dict):
        raise InvalidRule(where, "must be a mapping with name (and name_zh)")
    name = spec.get("name")
    if not isinstance(name, str) or not name.strip():
        raise InvalidRule(f"{where}.name", "is required (a non-empty text)")
    zh = spec.get("name_zh", name)
    if not isinstance(zh, str) or not zh.strip():
        raise InvalidRule(f"{where}.name_zh", "must be a non-empty text")
    return name, zh


def parse_segment_map(data: Any, *, source: str = "segment map") -> SegmentMap:
    """Validate a segment map (already parsed YAML); errors name the offending field."""
    if not isinstance(data, dict):
        raise InvalidRule(source, "must be a mapping with bins and segments")
    bins = data.get("bins", 5)
    try:
        check_bins(bins)
    except Exception:
        raise InvalidRule("bins", f"must be 3, 4 or 5, got {bins!r}") from None
    segments = data.get("segments")
    if not isinstance(segments, list) or not segments:
        raise InvalidRule("segments", "must be a non-empty list")
    names: list[str] = []
    names_zh: list[str] = []
    owner: dict[str, int] = {}
    for i, spec in enumerate(segments):
        where = f"segments[{i}]"
        name, zh = _name_pair(spec, where)
        if name in names:
            raise InvalidRule(f"{where}.name", f"{name!r} appears twice")
        names.append(name)
        names_zh.append(zh)
        for code in _segment_codes(spec, where, bins):
            if code in owner:
                raise InvalidRule(where, f"code {code} is already in {names[owner[code]]!r}")
            owner[code] = i
    missing = [c for c in all_codes(bins) if c not in owner]
    if missing:
        if "rest" not in data:
            shown = ", ".join(missing[:8]) + (" ..." if len(missing) > 8 else "")
            raise InvalidRule("segments", f"{len(missing)} codes belong to no segment: {shown} "
                              "(add them, or a rest: segment)")
        name, zh = _name_pair(data["rest"], "rest")
        if name in names:
            raise InvalidRule("rest.name", f"{name!r} is already a segment")
        names.append(name)
        names_zh.append(zh)
        owner.update({c: len(names) - 1 for c in missing})
    table = tuple(owner[c] for c in all_codes(bins))
    return SegmentMap(str(data.get("name", source)), bins, tuple(names), tuple(names_zh), table)


def load_segment_map(path: Path) -> SegmentMap:
    """Read and validate a segment map from a YAML file."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise InvalidRule(str(path), f"cannot read: {exc}") from None
    return parse_segment_map(data, source=path.name)


@lru_cache(maxsize=3)
def rfm11_map(bins: int = 5) -> SegmentMap:
    """The built-in 11-segment map for ``bins`` (3, 4 or 5)."""
    base = load_segment_map(MAPS_DIR / "rfm11.yaml")
    check_bins(bins)
    if bins == 5:
        return base
    # Each score read at the middle of its bin on the 1-5 scale.
    to5 = [int((s - 0.5) / bins * 5) + 1 for s in range(1, bins + 1)]
    table = tuple(
        base.table[code_index(np.array([to5[r]]), np.array([to5[f]]), np.array([to5[m]]), 5)[0]]
        for r in range(bins) for f in range(bins) for m in range(bins)
    )
    return SegmentMap(base.name, bins, base.names, base.names_zh, table)


def assign_segments(
    r: ScoreArray, f: ScoreArray, m: ScoreArray, segment_map: SegmentMap
) -> tuple[pd.Categorical, pd.Categorical]:
    """English and Chinese segment of each member, as categoricals in map order."""
    lookup = np.asarray(segment_map.table, dtype=np.int16)
    positions = lookup[code_index(r, f, m, segment_map.bins)]
    english = pd.Categorical.from_codes(positions, categories=list(segment_map.names))
    chinese = pd.Categorical.from_codes(positions, categories=list(segment_map.names_zh))
    return english, chinese


def eight_class_segments(
    recency_days: npt.NDArray[Any],
    frequency: npt.NDArray[Any],
    monetary: npt.NDArray[Any],
    *,
    center: Literal["mean", "median"] = "mean",
) -> tuple[pd.Categorical, pd.Categorical]:
    """The 8-class model: R, F, M each high or low against the ``center`` of all members."""
    if center not in ("mean", "median"):
        raise InvalidRule("center", f"must be mean or median, got {center!r}")
    def pick(values: npt.NDArray[Any]) -> float:
        return float(np.mean(values) if center == "mean" else np.median(values))

    if len(recency_days) == 0:
        empty = pd.Categorical([], categories=[v[0] for v in EIGHT_CLASSES.values()])
        return empty, pd.Categorical([], categories=[v[1] for v in EIGHT_CLASSES.values()])
    r_high = recency_days < pick(recency_days)
    f_high = frequency > pick(frequency)
    m_high = monetary > pick(monetary)
    keys = list(EIGHT_CLASSES)
    lookup = np.zeros(8, dtype=np.int8)
    for position, (rh, fh, mh) in enumerate(keys):
        lookup[int(rh) * 4 + int(fh) * 2 + int(mh)] = position
    positions = lookup[r_high.astype(np.intp) * 4 + f_high.astype(np.intp) * 2 + m_high]
    english = pd.Categorical.from_codes(
        positions, categories=[v[0] for v in EIGHT_CLASSES.values()]
    )
    chinese = pd.Categorical.from_codes(
        positions, categories=[v[1] for v in EIGHT_CLASSES.values()]
    )
    return english, chinese
