"""MI-FACE: white-box and black-box reconstructions against real class means."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression

from bastion.attacks.inference.inversion import MIFace, reconstruction_quality
from bastion.errors import ConfigError, InvalidDataError, UnsupportedModelError
from bastion.models import as_classifier
from bastion.models.sklearn import SklearnClassifier


@pytest.fixture(scope="module")
def digits() -> tuple[np.ndarray, np.ndarray]:
    x, y = load_digits(return_X_y=True)
    return (x / 16).astype(np.float32), y


@pytest.fixture(scope="module")
def fitted(digits: tuple[np.ndarray, np.ndarray]) -> LogisticRegression:
    x, y = digits
    return _softmax_regression(x[:900], y[:900])


def _softmax_regression(x: np.ndarray, y: np.ndarray) -> LogisticRegression:
    return LogisticRegression(max_iter=500).fit(x, y)


def test_white_box_reconstructions_identify_every_class(
        digits: tuple[np.ndarray, np.ndarray], fitted: LogisticRegression) -> None:
    x, y = digits
    model = as_classifier(fitted)  # exact torch twin: Differentiable
    result = MIFace(steps=200)(model)
    quality = reconstruction_quality(result.reconstructions, result.classes, x, y)
    assert result.reconstructions.shape == (10, 64)
    assert result.reconstructions.min() >= 0.0 and result.reconstructions.max() <= 1.0
    assert (result.confidence > 0.99).all()
    assert quality.identification_rate == 1.0
    assert result.n_queries == 0  # gradients are white-box access, not queries


def test_black_box_variant_counts_queries_and_still_identifies(
        digits: tuple[np.ndarray, np.ndarray], fitted: LogisticRegression) -> None:
    x, y = digits
    model = SklearnClassifier(fitted)
    attack = MIFace(black_box=True, steps=40, n_samples=10, lr=0.05)
    result = attack(model, np.array([0, 3, 7]), generator=torch.Generator().manual_seed(0))
    quality = reconstruction_quality(result.reconstructions, result.classes, x, y)
    assert result.n_queries == model.n_queries > 0
    assert quality.identification_rate == 1.0


def test_a_model_without_signal_gives_chance_level_reconstructions(
        digits: tuple[np.ndarray, np.ndarray]) -> None:
    x, y = digits
    shuffled = np.random.default_rng(0).permutation(y[:600])
    model = as_classifier(_softmax_regression(x[:600], shuffled))
    result = MIFace(steps=200)(model)
    quality = reconstruction_quality(result.reconstructions, result.classes, x, y)
    assert quality.identification_rate <= 0.3


def test_black_box_is_seeded(fitted: LogisticRegression) -> None:
    run = [MIFace(black_box=True, steps=5)(SklearnClassifier(fitted), np.array([1]),
                                             generator=torch.Generator().manual_seed(3))
           for _ in range(2)]
    np.testing.assert_array_equal(run[0].reconstructions, run[1].reconstructions)


def test_quality_oracle_on_hand_made_means() -> None:
    x = np.array([[1.0, 0.0], [1.0, 0.2], [0.0, 1.0], [0.2, 1.0]])
    y = np.array([0, 0, 1, 1])
    q = reconstruction_quality(np.array([[0.9, 0.1], [0.9, 0.1]]), np.array([0, 1]), x, y)
    assert q.identified.tolist() == [True, False]
    assert q.cosine[0] > 0.9 and q.cosine[1] < -0.9


def test_refusals(digits: tuple[np.ndarray, np.ndarray]) -> None:
    x, y = digits
    black = SklearnClassifier(_softmax_regression(x[:200], y[:200]))
    with pytest.raises(UnsupportedModelError, match="black_box=True"):
        MIFace()(black)
    with pytest.raises(ConfigError, match="classes"):
        MIFace(black_box=True)(black, np.array([10]))
    with pytest.raises(ConfigError):
        MIFace(steps=0)
    with pytest.raises(InvalidDataError, match="class"):
        reconstruction_quality(np.zeros((1, 64)), np.array([9]), x[y < 9], y[y < 9])
