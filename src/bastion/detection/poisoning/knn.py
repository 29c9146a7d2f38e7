"""kNN label consistency: a row whose neighbours mostly carry another label is suspect.

Flipped labels and clean-label poison sit among rows of a different class (Peri et al.,
2020, "Deep k-NN defense"). Features are standardised; the score is the fraction of the
``k`` nearest other rows whose label differs; rows at or above ``threshold`` (a plurality
of the neighbours disagree, by default) are flagged.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.neighbors import NearestNeighbors

from bastion.detection.poisoning._result import Detection, check_inputs

__all__ = ["KNNLabelConsistency"]


@dataclass(frozen=True, kw_only=True)
class KNNLabelConsistency:
    """Fraction of the ``k`` nearest neighbours that disagree with a row's label."""

    k: int = 10
    threshold: float = 0.5

    def __call__(self, features: np.ndarray, y: np.ndarray | None) -> Detection:
        x, labels = check_inputs(features, y)
        std = x.std(axis=0)
        z = (x - x.mean(axis=0)) / np.where(std > 0, std, 1.0)
        k = min(self.k, len(x) - 1)
        _, nbr = NearestNeighbors(n_neighbors=k + 1).fit(z).kneighbors(z)
        # Drop each row itself; among exact duplicates it may not come first, and when it
        # is missing from its own list the farthest neighbour goes instead.
        drop = nbr == np.arange(len(x))[:, None]
        drop[~drop.any(axis=1), -1] = True
        others = nbr[~drop].reshape(len(x), k)
        scores = (labels[others] != labels[:, None]).mean(axis=1)
        return Detection(scores=scores, flagged=scores > self.threshold - 1e-12,
                         threshold=f">= {self.threshold:.0%} of the {k} nearest rows carry "
                                   "another label")
