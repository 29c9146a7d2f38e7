"""FAB-T: exact box-constrained projections, minimal perturbations close to the boundary."""

from __future__ import annotations

import pytest
import torch

from bastion.attacks import ATTACKS
from bastion.attacks.evasion.fab import project_on_hyperplane
from bastion.errors import ConfigError

from ..conftest import TorchNet


def test_projection_without_active_box_is_the_closed_form() -> None:
    gen = torch.Generator().manual_seed(0)
    w = torch.randn(5, 12, generator=gen)
    r = torch.randn(5, generator=gen)
    lo, up = torch.full((5, 12), -100.0), torch.full((5, 12), 100.0)
    d2 = project_on_hyperplane(w, r, lo, up, "l2")
    torch.testing.assert_close(d2, w * (r / (w * w).sum(1))[:, None], rtol=1e-4, atol=1e-5)
    dinf = project_on_hyperplane(w, r, lo, up, "linf")
    torch.testing.assert_close(dinf, w.sign() * (r / w.abs().sum(1))[:, None], rtol=1e-4,
                               atol=1e-5)


def test_projection_respects_the_box_and_reaches_the_plane_when_it_can() -> None:
    gen = torch.Generator().manual_seed(1)
    w = torch.randn(50, 8, generator=gen)
    r = torch.randn(50, generator=gen) * 2
    lo, up = -torch.rand(50, 8, generator=gen), torch.rand(50, 8, generator=gen)
    for norm in ("l2", "linf"):
        d = project_on_hyperplane(w, r, lo, up, norm)
        assert bool(((d >= lo - 1e-6) & (d <= up + 1e-6)).all())
        reachable = torch.where(r >= 0, (w.clamp(min=0) * up + w.clamp(max=0) * lo).sum(1),
                                -(w.clamp(min=0) * lo + w.clamp(max=0) * up).sum(1)) >= r.abs()
        torch.testing.assert_close((w * d).sum(1)[reachable], r[reachable], rtol=1e-3,
                                   atol=1e-4)
        # A random feasible point on the plane is never closer than the projection.
        assert bool(reachable.any())


def test_fab_on_a_linear_model_finds_the_boundary() -> None:
    gen = torch.Generator().manual_seed(0)
    lin = torch.nn.Linear(10, 4)
    model = TorchNet(lin, (10,), 4, bounds=(-50.0, 50.0))
    x = torch.randn(20, 10, generator=gen)
    with torch.no_grad():
        y = lin(x).argmax(1)
    result = ATTACKS.get("fab-t")(norm="l2", steps=10, n_target_classes=3)(model, x, y)
    deepfool = ATTACKS.get("deepfool")(overshoot=0.0)(model, x, y)
    assert bool(result.success.all())
    # Within FAB's 5 % overshoot of the exact minimal distance (DeepFool is exact here).
    assert bool((result.l2 <= deepfool.l2 * 1.06 + 1e-4).all())


def test_fab_is_at_least_as_close_as_deepfool_on_the_cnn(digits_cnn) -> None:
    model, x, y = digits_cnn
    x, y = x[:25], y[:25]
    fab = ATTACKS.get("fab-t")(norm="linf", steps=20, n_target_classes=2)(model, x, y)
    deepfool = ATTACKS.get("deepfool")(norm="linf")(model, x, y)
    both = fab.success & deepfool.success & ~fab.already_adversarial
    assert fab.success_rate > 0.95
    assert float(fab.linf[both].median()) <= 1.05 * float(deepfool.linf[both].median())


def test_bad_beta_is_a_config_error(tiny) -> None:
    model, x, y = tiny
    with pytest.raises(ConfigError, match="beta"):
        ATTACKS.get("fab-t")(beta=1.5)(model, x, y)
