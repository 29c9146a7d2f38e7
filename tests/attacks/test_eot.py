"""EOT: averaged draws make gradient attacks effective on a randomised model."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bastion.attacks import ATTACKS
from bastion.attacks.eot import EOTClassifier, EOTDifferentiable, eot
from bastion.errors import ConfigError
from bastion.typing import Differentiable

from .conftest import BlackBox, TorchNet


class _Noisy(torch.nn.Module):
    """A randomised defence: Gaussian input noise with its own seeded generator."""

    def __init__(self, net: torch.nn.Module, sigma: float) -> None:
        super().__init__()
        self.net, self.sigma = net, sigma
        self.gen = torch.Generator().manual_seed(0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        noise = torch.randn(x.shape, generator=self.gen) * self.sigma
        return self.net(x + noise)


def test_eot_attack_beats_single_draw_attack_on_a_randomised_model(digits_cnn) -> None:
    model, x, y = digits_cnn
    noisy = TorchNet(_Noisy(model.net, sigma=0.5), (1, 8, 8), 10)
    judge = eot(noisy, n_samples=32)  # the expected prediction decides success
    x, y = x[:80], y[:80]
    plain = ATTACKS.get("pgd")(eps=0.1, steps=10)(noisy, x, y)
    averaged = ATTACKS.get("pgd")(eps=0.1, steps=10)(eot(noisy, n_samples=16), x, y)

    def fooled(x_adv: torch.Tensor) -> float:
        pred = judge.predict_proba(x_adv.numpy()).argmax(1)
        return float(np.mean(pred != y.numpy()))

    assert fooled(averaged.x_adv) > fooled(plain.x_adv)


def test_eot_keeps_the_models_capabilities_and_counts_every_draw(tiny) -> None:
    model, x, _ = tiny
    white, black = eot(model, n_samples=3), eot(BlackBox(model), n_samples=3)
    assert isinstance(white, EOTDifferentiable) and isinstance(white, Differentiable)
    assert isinstance(black, EOTClassifier) and not isinstance(black, Differentiable)
    black.reset_queries()
    probs = black.predict_proba(x.numpy())
    assert black.n_queries == 3 * len(x)
    np.testing.assert_allclose(probs, model.predict_proba(x.numpy()), rtol=1e-6)
    torch.testing.assert_close(white.logits(x), model.logits(x))


def test_eot_needs_at_least_one_draw(tiny) -> None:
    with pytest.raises(ConfigError, match="n_samples"):
        eot(tiny[0], n_samples=0)
