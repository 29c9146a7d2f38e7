"""``check_attack``: the contract every evasion attack must keep, on any model.

Run it over every registered attack (``tests/attacks/test_contract.py`` does). Each
broken contract raises ``AssertionError`` with a sentence saying which one.
"""

from __future__ import annotations

import numpy as np
import torch

from bastion.attacks import AttackResult, EvasionAttack
from bastion.attacks._ops import is_success, query
from bastion.typing import Classifier, Differentiable

__all__ = ["check_attack"]

_TOL = 1e-5


def check_attack(
    attack: EvasionAttack, model: Classifier, x: np.ndarray | torch.Tensor,
    y: np.ndarray | torch.Tensor, *, seed: int = 0,
) -> None:
    """Assert ``attack`` keeps the evasion contract on ``model`` with inputs ``x``, labels ``y``.

    Checked: result shapes; every perturbation within ``eps`` in the attack's norm (unless
    it is a minimal attack run without budget); outputs within the model's bounds;
    ``success`` equal to a fresh evaluation of the model; the same seed giving the same
    result; black-box attacks counting every query they make; a sample the model already
    gets wrong returned unchanged and counted as a success; targeted runs judged against
    the targets.
    """
    xt = torch.as_tensor(x, dtype=torch.float32).cpu()
    yt = torch.as_tensor(y, dtype=torch.long).cpu()
    assert len(xt) >= 2, "check_attack needs at least two samples"
    clean = query(model, xt).argmax(dim=1).cpu()
    # Sample 0 gets a label the model does not predict: it is clean-misclassified.
    y_bad = yt.clone()
    y_bad[0] = (clean[0] + 1) % model.n_classes

    model.reset_queries()
    first = attack(model, xt, y_bad, generator=torch.Generator().manual_seed(seed))
    used = model.n_queries
    _check_result(attack, model, xt, y_bad, None, first)
    if Differentiable not in attack.requires:
        counted = int(first.n_queries.sum()) + len(xt)  # + the base's re-evaluation
        assert used == counted, (
            f"black-box attack made {used} queries but reported {counted - len(xt)}"
        )
    assert bool(first.already_adversarial[0]), "a clean-misclassified sample was not detected"
    assert bool(first.success[0]), "a clean-misclassified sample must count as a success"
    assert torch.equal(first.x_adv[0].cpu(), xt[0]), "a clean-misclassified sample was changed"

    again = attack(model, xt, y_bad, generator=torch.Generator().manual_seed(seed))
    assert torch.equal(first.x_adv, again.x_adv), "the same seed gave different inputs"
    assert torch.equal(first.success, again.success), "the same seed gave different success"

    targets = (clean + 1) % model.n_classes
    targeted = attack(model, xt, clean, targets=targets,
                      generator=torch.Generator().manual_seed(seed))
    _check_result(attack, model, xt, clean, targets, targeted)


def _check_result(
    attack: EvasionAttack, model: Classifier, x: torch.Tensor, y: torch.Tensor,
    targets: torch.Tensor | None, r: AttackResult,
) -> None:
    n = len(x)
    assert r.x_adv.shape == x.shape, f"x_adv has shape {tuple(r.x_adv.shape)}, not {x.shape}"
    for name in ("success", "already_adversarial", "n_queries", "n_iterations", "linf", "l2"):
        assert getattr(r, name).shape == (n,), f"{name} is not one value per sample"
    assert r.success.dtype == torch.bool, "success must be a bool tensor"
    assert bool((r.n_queries >= 1).all()), "every sample costs at least the clean query"
    assert r.wall_time_s >= 0, "wall time must not be negative"
    lo, hi = model.bounds
    x_adv = r.x_adv.detach().cpu()
    assert float(x_adv.min()) >= lo - _TOL and float(x_adv.max()) <= hi + _TOL, (
        "adversarial inputs leave the model's bounds"
    )
    delta = (x_adv - x).flatten(1)
    linf, l2 = delta.abs().amax(dim=1), torch.linalg.vector_norm(delta, dim=1)
    assert torch.allclose(r.linf.cpu(), linf, atol=_TOL), "reported L-inf norms are wrong"
    assert torch.allclose(r.l2.cpu(), l2, atol=_TOL), "reported L2 norms are wrong"
    if attack.eps is not None:
        size = linf if attack.norm == "linf" else l2
        assert float(size.max()) <= attack.eps * (1 + _TOL) + _TOL, (
            f"a perturbation of {float(size.max()):.6g} exceeds eps={attack.eps} "
            f"({attack.norm})"
        )
    fresh = is_success(query(model, x_adv), y.to(x_adv.device),
                       None if targets is None else targets.to(x_adv.device))
    assert torch.equal(r.success.cpu(), fresh.cpu()), (
        "success flags do not match a re-evaluation of the model"
    )
