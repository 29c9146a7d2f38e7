"""Spectral signatures (Tran, Li and Madry, NeurIPS 2018).

Backdoored rows leave a trace along the top singular vector of a class's centred
representations. Per class: centre the rows, take the top right singular vector ``v``,
score each row by its squared projection on ``v``; remove the ``removal_factor`` x
``expected_fraction`` x class size highest (the paper's 1.5 eps). Scores are divided by the
class's median score so they can be ranked across classes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bastion.detection.poisoning._result import Detection, check_inputs

__all__ = ["SpectralSignatures"]


@dataclass(frozen=True, kw_only=True)
class SpectralSignatures:
    """Flag the top ``removal_factor * expected_fraction`` of each class by outlier score."""

    expected_fraction: float = 0.05
    removal_factor: float = 1.5

    def __call__(self, features: np.ndarray, y: np.ndarray | None) -> Detection:
        x, labels = check_inputs(features, y)
        scores = np.zeros(len(x))
        flagged = np.zeros(len(x), dtype=bool)
        for c in np.unique(labels):
            rows = np.flatnonzero(labels == c)
            centred = x[rows] - x[rows].mean(axis=0)
            _, _, vt = np.linalg.svd(centred, full_matrices=False)
            s = (centred @ vt[0]) ** 2
            scores[rows] = s / max(float(np.median(s)), 1e-12)
            n_remove = min(len(rows), round(self.removal_factor * self.expected_fraction
                                            * len(rows)))
            flagged[rows[np.argsort(-s, kind="stable")[:n_remove]]] = True
        return Detection(scores=scores, flagged=flagged,
                         threshold=f"top {self.removal_factor:g} x {self.expected_fraction:.0%}"
                                   " of each class by spectral score")
