"""SklearnClassifier: the black-box view of any fitted scikit-learn classifier."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from sklearn.cluster import KMeans
from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import LinearRegression, RidgeClassifier
from sklearn.multioutput import MultiOutputClassifier
from sklearn.neighbors import KNeighborsClassifier
from sklearn.svm import SVC, LinearSVC

from bastion.errors import ConfigError, ShapeMismatchError, UnsupportedModelError
from bastion.models.sklearn import SklearnClassifier, margin_softmax
from bastion.typing import Classifier, Differentiable

RNG = np.random.default_rng(0)
X = RNG.random((60, 4))
Y3 = (X[:, 0] * 3).astype(int)
Y2 = (X[:, 1] > 0.5).astype(int)


@pytest.mark.parametrize(
    "est",
    [RandomForestClassifier(n_estimators=5, random_state=0),
     GradientBoostingClassifier(n_estimators=5, random_state=0),
     KNeighborsClassifier(n_neighbors=3)],
    ids=["forest", "boosting", "knn"],
)
def test_uses_predict_proba_when_present(est: Any) -> None:
    est.fit(X, Y3)
    model = SklearnClassifier(est)
    assert isinstance(model, Classifier) and not isinstance(model, Differentiable)
    assert model.n_classes == 3 and model.input_shape == (4,)
    np.testing.assert_allclose(model.predict_proba(X[:7]), est.predict_proba(X[:7]))
    assert model.n_queries == 7


@pytest.mark.parametrize(("est", "y"), [(LinearSVC(), Y2), (RidgeClassifier(), Y3),
                                        (SVC(), Y3)], ids=["binary-svc", "ridge", "svc"])
def test_margin_models_read_as_softmax_of_decision(est: Any, y: np.ndarray) -> None:
    est.fit(X, y)
    probs = SklearnClassifier(est).predict_proba(X)
    scores = np.asarray(est.decision_function(X))
    z = np.stack([np.zeros_like(scores), scores], 1) if scores.ndim == 1 else scores
    expected = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(probs, expected, atol=1e-12)
    assert (probs.argmax(axis=1) == est.predict(X)).all()


def test_margin_softmax_is_stable_for_huge_scores() -> None:
    probs = margin_softmax(np.array([[1000.0, 0.0, -1000.0], [5.0, 5.0, 5.0]]))
    np.testing.assert_allclose(probs, np.array([[1, 0, 0], [1 / 3, 1 / 3, 1 / 3]]))
    np.testing.assert_allclose(margin_softmax(np.array([0.0, 800.0])),
                               np.array([[0.5, 0.5], [0.0, 1.0]]))


def test_flattens_multi_axis_inputs() -> None:
    est = RandomForestClassifier(n_estimators=3, random_state=0).fit(X, Y3)
    model = SklearnClassifier(est, input_shape=(1, 2, 2))
    np.testing.assert_allclose(model.predict_proba(X.reshape(-1, 1, 2, 2)), est.predict_proba(X))
    with pytest.raises(ShapeMismatchError, match="fitted on 4 features"):
        SklearnClassifier(est, input_shape=(1, 3, 3))


def test_dataframe_fitted_model_takes_arrays_without_warning() -> None:
    est = RandomForestClassifier(n_estimators=3, random_state=0)
    est.fit(pd.DataFrame(X, columns=list("abcd")), Y3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        SklearnClassifier(est).predict_proba(X[:2])


@pytest.mark.parametrize(
    ("est", "match"),
    [
        (RandomForestClassifier(), "fit it first"),
        (LinearRegression().fit(X, Y3), "not a fitted scikit-learn classifier"),
        (KMeans(n_clusters=2, n_init=1).fit(X), "not a fitted scikit-learn classifier"),
        (MultiOutputClassifier(RidgeClassifier()).fit(X, np.stack([Y2, Y3], 1)),
         "several outputs"),
    ],
    ids=["unfitted", "regressor", "clusterer", "multi-output"],
)
def test_refuses_what_is_not_a_classifier(est: Any, match: str) -> None:
    with pytest.raises(UnsupportedModelError, match=match):
        SklearnClassifier(est)


def test_shape_and_bounds_errors() -> None:
    model = SklearnClassifier(RidgeClassifier().fit(X, Y3), bounds=(-1, 2))
    assert model.bounds == (-1.0, 2.0)
    with pytest.raises(ShapeMismatchError, match="batch axis"):
        model.predict_proba(X[0])
    with pytest.raises(ShapeMismatchError, match=r"\(n, 4\)"):
        model.predict_proba(X[:, :3])
    assert model.n_queries == 0
    with pytest.raises(ConfigError, match="low < high"):
        SklearnClassifier(RidgeClassifier().fit(X, Y3), bounds=(1, 1))


@settings(max_examples=25, deadline=None)
@given(x=arrays(np.float64, (5, 4), elements=st.floats(-1e3, 1e3)))
def test_rows_always_sum_to_one(x: np.ndarray) -> None:
    model = SklearnClassifier(LinearSVC().fit(X, Y3))
    probs = model.predict_proba(x)
    assert np.all(probs >= 0)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-12)
