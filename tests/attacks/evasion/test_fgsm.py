"""FGSM is the optimal L-inf attack on a linear model; targeted FGSM moves towards the target."""

from __future__ import annotations

import torch

from bastion.attacks import ATTACKS

from ..conftest import TorchNet


def test_fgsm_equals_the_optimal_linf_attack_on_a_linear_model() -> None:
    # Two logits [0, w.x + b]: the optimal L-inf attack flips sample i iff |margin| <= eps*|w|_1.
    gen = torch.Generator().manual_seed(0)
    w = torch.randn(20, generator=gen)
    lin = torch.nn.Linear(20, 1)
    with torch.no_grad():
        lin.weight[:] = w
        lin.bias.zero_()
    net = torch.nn.Sequential(lin, _PrependZero())
    model = TorchNet(net, (20,), 2, bounds=(-100.0, 100.0))
    x = torch.randn(200, 20, generator=gen)
    z = x @ w
    y = (z > 0).long()
    eps = 0.1
    result = ATTACKS.get("fgsm")(eps=eps)(model, x, y)
    optimal = z.abs() < eps * w.abs().sum()
    assert torch.equal(result.success, optimal)
    assert 0 < int(optimal.sum()) < 200


def test_targeted_fgsm_reaches_the_target_more_than_untargeted_by_chance(digits_cnn) -> None:
    model, x, y = digits_cnn
    targets = (y + 1) % 10
    result = ATTACKS.get("fgsm")(eps=0.3)(model, x[:100], y[:100], targets=targets[:100])
    pred = torch.as_tensor(model.predict_proba(result.x_adv.numpy()).argmax(1))
    assert torch.equal(result.success & ~result.already_adversarial,
                       (pred == targets[:100]) & ~result.already_adversarial)
    assert result.success_rate > 0.3


class _PrependZero(torch.nn.Module):
    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.cat([torch.zeros_like(z), z], dim=1)
