"""Exact torch twins of scikit-learn classifiers, so white-box attacks apply to them.

:func:`torch_twin` rebuilds a fitted estimator as an ``nn.Module`` from its learned
arrays: linear classifiers (``LogisticRegression``, ``SGDClassifier``, ``LinearSVC``,
``RidgeClassifier``, ``Perceptron``...), ``MLPClassifier`` with every activation, and
``Pipeline``s of ``StandardScaler``/``MinMaxScaler`` steps in front of either.

The twin outputs the estimator's decision scores: ``decision_function`` for linear
models (one column for a binary model, read by ``TorchClassifier`` as the logit of
class 1), the output layer's pre-activation for an MLP. Softmax of the adapter's logits
then equals ``predict_proba``:

* multinomial ``LogisticRegression`` and the MLP softmax layer: softmax of the scores;
* binary models: ``[1 - σ(z), σ(z)] = softmax([0, z])``;
* one-vs-rest log loss (``SGDClassifier(loss="log_loss")``, several classes): sklearn
  normalises ``σ(z_k)`` over classes, which is ``softmax(log σ(z))``, so the twin ends in
  ``LogSigmoid`` (where every ``σ(z_k)`` underflows to 0, below ``z ≈ -745``, sklearn
  falls back to uniform while the twin keeps the exact ratio);
* margin models without ``predict_proba``: the softmax of ``decision_function`` that
  :class:`bastion.models.sklearn.SklearnClassifier` documents.

The twin computes in float64, as scikit-learn does, so it agrees with the estimator to
rounding (about 1e-12), far inside the 1e-5 the tests demand. ``modified_huber`` SGD has
a clipped, piecewise-flat probability and gets no twin: it stays black-box.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

__all__ = ["torch_twin"]

_ACTIVATIONS: dict[str, type[nn.Module]] = {
    "identity": nn.Identity,
    "logistic": nn.Sigmoid,
    "tanh": nn.Tanh,
    "relu": nn.ReLU,
}


def torch_twin(estimator: Any) -> nn.Module | None:
    """A float64 module computing the estimator's scores, or None when it has no twin."""
    from sklearn.pipeline import Pipeline

    if isinstance(estimator, Pipeline):
        return _pipeline_twin(estimator)
    return _final_twin(estimator)


def _final_twin(estimator: Any) -> nn.Module | None:
    from sklearn.linear_model import LogisticRegression, SGDClassifier
    from sklearn.linear_model._base import LinearClassifierMixin
    from sklearn.neural_network import MLPClassifier

    if isinstance(estimator, MLPClassifier):
        return _mlp_twin(estimator)
    if not isinstance(estimator, LinearClassifierMixin) or not hasattr(estimator, "coef_"):
        return None
    linear = _linear(np.asarray(estimator.coef_), np.asarray(estimator.intercept_))
    multiclass = len(estimator.classes_) > 2
    if isinstance(estimator, LogisticRegression) or not hasattr(estimator, "predict_proba"):
        return linear
    if isinstance(estimator, SGDClassifier) and estimator.loss == "log_loss":
        return nn.Sequential(linear, nn.LogSigmoid()) if multiclass else linear
    return None


def _mlp_twin(mlp: Any) -> nn.Module | None:
    if mlp.out_activation_ not in ("softmax", "logistic") or mlp.activation not in _ACTIVATIONS:
        return None
    if mlp.out_activation_ == "logistic" and mlp.n_outputs_ > 1:
        return None  # multi-label: independent sigmoids, not a distribution over classes
    layers: list[nn.Module] = []
    pairs = list(zip(mlp.coefs_, mlp.intercepts_, strict=True))
    for i, (w, b) in enumerate(pairs):
        layers.append(_linear(np.asarray(w).T, np.asarray(b)))
        if i < len(pairs) - 1:
            layers.append(_ACTIVATIONS[mlp.activation]())
    return nn.Sequential(*layers)


def _pipeline_twin(pipe: Any) -> nn.Module | None:
    from sklearn.preprocessing import MinMaxScaler, StandardScaler

    steps: list[nn.Module] = []
    for _, step in pipe.steps[:-1]:
        if step is None or step == "passthrough":
            continue
        n = int(step.n_features_in_) if hasattr(step, "n_features_in_") else 0
        if isinstance(step, StandardScaler):
            scale = 1.0 / step.scale_ if step.with_std else np.ones(n)
            mean = step.mean_ if step.with_mean else np.zeros(n)
            steps.append(_Affine(scale=scale, offset=-mean * scale))
        elif isinstance(step, MinMaxScaler) and not step.clip:
            steps.append(_Affine(scale=step.scale_, offset=step.min_))
        else:
            return None
    final = _final_twin(pipe.steps[-1][1])
    return None if final is None else nn.Sequential(*steps, final)


def _linear(weight: np.ndarray, bias: np.ndarray) -> nn.Linear:
    """``x @ weight.T + bias`` with the estimator's arrays copied in float64."""
    w = np.atleast_2d(weight)
    layer = nn.Linear(w.shape[1], w.shape[0], dtype=torch.float64)
    with torch.no_grad():
        layer.weight.copy_(torch.from_numpy(np.ascontiguousarray(w, dtype=np.float64)))
        layer.bias.copy_(torch.from_numpy(np.atleast_1d(bias).astype(np.float64)))
    layer.requires_grad_(False)
    return layer


class _Affine(nn.Module):
    """``x * scale + offset`` per feature: a fitted scaler's transform."""

    scale: torch.Tensor
    offset: torch.Tensor

    def __init__(self, *, scale: np.ndarray, offset: np.ndarray) -> None:
        super().__init__()
        self.register_buffer("scale", torch.as_tensor(np.asarray(scale, dtype=np.float64)))
        self.register_buffer("offset", torch.as_tensor(np.asarray(offset, dtype=np.float64)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale + self.offset
