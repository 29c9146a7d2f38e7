"""DeepFool: exact on a linear model, overshoot crosses the boundary, minimal by default."""

from __future__ import annotations

import pytest
import torch

from bastion.attacks import ATTACKS
from bastion.errors import ConfigError

from ..conftest import TorchNet


def _linear() -> tuple[TorchNet, torch.Tensor, torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    lin = torch.nn.Linear(10, 3)
    with torch.no_grad():
        lin.weight[:] = torch.randn(3, 10, generator=gen)
        lin.bias.zero_()
    model = TorchNet(lin, (10,), 3, bounds=(-50.0, 50.0))
    x = torch.randn(30, 10, generator=gen)
    with torch.no_grad():
        y = lin(x).argmax(1)
    return model, x, y, lin.weight.detach()


def test_on_a_linear_model_deepfool_finds_the_closest_boundary() -> None:
    model, x, y, w = _linear()
    result = ATTACKS.get("deepfool")(overshoot=0.02)(model, x, y)
    assert bool(result.success.all())
    # Exact minimal L2 distance to the nearest other class's hyperplane.
    z = x @ w.T
    dist = torch.full((len(x),), float("inf"))
    for k in range(3):
        d = (z.gather(1, y[:, None]).squeeze(1) - z[:, k]) / (w[y] - w[k]).norm(dim=1)
        dist = torch.where(y == k, dist, torch.minimum(dist, d))
    assert torch.allclose(result.l2, 1.02 * dist, rtol=1e-3, atol=1e-3)
    assert bool((result.n_iterations == 1).all())


def test_linf_deepfool_fools_nearly_every_sample(digits_cnn) -> None:
    model, x, y = digits_cnn
    with_overshoot = ATTACKS.get("deepfool")(overshoot=0.02, norm="linf")(model, x[:60], y[:60])
    assert with_overshoot.success_rate > 0.95
    assert float(with_overshoot.linf.max()) < 1.0


def test_budget_keeps_only_what_fits(digits_cnn) -> None:
    model, x, y = digits_cnn
    free = ATTACKS.get("deepfool")()(model, x[:60], y[:60])
    budget = float(free.l2[free.success].median())
    capped = ATTACKS.get("deepfool")(eps=budget)(model, x[:60], y[:60])
    assert float(capped.l2.max()) <= budget + 1e-5
    assert capped.success_rate < free.success_rate


def test_bad_overshoot_is_a_config_error(tiny) -> None:
    model, x, y = tiny
    with pytest.raises(ConfigError, match="overshoot"):
        ATTACKS.get("deepfool")(overshoot=-1.0)(model, x, y)
