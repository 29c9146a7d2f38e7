"""The base owns validation, capability checks, clean-misclassified handling and success."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bastion.attacks import ATTACKS, supported_attacks
from bastion.errors import ConfigError, InvalidDataError, ShapeMismatchError, UnsupportedModelError

from .conftest import BlackBox


@pytest.mark.parametrize(
    ("kwargs", "error", "words"),
    [
        ({"eps": -0.1}, ConfigError, "positive"),
        ({"eps": 0.0}, ConfigError, "positive"),
        ({"eps": float("nan")}, ConfigError, "positive"),
        ({"eps": 1.5}, ConfigError, "larger than the whole input range"),
        ({"eps": 8.5, "norm": "l2"}, ConfigError, "larger than the whole input range"),
        ({"eps": 0.1, "norm": "l1"}, ConfigError, "does not support norm"),
        ({"eps": None}, ConfigError, "needs a budget"),
    ],
)
def test_bad_parameters_raise_one_line_errors(tiny, kwargs, error, words) -> None:
    model, x, y = tiny
    with pytest.raises(error, match=words) as info:
        ATTACKS.get("pgd")(**kwargs)(model, x, y)
    assert "\n" not in str(info.value)


def test_l2_eps_just_inside_the_range_is_accepted(tiny) -> None:
    model, x, y = tiny
    ATTACKS.get("fgsm")(eps=7.9, norm="l2")(model, x, y)


@pytest.mark.parametrize(
    ("mutate", "error", "words"),
    [
        (lambda x, y: (x[:0], y[:0]), InvalidDataError, "empty"),
        (lambda x, y: (x, y[:-1]), ShapeMismatchError, "labels have shape"),
        (lambda x, y: (x, y[:, None]), ShapeMismatchError, "labels have shape"),
        (lambda x, y: (x[:, :, :4], y), ShapeMismatchError, "model expects"),
        (lambda x, y: (x + 2, y), InvalidDataError, "bounds"),
        (lambda x, y: (x * float("nan"), y), InvalidDataError, "NaN"),
        (lambda x, y: (x, y + 10), InvalidDataError, r"\[0, 9\]"),
        (lambda x, y: (x, y.float() + 0.5), InvalidDataError, "integer"),
    ],
)
def test_bad_data_raises(tiny, mutate, error, words) -> None:
    model, x, y = tiny
    bx, by = mutate(x, y)
    with pytest.raises(error, match=words):
        ATTACKS.get("fgsm")(eps=0.1)(model, bx, by)


def test_targets_equal_to_labels_are_refused(tiny) -> None:
    model, x, y = tiny
    with pytest.raises(InvalidDataError, match="targets equal"):
        ATTACKS.get("fgsm")(eps=0.1)(model, x, y, targets=y)


def test_gradient_attack_on_black_box_names_the_alternatives(tiny) -> None:
    model, x, y = tiny
    black = BlackBox(model)
    with pytest.raises(UnsupportedModelError, match="Differentiable") as info:
        ATTACKS.get("pgd")(eps=0.1)(black, x, y)
    works = supported_attacks(black)
    assert works and "pgd" not in works
    assert all(name in str(info.value) for name in works)


def test_numpy_inputs_work_and_clean_misclassified_are_untouched(tiny) -> None:
    model, x, y = tiny
    y_wrong = (y + 1) % 10
    result = ATTACKS.get("pgd")(eps=0.05, steps=3)(model, x.numpy(), y_wrong.numpy())
    assert bool(result.already_adversarial.all()) and bool(result.success.all())
    assert torch.equal(result.x_adv, x)
    assert bool((result.n_iterations == 0).all()) and bool((result.n_queries == 1).all())
    assert result.robust_accuracy == 0.0


def test_success_is_judged_by_the_model_not_the_search(tiny) -> None:
    model, x, y = tiny
    result = ATTACKS.get("fgsm")(eps=0.05)(model, x, y)
    pred = model.predict_proba(result.x_adv.numpy()).argmax(1)
    np.testing.assert_array_equal(result.success.numpy(), pred != y.numpy())
    assert 0 < result.success_rate < 1
    arrays = result.to_numpy()
    assert arrays["x_adv"].shape == x.shape and arrays["success"].dtype == bool


def test_sklearn_models_white_box_through_twins_black_box_otherwise() -> None:
    from sklearn.datasets import load_digits
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression

    from bastion.models import as_classifier

    d = load_digits()
    x, y = (d.data[:300] / 16.0).astype(np.float32), d.target[:300]
    linear = as_classifier(LogisticRegression(max_iter=200).fit(x, y))
    result = ATTACKS.get("pgd")(eps=0.2, steps=10)(linear, x[:40], y[:40])
    assert result.success_rate > 0.5
    forest = as_classifier(RandomForestClassifier(n_estimators=5, random_state=0).fit(x, y))
    with pytest.raises(UnsupportedModelError, match="square") as info:
        ATTACKS.get("pgd")(eps=0.2)(forest, x[:40], y[:40])
    assert "hopskipjump" in str(info.value) and "fgsm" not in str(info.value)
    black = ATTACKS.get("square")(eps=0.3, max_queries=100)(forest, x[:40], y[:40])
    assert black.success_rate > 0.2
