"""Randomized smoothing: PREDICT and CERTIFY against closed-form answers on a linear model."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.stats import norm

from bastion.attacks.eot import EOTDifferentiable
from bastion.defenses import HARDENERS, build_hardener
from bastion.defenses.smoothing import (
    ABSTAIN,
    GaussianNoise,
    SmoothedClassifier,
    noisy_accuracy,
)
from bastion.errors import ConfigError, UnsupportedModelError
from bastion.models import TorchClassifier

from ..attacks.conftest import BlackBox, TorchNet

GEN = torch.Generator().manual_seed(0)
W, B = np.array([3.0, 4.0]), -1.0  # class 1 where w.x + b > 0; ||w|| = 5


def _linear() -> TorchNet:
    """Two logits whose difference is w.x + b: the smoothed classifier equals the base one,
    and the exact certified radius at x is its distance to the boundary, (w.x + b) / ||w||."""
    layer = torch.nn.Linear(2, 2)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[0.0, 0.0], [3.0, 4.0]]))
        layer.bias.copy_(torch.tensor([0.0, B]))
    return TorchNet(layer, (2,), 2, bounds=(-10.0, 10.0))


def _at_distance(d: np.ndarray) -> np.ndarray:
    """Points at signed distances ``d`` from the boundary (positive: class 1)."""
    foot = -B * W / 25.0  # the boundary point closest to the origin
    return (foot + np.outer(d, W / 5.0)).astype(np.float32)


def test_certified_radius_is_the_distance_to_a_linear_boundary() -> None:
    d = np.array([0.3, -0.3, 0.6])
    smooth = SmoothedClassifier(_linear(), sigma=0.5, n0=100, n=20_000, alpha=0.001)
    cert = smooth.certify(_at_distance(d))
    np.testing.assert_array_equal(cert.prediction, [1, 0, 1])
    assert bool((cert.radius <= np.abs(d)).all())  # sound (w.p. 1 - alpha)
    assert bool((cert.radius >= np.abs(d) - 0.03).all())  # and tight for n = 20,000
    assert bool((cert.p_lower <= norm.cdf(np.abs(d) / 0.5)).all())


@pytest.mark.parametrize("sigma", [0.25, 0.5, 1.0])
def test_radius_of_a_confident_point_is_sigma_times_the_quantile(sigma: float) -> None:
    # every one of n draws agrees, so pA = alpha ** (1 / n) exactly (Clopper-Pearson)
    smooth = SmoothedClassifier(_linear(), sigma=sigma, n0=50, n=1000, alpha=0.001)
    cert = smooth.certify(_at_distance(np.array([20.0])))
    np.testing.assert_allclose(cert.p_lower, [0.001 ** (1 / 1000)])
    np.testing.assert_allclose(cert.radius, [sigma * norm.ppf(0.001 ** (1 / 1000))])


def test_certify_and_predict_abstain_on_the_boundary() -> None:
    smooth = SmoothedClassifier(_linear(), sigma=0.5, n0=100, n=2000, alpha=0.001)
    x = _at_distance(np.array([0.0, 0.0, 2.0, -2.0]))
    cert = smooth.certify(x)
    np.testing.assert_array_equal(cert.prediction, [ABSTAIN, ABSTAIN, 1, 0])
    np.testing.assert_array_equal(cert.abstained, [True, True, False, False])
    assert bool((cert.p_lower[:2] <= 0.5).all()) and bool((cert.radius[:2] == 0).all())
    np.testing.assert_array_equal(smooth.predict(x), [ABSTAIN, ABSTAIN, 1, 0])


def test_certified_accuracy_counts_correct_certified_samples_and_never_rises() -> None:
    d = np.linspace(-1.5, 1.5, 13)
    y = (d > 0).astype(np.int64)
    cert = SmoothedClassifier(_linear(), sigma=0.5, n=2000).certify(_at_distance(d))
    radii = [0.0, 0.25, 0.5, 0.75, 1.0, 2.0]
    acc = cert.certified_accuracy(y, radii)
    assert bool((np.diff(acc) <= 0).all())
    expected = [np.mean((cert.prediction == y) & (cert.radius >= r)) for r in radii]
    np.testing.assert_allclose(acc, expected)
    assert acc[0] == np.mean(~cert.abstained) and acc[-1] == 0.0
    wrong = cert.certified_accuracy(1 - y, radii)  # abstentions and errors never count
    assert wrong[0] == 0.0


def test_same_seed_same_certificate() -> None:
    x = _at_distance(np.array([0.2, -0.4]))
    one = SmoothedClassifier(_linear(), sigma=0.5, n=500, seed=3)
    again = SmoothedClassifier(_linear(), sigma=0.5, n=500, seed=3)
    np.testing.assert_array_equal(one.certify(x).p_lower, again.certify(x).p_lower)
    np.testing.assert_array_equal(one.certify(x).p_lower, one.certify(x).p_lower)
    assert not np.array_equal(one.certify(x).p_lower, one.certify(x, seed=4).p_lower)


def test_smoothed_model_is_a_classifier_of_noisy_frequencies() -> None:
    smooth = SmoothedClassifier(_linear(), sigma=0.5, n0=400)
    x = _at_distance(np.array([0.25, 5.0]))
    probs = smooth.predict_proba(x)
    np.testing.assert_allclose(probs.sum(1), 1.0)
    np.testing.assert_allclose(probs[:, 1], [norm.cdf(0.5), 1.0], atol=0.07)
    assert smooth.n_queries == 2


@pytest.mark.parametrize(("kwargs", "error"), [
    ({"sigma": 0.0}, ConfigError), ({"sigma": 0.5, "alpha": 0.5}, ConfigError),
    ({"sigma": 0.5, "n": 0}, ConfigError),
])
def test_smoothing_refuses_bad_settings(kwargs, error) -> None:
    with pytest.raises(error):
        SmoothedClassifier(_linear(), **kwargs)


def test_smoothing_needs_a_differentiable_base() -> None:
    with pytest.raises(UnsupportedModelError, match="logits"):
        SmoothedClassifier(BlackBox(_linear()), sigma=0.5)


def test_noise_training_makes_the_base_model_robust_to_noise(plain_cnn, digits) -> None:
    train, test = digits
    assert test.y is not None
    weights = [p.detach().clone() for p in plain_cnn.module.parameters()]
    hardener = build_hardener("smoothing", {"sigma": "0.5", "epochs": "10", "n": "200",
                                            "eot_samples": "4"})
    assert HARDENERS.get("smoothing").masks_gradients
    result = hardener.apply(plain_cnn, train, seed=0)
    smoothed = result.model
    assert isinstance(smoothed, SmoothedClassifier) and smoothed.sigma == 0.5
    assert result.module is not None and result.module is not plain_cnn.module
    ((label, view),) = result.adaptive
    assert label == "eot-noise" and isinstance(view, EOTDifferentiable)
    for old, new in zip(weights, plain_cnn.module.parameters(), strict=True):
        assert torch.equal(old, new)  # the user's model is untouched
    x, y = torch.as_tensor(test.x), torch.as_tensor(test.y)
    before = noisy_accuracy(GaussianNoise(plain_cnn, sigma=0.5, generator=GEN), x, y)
    after = noisy_accuracy(GaussianNoise(smoothed.base, sigma=0.5, generator=GEN), x, y)
    assert after > before + 0.08  # measured 0.75 vs 0.63
    plain = SmoothedClassifier(plain_cnn, sigma=0.5, n=200).certify(test.x[:40])
    trained = smoothed.certify(test.x[:40])
    assert (trained.certified_accuracy(test.y[:40], [0.25])[0]
            > plain.certified_accuracy(test.y[:40], [0.25])[0])


def test_certify_runs_on_a_torch_adapter() -> None:
    torch.manual_seed(0)
    model = TorchClassifier(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 3)),
                            input_shape=(1, 2, 2))
    cert = SmoothedClassifier(model, sigma=0.1, n0=10, n=50).certify(np.zeros((2, 1, 2, 2)))
    assert cert.prediction.shape == cert.radius.shape == cert.time_s.shape == (2,)
    assert bool((cert.time_s > 0).all())


def test_gaussian_noise_view_draws_fresh_noise_and_counts_queries_on_the_base() -> None:
    base = _linear()
    noisy = GaussianNoise(base, sigma=0.5, generator=torch.Generator().manual_seed(0))
    x = _at_distance(np.array([0.1, 0.1]))
    base.reset_queries()
    first, second = noisy.predict_proba(x), noisy.predict_proba(x)
    assert base.n_queries == 4 and not np.array_equal(first, second)
    with pytest.raises(UnsupportedModelError):
        GaussianNoise(BlackBox(base), sigma=0.5, generator=torch.Generator())
