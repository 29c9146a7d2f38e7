"""Torch twins reproduce scikit-learn's decision_function and predict_proba to 1e-5.

The twin computes in float64 like scikit-learn, so the only difference is summation
order: about 1e-12 on these sizes. The 1e-5 bound is the contract; a wrong weight
layout, a missing intercept or the wrong probability reading misses it by far more.
"""

from __future__ import annotations

import warnings
from functools import cache
from typing import Any

import numpy as np
import pytest
import torch
from sklearn.datasets import make_classification
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import (
    LogisticRegression,
    LogisticRegressionCV,
    Perceptron,
    RidgeClassifier,
    SGDClassifier,
)
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MinMaxScaler, StandardScaler
from sklearn.svm import LinearSVC
from sklearn.tree import DecisionTreeClassifier

from bastion.models.adapt import as_classifier
from bastion.models.sklearn import SklearnClassifier, margin_softmax
from bastion.models.torch import TorchClassifier
from bastion.models.twins import torch_twin
from bastion.typing import Differentiable

TOL = 1e-5


@cache
def _data(n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    x, y = make_classification(n_samples=120, n_features=6, n_informative=4,
                               n_classes=n_classes, random_state=0)
    return x * 3 + 1, y  # off-centre and wide, so scalers and intercepts matter


def _fit(est: Any, n_classes: int) -> Any:
    x, y = _data(n_classes)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return est.fit(x, y)


LINEAR: list[tuple[str, Any]] = [
    ("logreg", LogisticRegression(max_iter=500)),
    ("logreg-cv", LogisticRegressionCV(Cs=3, cv=3, max_iter=500, l1_ratios=(0.0,),
                                       scoring="neg_log_loss", use_legacy_attributes=False)),
    ("sgd-log", SGDClassifier(loss="log_loss", random_state=0)),
    ("sgd-hinge", SGDClassifier(loss="hinge", random_state=0)),
    ("linear-svc", LinearSVC(random_state=0)),
    ("ridge", RidgeClassifier()),
    ("perceptron", Perceptron(random_state=0)),
]
MLPS = [(f"mlp-{a}", MLPClassifier((7, 5), activation=a, max_iter=60, random_state=0))
        for a in ("identity", "logistic", "tanh", "relu")]
PIPES = [
    ("std-logreg", make_pipeline(StandardScaler(), LogisticRegression(max_iter=500))),
    ("minmax-mlp", make_pipeline(MinMaxScaler(), MLPClassifier((5,), max_iter=60,
                                                               random_state=0))),
    ("std-nomean-svc", make_pipeline(StandardScaler(with_mean=False), LinearSVC())),
]
ALL = LINEAR + MLPS + PIPES


def _sklearn_probs(est: Any, x: np.ndarray) -> np.ndarray:
    if hasattr(est, "predict_proba"):
        return np.asarray(est.predict_proba(x))
    return margin_softmax(est.decision_function(x))


@pytest.mark.parametrize("n_classes", [2, 4])
@pytest.mark.parametrize(("name", "template"), ALL, ids=[n for n, _ in ALL])
def test_twin_probabilities_match_predict_proba(name: str, template: Any, n_classes: int) -> None:
    from sklearn.base import clone

    est = _fit(clone(template), n_classes)
    model = as_classifier(est)
    x, _ = _data(n_classes)
    assert isinstance(model, TorchClassifier) and model.n_classes == n_classes
    probs = model.predict_proba(x)
    np.testing.assert_allclose(probs, _sklearn_probs(est, x), rtol=0, atol=TOL)
    via_logits = torch.softmax(model.logits(torch.from_numpy(x)), 1).numpy()
    np.testing.assert_allclose(via_logits, probs, rtol=0, atol=1e-12)


@pytest.mark.parametrize("n_classes", [2, 4])
@pytest.mark.parametrize(("name", "template"), LINEAR + PIPES[:1] + PIPES[2:],
                         ids=[n for n, _ in LINEAR + PIPES[:1] + PIPES[2:]])
def test_twin_scores_match_decision_function(name: str, template: Any, n_classes: int) -> None:
    from sklearn.base import clone

    est = _fit(clone(template), n_classes)
    twin = torch_twin(est)
    assert twin is not None
    x, _ = _data(n_classes)
    scores = twin(torch.from_numpy(x)).detach().numpy()
    decision = np.asarray(est.decision_function(x))
    if n_classes == 2:
        np.testing.assert_allclose(scores[:, 0], decision, rtol=0, atol=TOL)
    elif name == "sgd-log":  # one-vs-rest log loss: the twin ends in log σ(z)
        np.testing.assert_allclose(scores, -np.logaddexp(0, -decision), atol=TOL)
    else:
        np.testing.assert_allclose(scores, decision, rtol=0, atol=TOL)


@pytest.mark.parametrize("n_classes", [2, 3])
def test_mlp_scores_are_output_pre_activation(n_classes: int) -> None:
    est = _fit(MLPClassifier((4,), activation="tanh", max_iter=60, random_state=0), n_classes)
    twin = torch_twin(est)
    assert twin is not None
    x, _ = _data(n_classes)
    hidden = np.tanh(x @ est.coefs_[0] + est.intercepts_[0])
    expected = hidden @ est.coefs_[1] + est.intercepts_[1]
    np.testing.assert_allclose(twin(torch.from_numpy(x)).detach().numpy(), expected, atol=1e-12)


@pytest.mark.parametrize(
    ("template", "reason"),
    [
        (DecisionTreeClassifier(random_state=0), "trees have no gradient"),
        (SGDClassifier(loss="modified_huber", random_state=0), "clipped probabilities"),
        (make_pipeline(StandardScaler(), DecisionTreeClassifier()), "tree at the end"),
        (make_pipeline(MinMaxScaler(clip=True), LogisticRegression()), "clipping scaler"),
    ],
)
def test_no_twin_stays_black_box(template: Any, reason: str) -> None:
    est = _fit(template, 3)
    assert torch_twin(est) is None, reason
    model = as_classifier(est)
    assert isinstance(model, SklearnClassifier) and not isinstance(model, Differentiable)


def test_twin_gradient_of_logistic_regression_is_its_weights() -> None:
    est = _fit(LogisticRegression(max_iter=500), 2)
    model = as_classifier(est)
    assert isinstance(model, TorchClassifier)
    x = torch.zeros(1, 6, dtype=torch.float64, requires_grad=True)
    (grad,) = torch.autograd.grad(model.logits(x)[0, 1], x)
    np.testing.assert_allclose(grad.numpy()[0], est.coef_[0], atol=1e-12)


def test_twin_for_image_shaped_inputs_flattens() -> None:
    est = _fit(LogisticRegression(max_iter=500), 3)
    model = as_classifier(est, input_shape=(1, 2, 3))
    x, _ = _data(3)
    probs = model.predict_proba(x.reshape(-1, 1, 2, 3))
    np.testing.assert_allclose(probs, est.predict_proba(x), atol=TOL)
