"""Activation clustering (Chen et al., 2018, arXiv:1811.03728).

Per class, reduce the representations to ``n_components`` dimensions (FastICA as in the
paper, or PCA), split them with 2-means, and call the class poisoned when the smaller
cluster holds at most ``max_relative_size`` of it and the split is real (silhouette at
least ``min_silhouette``). Rows of that smaller cluster are flagged. A row's score is how
much closer it sits to its class's smaller cluster than to the larger one,
``(d_large - d_small) / max(d_large, d_small)``, scaled by the split's silhouette, so
rows of classes with no real split score low.

The silhouette bar is 0.40: on raw digits and breast-cancer features clean classes split
with silhouettes up to 0.36 (honest sub-styles such as two ways to write a 1), classes
carrying a 5 % BadNets backdoor at 0.42 to 0.47.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from sklearn.cluster import KMeans
from sklearn.decomposition import PCA, FastICA
from sklearn.metrics import silhouette_score

from bastion.detection.poisoning._result import Detection, check_inputs

__all__ = ["ActivationClustering"]


@dataclass(frozen=True, kw_only=True)
class ActivationClustering:
    """2-means per class on reduced representations; flag small, well-separated clusters."""

    n_components: int = 10
    reduce: Literal["ica", "pca"] = "pca"
    max_relative_size: float = 0.35
    min_silhouette: float = 0.40
    seed: int = 0

    def _reduced(self, x: np.ndarray) -> np.ndarray:
        k = min(self.n_components, x.shape[1], len(x) - 1)
        reducer = (FastICA(n_components=k, random_state=self.seed, whiten="unit-variance",
                           max_iter=500) if self.reduce == "ica"
                   else PCA(n_components=k, random_state=self.seed))
        return np.asarray(reducer.fit_transform(x), dtype=np.float64)

    def __call__(self, features: np.ndarray, y: np.ndarray | None) -> Detection:
        x, labels = check_inputs(features, y)
        scores = np.zeros(len(x))
        flagged = np.zeros(len(x), dtype=bool)
        for c in np.unique(labels):
            rows = np.flatnonzero(labels == c)
            if len(rows) < 4:
                continue
            z = self._reduced(x[rows] - x[rows].mean(axis=0))
            km = KMeans(n_clusters=2, n_init=10, random_state=self.seed).fit(z)
            if len(np.unique(km.labels_)) < 2:
                continue
            small = int(np.argmin(np.bincount(km.labels_, minlength=2)))
            dist = km.transform(z)
            d_small, d_large = dist[:, small], dist[:, 1 - small]
            closer = (d_large - d_small) / np.maximum(np.maximum(d_large, d_small), 1e-12)
            silhouette = float(silhouette_score(z, km.labels_, random_state=self.seed))
            scores[rows] = closer * max(silhouette, 0.0)
            in_small = km.labels_ == small
            if in_small.mean() <= self.max_relative_size and silhouette >= self.min_silhouette:
                flagged[rows[in_small]] = True
        return Detection(scores=scores, flagged=flagged,
                         threshold=f"smaller 2-means cluster of a class when it holds <= "
                                   f"{self.max_relative_size:.0%} of the class and silhouette "
                                   f">= {self.min_silhouette:g}")
