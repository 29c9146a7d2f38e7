"""``SklearnClassifier``: any fitted scikit-learn classifier as a black-box model.

Probabilities come from the estimator's own ``predict_proba``. Margin models that have
none (``LinearSVC``, ``RidgeClassifier``, ``SGDClassifier(loss="hinge")``...) are read
through a softmax of ``decision_function``: ``softmax(z)`` over classes, and for a binary
model, whose decision is one score ``z`` for class 1, ``softmax([0, z]) = [1 - σ(z), σ(z)]``.
These are not calibrated probabilities, but they rank classes as the model does, and the
torch twins (:mod:`bastion.models.twins`) use the same reading, so black-box and
white-box attacks see one model.

Column ``j`` of the probabilities is class ``estimator.classes_[j]``.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from bastion.errors import ShapeMismatchError, UnsupportedModelError
from bastion.models._base import AdapterBase
from bastion.models._checks import check_batch, check_bounds, check_input_shape

__all__ = ["SklearnClassifier", "margin_softmax", "n_features"]


class SklearnClassifier(AdapterBase):
    """A fitted scikit-learn classifier (pipelines and tree ensembles included).

    ``input_shape`` defaults to ``(n_features_in_,)``; a multi-axis shape (an 8x8 image
    for a model trained on 64 flattened pixels) is flattened before the estimator sees
    it. Every sample passed to ``predict_proba`` counts as one query.
    """

    def __init__(
        self,
        estimator: Any,
        *,
        input_shape: Sequence[int] | None = None,
        bounds: Sequence[float] = (0.0, 1.0),
    ) -> None:
        self.estimator = estimator
        classes = getattr(estimator, "classes_", None)
        if classes is None or not hasattr(estimator, "predict"):
            raise UnsupportedModelError(
                f"{type(estimator).__name__} is not a fitted scikit-learn classifier; "
                "fit it first (regressors and clusterers are not supported)"
            )
        if isinstance(classes, list) or np.ndim(classes) != 1:
            raise UnsupportedModelError(
                f"{type(estimator).__name__} predicts several outputs; "
                "only single-label classifiers are supported"
            )
        if not (hasattr(estimator, "predict_proba") or hasattr(estimator, "decision_function")):
            raise UnsupportedModelError(
                f"{type(estimator).__name__} has neither predict_proba nor decision_function"
            )
        self._n_classes = len(classes)
        self._n_features = n_features(estimator)
        self._input_shape = _shape_for(estimator, input_shape, self._n_features)
        self._bounds = check_bounds(bounds)

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        arr = check_batch(x, self._input_shape).reshape(-1, self._n_features)
        if not len(arr):  # scikit-learn refuses empty input; an empty batch asks nothing
            return np.empty((0, self._n_classes), dtype=np.float64)
        self._n_queries += len(arr)
        with warnings.catch_warnings():
            # Fitted on a DataFrame, asked with an array: the columns are in order.
            warnings.filterwarnings("ignore", message="X does not have valid feature names")
            if hasattr(self.estimator, "predict_proba"):
                probs = self.estimator.predict_proba(arr)
            else:
                probs = margin_softmax(self.estimator.decision_function(arr))
        return np.asarray(probs, dtype=np.float64)


def margin_softmax(scores: np.ndarray) -> np.ndarray:
    """Softmax of decision scores; one score per sample means ``[0, z]`` (binary)."""
    z = np.asarray(scores, dtype=np.float64)
    if z.ndim == 1:
        z = np.stack([np.zeros_like(z), z], axis=1)
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return np.asarray(e / e.sum(axis=1, keepdims=True))


def n_features(estimator: Any) -> int:
    """Number of input features the estimator was fitted on."""
    n = getattr(estimator, "n_features_in_", None)
    if n is None:
        raise UnsupportedModelError(
            f"{type(estimator).__name__} does not record how many features it was fitted on"
        )
    return int(n)


def _shape_for(estimator: Any, shape: Sequence[int] | None, n: int) -> tuple[int, ...]:
    if shape is None:
        return (n,)
    dims = check_input_shape(shape, who=type(estimator).__name__)
    if math.prod(dims) != n:
        raise ShapeMismatchError(
            f"input_shape {dims} has {math.prod(dims)} values per sample but "
            f"{type(estimator).__name__} was fitted on {n} features"
        )
    return dims
