"""Per-class PCA + IsolationForest: rows that are easy to isolate from their own class.

Per class: standardise the rows, project them on at most ``n_components`` principal
axes (so a few hundred rows are not spread over many noisy dimensions), fit an
IsolationForest (Liu, Ting and Zhou, 2008) and score each row by the paper's anomaly
score ``s = 2 ** (-E[h(x)] / c(n))`` (scikit-learn's ``-score_samples``): about 0.5 for
ordinary rows, towards 1 for rows isolated in few splits. Rows with ``s > threshold`` are
flagged. The bar is 0.55: on the clean rows of digits and breast cancer it flags about 4 %
(0.5, the paper's "no distinct anomaly" point, flags 9-10 %).

It finds a few odd rows (1 % BadNets: AUC 0.94-0.97) but not a large coherent group,
which IsolationForest reads as normal (masking); activation clustering covers that case.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.decomposition import PCA
from sklearn.ensemble import IsolationForest

from bastion.detection.poisoning._result import Detection, check_inputs

__all__ = ["IsolationDetector"]


@dataclass(frozen=True, kw_only=True)
class IsolationDetector:
    """IsolationForest anomaly score per class on standardised PCA projections."""

    n_components: int = 10
    n_estimators: int = 200
    threshold: float = 0.55
    seed: int = 0

    def __call__(self, features: np.ndarray, y: np.ndarray | None) -> Detection:
        x, labels = check_inputs(features, y)
        scores = np.full(len(x), 0.5)
        for c in np.unique(labels):
            rows = np.flatnonzero(labels == c)
            if len(rows) < 3:
                continue
            std = x[rows].std(axis=0)
            z = (x[rows] - x[rows].mean(axis=0)) / np.where(std > 0, std, 1.0)
            k = min(self.n_components, z.shape[1], len(rows) - 1)
            z = PCA(n_components=k, random_state=self.seed).fit_transform(z)
            forest = IsolationForest(n_estimators=self.n_estimators,
                                     random_state=self.seed).fit(z)
            scores[rows] = -forest.score_samples(z)
        return Detection(scores=scores, flagged=scores > self.threshold,
                         threshold=f"IsolationForest anomaly score > {self.threshold:g} "
                                   f"within the row's class (PCA to {self.n_components} axes)")
