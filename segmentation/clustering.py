"""K-means clusters of members on scaled log R/F/M, labelled in words from their centroids.

Features are ``log1p`` of recency days, purchase days and spend, standardised, because all three
are heavily skewed: without the log a handful of big spenders would be clusters of their own.
``k`` is the operator's, or chosen by the silhouette score on a sample (silhouette is quadratic
in the sample size, so it never sees the full base). Above ``minibatch_above`` members the fit
uses MiniBatchKMeans. Cluster numbers are ordered by the centroid's value (best first), and all
randomness comes from ``seed``, so the same data and seed give the same clusters and numbers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd
from sklearn.cluster import KMeans, MiniBatchKMeans
from sklearn.metrics import silhouette_score
from sklearn.preprocessing import StandardScaler

from segmentation.errors import InvalidInput

FEATURES = ("recency_days", "frequency", "monetary_total")
# (low words, high words) per feature; "high" recency days means long ago.
_WORDS = {
    "recency_days": (("recent", "近期购买"), ("lapsed", "久未购买")),
    "frequency": (("occasional", "低频"), ("frequent", "高频")),
    "monetary_total": (("low-spend", "低消费"), ("high-spend", "高消费")),
}


@dataclass(frozen=True)
class Cluster:
    """One cluster: its number, label, size and centroid in the original units."""

    number: int
    label: str
    label_zh: str
    size: int
    recency_days: float
    frequency: float
    monetary_total: float


@dataclass(frozen=True)
class Clustering:
    """Cluster number per member (aligned with the input rows) and the clusters."""

    labels: npt.NDArray[np.int16]
    clusters: tuple[Cluster, ...]
    k: int
    silhouette: float | None  # on the sample, when k was chosen by silhouette

    def label_of(self, number: int) -> str:
        """The English label of cluster ``number``."""
        return self.clusters[number].label


def _matrix(features: pd.DataFrame) -> npt.NDArray[np.float64]:
    missing = [c for c in FEATURES if c not in features.columns]
    if missing:
        raise InvalidInput(missing[0], "is needed for clustering")
    matrix: npt.NDArray[np.float64] = np.log1p(features[list(FEATURES)].to_numpy(np.float64))
    return matrix


def _model(k: int, seed: int, n: int, minibatch_above: int) -> KMeans | MiniBatchKMeans:
    if n > minibatch_above:
        return MiniBatchKMeans(n_clusters=k, random_state=seed, batch_size=8192, n_init=3)
    return KMeans(n_clusters=k, random_state=seed, n_init=4)


def choose_k(scaled: npt.NDArray[np.float64], *, candidates: range, seed: int,
             sample: int) -> tuple[int, float]:
    """The k with the best silhouette score on a random sample, and that score."""
    rng = np.random.default_rng(seed)
    rows = scaled if len(scaled) <= sample else scaled[rng.choice(len(scaled), sample, False)]
    best: tuple[int, float] | None = None
    for k in candidates:
        if k >= len(np.unique(rows, axis=0)):
            break
        labels = KMeans(n_clusters=k, random_state=seed, n_init=4).fit_predict(rows)
        score = float(silhouette_score(rows, labels, random_state=seed))
        if best is None or score > best[1]:
            best = (k, score)
    if best is None:
        raise InvalidInput("k", "too few distinct members to form two clusters")
    return best


def _words(centroid: pd.Series, medians: pd.Series) -> tuple[str, str]:
    english, chinese = [], []
    for feature in ("recency_days", "frequency", "monetary_total"):
        low, high = _WORDS[feature]
        en, zh = high if centroid[feature] > medians[feature] else low
        english.append(en)
        chinese.append(zh)
    return ", ".join(english), "".join(f"{w}、" for w in chinese).rstrip("、")


def cluster_members(
    features: pd.DataFrame,
    *,
    k: int | None = None,
    seed: int = 42,
    candidates: range = range(2, 9),
    sample: int = 3_000,
    minibatch_above: int = 200_000,
) -> Clustering:
    """Cluster members (rows with recency_days, frequency, monetary_total) into k groups."""
    if k is not None and not 2 <= k <= 20:
        raise InvalidInput("k", f"must be between 2 and 20, got {k}")
    if len(features) < 3:
        raise InvalidInput("members", "need at least 3 members with purchases to cluster")
    matrix = _matrix(features)
    scaled = StandardScaler().fit_transform(matrix)
    silhouette = None
    if k is None:
        k, silhouette = choose_k(scaled, candidates=candidates, seed=seed, sample=sample)
    model = _model(k, seed, len(scaled), minibatch_above)
    raw = model.fit_predict(scaled)
    # Order clusters best first: recent, frequent and high-spending centroids on top.
    centers = model.cluster_centers_
    value = -centers[:, 0] + centers[:, 1] + centers[:, 2]
    order = np.argsort(-value, kind="stable")
    renumber = np.empty(k, dtype=np.int16)
    renumber[order] = np.arange(k, dtype=np.int16)
    labels = renumber[raw]
    originals = pd.DataFrame(features[list(FEATURES)].to_numpy(dtype=np.float64),
                             columns=list(FEATURES))
    means = originals.groupby(labels).mean()
    medians = originals.median()
    sizes = np.bincount(labels, minlength=k)
    seen: dict[str, int] = {}
    clusters = []
    for number in range(k):
        centroid = means.loc[number] if number in means.index else medians
        label, label_zh = _words(centroid, medians)
        seen[label] = seen.get(label, 0) + 1
        if seen[label] > 1:  # two clusters with the same words: number the later one
            label, label_zh = f"{label} ({seen[label]})", f"{label_zh}（{seen[label]}）"
        clusters.append(Cluster(number, label, label_zh, int(sizes[number]),
                                float(centroid["recency_days"]), float(centroid["frequency"]),
                                float(centroid["monetary_total"])))
    return Clustering(labels, tuple(clusters), k, silhouette)
