"""Attribute inference: a memorising model leaks the column; imputation is the bar."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression

from bastion.attacks.inference.attribute import attribute_inference
from bastion.data.dataset import Dataset
from bastion.errors import ConfigError, InvalidDataError
from bastion.models.sklearn import SklearnClassifier

NAMES = ("a", "b", "c", "sex")


@pytest.fixture(scope="module")
def split() -> tuple[Dataset, Dataset]:
    """A binary column independent of everything; 30 % flipped labels to memorise."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(600, 4))
    x[:, 3] = rng.integers(0, 2, 600)
    y = (x[:, 0] + 0.5 * rng.normal(size=600) > 0).astype(int)
    flip = rng.random(600) < 0.3
    y[flip] = 1 - y[flip]
    return (Dataset(x=x[:300], y=y[:300], feature_names=NAMES),
            Dataset(x=x[300:], y=y[300:], feature_names=NAMES))


def _model(estimator: object, members: Dataset) -> SklearnClassifier:
    estimator.fit(members.x, members.y)  # type: ignore[attr-defined]
    return SklearnClassifier(estimator, bounds=(-10.0, 10.0))


def test_memorising_model_leaks_members_attribute_beyond_imputation(
        split: tuple[Dataset, Dataset]) -> None:
    members, others = split
    model = _model(RandomForestClassifier(n_estimators=100, random_state=0), members)
    on_members = attribute_inference(model, members, others, "sex")
    on_others = attribute_inference(model, others, members, "sex")
    assert on_members.advantage > 0.2
    assert on_members.attack_accuracy > on_others.attack_accuracy + 0.2
    assert abs(on_members.baseline_accuracy - 0.5) < 0.1  # the column is unguessable
    assert on_members.n_queries == 2 * 300 == model.n_queries - on_others.n_queries


def test_smooth_model_adds_nothing_over_imputation(split: tuple[Dataset, Dataset]) -> None:
    members, others = split
    result = attribute_inference(_model(LogisticRegression(), members), members, others, 3)
    assert result.advantage < 0.05
    assert result.column == "sex"


def test_bad_columns_are_refused(split: tuple[Dataset, Dataset]) -> None:
    members, others = split
    model = _model(LogisticRegression(), members)
    with pytest.raises(ConfigError, match="no column named 'age'"):
        attribute_inference(model, members, others, "age")
    with pytest.raises(ConfigError, match="out of range"):
        attribute_inference(model, members, others, 7)
    with pytest.raises(ConfigError, match="categorical"):
        attribute_inference(model, members, others, "a")
    with pytest.raises(InvalidDataError, match="labels"):
        attribute_inference(model, Dataset(x=members.x, feature_names=NAMES), others, "sex")
