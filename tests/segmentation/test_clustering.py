"""Clusters: deterministic for a seed, k chosen by silhouette on well-separated groups, labels
in words that follow the centroids."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from segmentation.clustering import cluster_members
from segmentation.errors import InvalidInput


def three_groups(seed: int = 0, per_group: int = 400) -> pd.DataFrame:
    """Champions (recent, frequent, big), occasional small buyers, and long-lapsed one-timers."""
    rng = np.random.default_rng(seed)
    def group(recency: float, frequency: float, spend: float) -> pd.DataFrame:
        return pd.DataFrame({
            "recency_days": rng.lognormal(np.log(recency), 0.2, per_group).round(),
            "frequency": np.maximum(rng.lognormal(np.log(frequency), 0.2, per_group).round(), 1),
            "monetary_total": rng.lognormal(np.log(spend), 0.2, per_group).round(),
        })
    return pd.concat([group(5, 40, 400_000), group(60, 4, 20_000), group(600, 1, 3_000)],
                     ignore_index=True)


def test_same_seed_same_clusters_and_numbers() -> None:
    data = three_groups()
    first = cluster_members(data, k=3, seed=7)
    again = cluster_members(data, k=3, seed=7)
    assert (first.labels == again.labels).all()
    assert first.clusters == again.clusters


def test_silhouette_finds_the_three_groups_and_labels_them() -> None:
    data = three_groups()
    result = cluster_members(data, seed=3)
    assert result.k == 3
    assert result.silhouette is not None and result.silhouette > 0.5
    truth = np.repeat([0, 1, 2], 400)
    # Every true group lands in one cluster, and cluster 0 (best first) is the champions.
    for group in range(3):
        assert len(set(result.labels[truth == group])) == 1
    assert result.labels[0] == 0
    assert result.clusters[0].label == "recent, frequent, high-spend"
    assert result.clusters[0].label_zh == "近期购买、高频、高消费"
    lapsed = result.clusters[int(result.labels[-1])]
    assert lapsed.label == "lapsed, occasional, low-spend"
    assert sum(c.size for c in result.clusters) == len(data)


def test_large_inputs_use_minibatch_and_stay_deterministic() -> None:
    data = three_groups(per_group=2_000)
    a = cluster_members(data, k=3, seed=1, minibatch_above=1_000)
    b = cluster_members(data, k=3, seed=1, minibatch_above=1_000)
    assert (a.labels == b.labels).all()
    assert len(set(a.labels[:2000])) == 1


def test_bad_k_and_too_few_members() -> None:
    with pytest.raises(InvalidInput) as bad_k:
        cluster_members(three_groups(), k=1)
    assert bad_k.value.field == "k"
    with pytest.raises(InvalidInput):
        cluster_members(three_groups().head(2), k=2)
