"""Label errors by confident learning (Northcutt, Jiang and Chuang, JAIR 2021).

From out-of-fold predicted probabilities ``p`` (a model never scores a row it was fit on):
each class's threshold ``t_j`` is the mean ``p_j`` over rows labelled ``j``. A row counts
towards the confident joint at (given label, ``argmax_j p_j`` over the classes with
``p_j >= t_j``); rows that land off the diagonal are flagged (the paper's ``C_confusion``
off-diagonal rule). The score is ``1 - p[given label]`` (self-confidence, the ranking the
paper uses).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from bastion.detection.poisoning._result import Detection, check_inputs
from bastion.errors import ShapeMismatchError

__all__ = ["ConfidentLearning", "out_of_fold_proba"]


def out_of_fold_proba(x: np.ndarray, y: np.ndarray, *, n_folds: int = 3,
                      seed: int = 0) -> np.ndarray:
    """Out-of-fold class probabilities from a standardised logistic regression."""
    folds = min(n_folds, int(np.bincount(np.unique(y, return_inverse=True)[1]).min()))
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    cv = StratifiedKFold(n_splits=max(folds, 2), shuffle=True, random_state=seed)
    proba: np.ndarray = cross_val_predict(model, x, y, cv=cv, method="predict_proba")
    return proba


@dataclass(frozen=True, kw_only=True)
class ConfidentLearning:
    """Flag rows whose confident label differs from the given one."""

    n_folds: int = 3
    seed: int = 0

    def __call__(self, features: np.ndarray, y: np.ndarray | None, *,
                 proba: np.ndarray | None = None) -> Detection:
        """``proba``: out-of-fold probabilities, columns in sorted class order; else fit."""
        x, labels = check_inputs(features, y)
        classes, given = np.unique(labels, return_inverse=True)
        if proba is None:
            proba = out_of_fold_proba(x, labels, n_folds=self.n_folds, seed=self.seed)
        if proba.shape != (len(x), len(classes)):
            raise ShapeMismatchError(f"probabilities of shape {proba.shape} do not match "
                                     f"{len(x)} rows and {len(classes)} classes")
        thresholds = np.array([proba[given == j, j].mean() for j in range(len(classes))])
        above = proba >= thresholds
        confident = np.where(above, proba, -np.inf).argmax(axis=1)
        counted = above.any(axis=1)
        flagged = counted & (confident != given)
        scores = 1.0 - proba[np.arange(len(x)), given]
        return Detection(scores=scores, flagged=flagged,
                         threshold="confident label (p_j >= class mean p_j) differs from "
                                   "the given label")
