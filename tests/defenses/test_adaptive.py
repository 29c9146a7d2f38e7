"""BPDA and EOT: the adaptive attack recovers what input transforms only seemed to stop."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bastion.attacks import ATTACKS
from bastion.attacks.eot import EOTDifferentiable, eot
from bastion.defenses.adaptive import BPDA, adaptive_views
from bastion.defenses.transforms import (
    JPEG,
    BitDepth,
    FeatureSqueeze,
    MedianSmooth,
    RandomResizePad,
    TransformedDifferentiable,
    TVDenoise,
    transformed,
)
from bastion.errors import ConfigError
from bastion.models import TorchClassifier

from ..attacks.conftest import BlackBox, TorchNet

GEN = torch.Generator().manual_seed(0)


@pytest.fixture(scope="module")
def digits_eval(plain_cnn: TorchClassifier, digits) -> tuple[TorchClassifier, torch.Tensor,
                                                            torch.Tensor]:
    test = digits[1]
    return plain_cnn, torch.as_tensor(test.x[:100]), torch.as_tensor(test.y[:100])


def _fooled(model, x_adv: torch.Tensor, y: torch.Tensor) -> float:
    """Success judged on the deployed model, never on the attacker's view."""
    return float(np.mean(model.predict_proba(x_adv.numpy()).argmax(1) != y.numpy()))


def _input_grad(model, x: torch.Tensor) -> torch.Tensor:
    x = x.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(model.logits(x)[:, 1].sum(), x)
    return grad


def _net() -> TorchNet:
    torch.manual_seed(0)
    return TorchNet(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 16),
                                        torch.nn.Tanh(), torch.nn.Linear(16, 3)), (1, 8, 8), 3)


def test_bpda_forward_is_exact_and_backward_is_the_identity() -> None:
    net = _net()
    defended = transformed(net, BitDepth(bits=2))
    assert isinstance(defended, TransformedDifferentiable)
    x = torch.rand((5, 1, 8, 8), generator=GEN)
    squeezed = BitDepth(bits=2)(x, GEN)
    bpda = BPDA(defended)
    torch.testing.assert_close(bpda.logits(x), net.logits(squeezed))
    torch.testing.assert_close(_input_grad(bpda, x), _input_grad(net, squeezed))
    np.testing.assert_allclose(bpda.predict_proba(x.numpy()), defended.predict_proba(x.numpy()))


def test_bpda_differentiates_the_given_approximation() -> None:
    net = _net()
    defended = transformed(net, FeatureSqueeze(size=2, bits=3))
    x = torch.rand((4, 1, 8, 8), generator=GEN)
    squeezed = FeatureSqueeze(size=2, bits=3)(x, GEN)
    # the default stand-in is the median step: gradient flows back through the median only
    at_squeezed = _input_grad(net, squeezed).requires_grad_(False)
    xr = x.clone().requires_grad_(True)
    (expected,) = torch.autograd.grad((MedianSmooth(size=2)(xr, GEN) * at_squeezed).sum(), xr)
    torch.testing.assert_close(_input_grad(BPDA(defended), x), expected)
    doubled = BPDA(defended, approximation=lambda u: 2 * u)
    torch.testing.assert_close(_input_grad(doubled, x), 2 * at_squeezed)


@pytest.mark.parametrize(("transform", "label"), [
    (JPEG(), "bpda"), (BitDepth(), "bpda"), (TVDenoise(), "bpda"), (FeatureSqueeze(), "bpda"),
    (RandomResizePad(), "eot"), (MedianSmooth(), None),
])
def test_adaptive_views_match_what_the_transform_hides(transform, label) -> None:
    views = adaptive_views(transformed(_net(), transform), eot_samples=4)
    assert [lab for lab, _ in views] == ([label] if label else [])
    if label == "eot":
        assert isinstance(views[0][1], EOTDifferentiable)
    assert adaptive_views(transformed(BlackBox(_net()), transform)) == ()


def test_adaptive_views_need_one_draw() -> None:
    with pytest.raises(ConfigError, match="eot_samples"):
        adaptive_views(transformed(_net(), RandomResizePad()), eot_samples=0)


@pytest.mark.parametrize("transform", [JPEG(quality=75), BitDepth(bits=4)],
                         ids=lambda t: type(t).__name__)
def test_bpda_recovers_the_attack_that_the_transform_masked(digits_eval, transform) -> None:
    model, x, y = digits_eval
    defended = transformed(model, transform)
    pgd = ATTACKS.get("pgd")(eps=0.15, steps=10)
    undefended = _fooled(model, pgd(model, x, y).x_adv, y)
    plain = _fooled(defended, pgd(defended, x, y).x_adv, y)
    ((_, view),) = adaptive_views(defended)
    adaptive = _fooled(defended, pgd(view, x, y).x_adv, y)
    assert plain < 0.5 * undefended  # the transform seems to work against a naive attack
    assert adaptive >= 0.8 * undefended  # and gives next to nothing against BPDA


@pytest.mark.slow
def test_bpda_recovers_the_attack_through_tv_denoising(digits_eval) -> None:
    model, x, y = digits_eval
    defended = transformed(model, TVDenoise())
    pgd = ATTACKS.get("pgd")(eps=0.15, steps=10)
    undefended = _fooled(model, pgd(model, x, y).x_adv, y)
    ((_, view),) = adaptive_views(defended)
    assert _fooled(defended, pgd(defended, x, y).x_adv, y) < 0.5 * undefended
    assert _fooled(defended, pgd(view, x, y).x_adv, y) >= 0.8 * undefended


@pytest.mark.slow
def test_eot_attack_beats_a_single_draw_attack_on_random_resize_pad(digits_eval) -> None:
    model, x, y = digits_eval
    defended = transformed(model, RandomResizePad(min_scale=0.8), seed=1)
    judge = eot(transformed(model, RandomResizePad(min_scale=0.8), seed=2), n_samples=32)
    pgd = ATTACKS.get("pgd")(eps=0.1, steps=10)
    plain = _fooled(judge, pgd(defended, x, y).x_adv, y)
    ((label, view),) = adaptive_views(defended, eot_samples=8)
    assert label == "eot"
    assert _fooled(judge, pgd(view, x, y).x_adv, y) > plain
