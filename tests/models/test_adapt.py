"""as_classifier dispatch and the require_differentiable refusal."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression

from bastion.errors import ConfigError, UnsupportedModelError
from bastion.models import as_classifier, require_differentiable
from bastion.models.sklearn import SklearnClassifier
from bastion.models.torch import TorchClassifier
from bastion.typing import Differentiable

X = np.random.default_rng(0).random((40, 3))
Y = (X[:, 0] > 0.5).astype(int)


def test_torch_module_needs_input_shape() -> None:
    with pytest.raises(ConfigError, match="input shape"):
        as_classifier(torch.nn.Linear(3, 2))
    model = as_classifier(torch.nn.Linear(3, 2), input_shape=(3,), bounds=(-1, 1))
    assert isinstance(model, TorchClassifier) and model.bounds == (-1.0, 1.0)


def test_adapters_pass_through_unchanged() -> None:
    model = as_classifier(torch.nn.Linear(3, 2), input_shape=(3,))
    assert as_classifier(model) is model


def test_differentiable_exactly_when_gradients_exist() -> None:
    linear = as_classifier(LogisticRegression().fit(X, Y))
    forest = as_classifier(RandomForestClassifier(n_estimators=2, random_state=0).fit(X, Y))
    assert isinstance(linear, Differentiable)
    assert isinstance(forest, SklearnClassifier) and not isinstance(forest, Differentiable)
    assert require_differentiable(linear, "PGD") is linear
    with pytest.raises(UnsupportedModelError, match=r"^PGD needs gradients.*query-based"):
        require_differentiable(forest, "PGD")


@pytest.mark.parametrize("obj", [object(), "model.onnx", np.zeros(3)])
def test_unknown_objects_are_refused(obj: object) -> None:
    with pytest.raises(UnsupportedModelError, match="cannot adapt"):
        as_classifier(obj)


def test_importing_models_does_not_import_torch() -> None:
    code = ("import sys, bastion.models as m; assert 'torch' not in sys.modules; "
            "m.SklearnClassifier; "
            "assert 'torch' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_twin_keeps_the_estimator_for_reference_models() -> None:
    from sklearn.linear_model import LogisticRegression

    from bastion.models import as_classifier

    x = np.random.default_rng(0).normal(size=(40, 3))
    clf = LogisticRegression().fit(x, (x[:, 0] > 0).astype(int))
    assert as_classifier(clf).estimator is clf  # type: ignore[attr-defined]
