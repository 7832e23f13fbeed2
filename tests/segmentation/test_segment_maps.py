"""Segment maps: the built-in 11-segment table, operators' own maps, and the 8-class model."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import yaml

from segmentation.errors import InvalidRule
from segmentation.segments import (
    MAPS_DIR,
    all_codes,
    assign_segments,
    eight_class_segments,
    load_segment_map,
    parse_segment_map,
    rfm11_map,
)

ELEVEN = ["Champions", "Loyal Customers", "Potential Loyalist", "New Customers", "Promising",
          "Need Attention", "About To Sleep", "At Risk", "Can't Lose Them", "Hibernating", "Lost"]


def test_the_11_segment_table_lists_every_code_exactly_once() -> None:
    raw = yaml.safe_load((MAPS_DIR / "rfm11.yaml").read_text(encoding="utf-8"))
    listed = Counter(str(c) for s in raw["segments"] for c in s["codes"])
    assert set(listed) == set(all_codes(5))
    assert max(listed.values()) == 1
    assert len(listed) == 125
    segment_map = rfm11_map(5)
    assert list(segment_map.names) == ELEVEN
    assert len(set(segment_map.names_zh)) == 11
    assert segment_map.segment_of("555") == "Champions"
    assert segment_map.segment_of("111") == "Lost"
    assert segment_map.segment_of("155") == "Can't Lose Them"
    assert segment_map.segment_of("511") == "New Customers"


@pytest.mark.parametrize(("bins", "to_five"), [(3, "135"), (4, "1245")])
def test_fewer_bins_read_scores_at_their_bin_middle(bins: int, to_five: str) -> None:
    small = rfm11_map(bins)
    full = rfm11_map(5)
    assert len(small.table) == bins**3
    for code in all_codes(bins):
        five = "".join(to_five[int(c) - 1] for c in code)
        assert small.segment_of(code) == full.segment_of(five), code
    assert small.segment_of(str(bins) * 3) == "Champions"


def test_assign_segments_vectorised_matches_the_table() -> None:
    segment_map = rfm11_map(5)
    rng = np.random.default_rng(0)
    r, f, m = (rng.integers(1, 6, 500).astype(np.int8) for _ in range(3))
    english, chinese = assign_segments(r, f, m, segment_map)
    for i in range(500):
        code = f"{r[i]}{f[i]}{m[i]}"
        assert english[i] == segment_map.segment_of(code)
        assert chinese[i] == segment_map.names_zh[segment_map.names.index(english[i])]


def test_an_operators_map_by_ranges_and_codes_with_rest(tmp_path: Path) -> None:
    path = tmp_path / "map.yaml"
    path.write_text(
        "name: simple\nbins: 3\nsegments:\n"
        "  - {name: VIP, name_zh: 贵宾, codes: [333, 332]}\n"
        "  - {name: Sleeping, name_zh: 沉睡, r: 1}\n"
        "rest: {name: Others, name_zh: 其他}\n",
        encoding="utf-8",
    )
    segment_map = load_segment_map(path)
    assert segment_map.names == ("VIP", "Sleeping", "Others")
    assert segment_map.codes_of("VIP") == ["332", "333"]
    assert len(segment_map.codes_of("Sleeping")) == 9
    assert len(segment_map.codes_of("Others")) == 27 - 11


@pytest.mark.parametrize(
    ("data", "field", "words"),
    [
        ({"bins": 6, "segments": [{"name": "a", "r": 1}]}, "bins", "3, 4 or 5"),
        ({"segments": []}, "segments", "non-empty"),
        ({"segments": [{"name": "a", "codes": [999]}]}, "segments[0].codes", "not an RFM code"),
        ({"segments": [{"r": "1-2"}]}, "segments[0].name", "required"),
        ({"segments": [{"name": "a", "r": "0-2"}]}, "segments[0].r", "within 1-5"),
        ({"segments": [{"name": "a", "r": "x"}]}, "segments[0].r", "expected a score"),
        ({"segments": [{"name": "a", "r": "1-5"}, {"name": "b", "codes": [111]}]},
         "segments[1]", "already in 'a'"),
        ({"segments": [{"name": "a", "r": 1}]}, "segments", "100 codes belong to no segment"),
        ({"segments": [{"name": "a", "codes": [111], "r": 1}]}, "segments[0]", "not both"),
    ],
)
def test_invalid_maps_name_the_field(data: dict[str, object], field: str, words: str) -> None:
    with pytest.raises(InvalidRule) as error:
        parse_segment_map(data)
    assert error.value.field == field
    assert words in error.value.problem


def test_eight_class_model_against_the_mean_and_median() -> None:
    recency = np.array([1, 1, 100, 100, 1, 1, 100, 100])
    frequency = np.array([9, 1, 9, 1, 9, 1, 9, 1])
    money = np.array([900, 900, 900, 900, 10, 10, 10, 10])
    english, chinese = eight_class_segments(recency, frequency, money)
    assert list(chinese) == ["重要价值客户", "重要发展客户", "重要保持客户", "重要挽留客户",
                             "一般价值客户", "一般发展客户", "一般保持客户", "一般挽留客户"]
    assert english[0] == "Important Value" and english[7] == "General Win-back"
    # Skewed spend: one big spender lifts the mean above everyone else, not the median.
    skewed = np.array([10, 20, 30, 40, 10_000])
    by_mean, _ = eight_class_segments(np.ones(5), np.ones(5), skewed, center="mean")
    by_median, _ = eight_class_segments(np.ones(5), np.ones(5), skewed, center="median")
    assert sum(name.startswith("Important") for name in by_mean) == 1
    assert sum(name.startswith("Important") for name in by_median) == 2
