"""Strength orderings from the papers, on the digits CNN (slow: full-length attacks)."""

from __future__ import annotations

import pytest

from bastion.attacks import ATTACKS
from bastion.typing import Differentiable

from .conftest import BlackBox, TorchNet, train_cnn

pytestmark = pytest.mark.slow

# Full-strength settings per attack; the minimal attacks run without a budget.
_SETTINGS = {
    "pgd": {"steps": 40}, "apgd-ce": {"steps": 50}, "apgd-dlr": {"steps": 50},
    "apgd-t": {"steps": 50, "n_target_classes": 3}, "square": {"max_queries": 1000},
    "autoattack": {"steps": 30, "n_target_classes": 3, "max_queries": 300},
    "hopskipjump": {"max_queries": 1500}, "fab-t": {"steps": 30, "n_target_classes": 3},
    "cw-l2": {"max_iterations": 50, "n_binary_steps": 5},
}


@pytest.fixture(scope="module")
def cnn() -> tuple[TorchNet, object, object]:
    model, x, y = train_cnn()
    return model, x[:100], y[:100]


@pytest.mark.parametrize("name", sorted(set(ATTACKS.names()) - {"transfer"}))
def test_a_large_budget_drives_accuracy_near_zero(cnn, name) -> None:
    model, x, y = cnn
    cls = ATTACKS.get(name)
    norm = "l2" if "l2" in cls.norms and "linf" not in cls.norms else "linf"
    eps = None if cls.minimal else (0.5 if norm == "linf" else 4.0)
    attack = cls(eps=eps, norm=norm, **_SETTINGS.get(name, {}))
    target = model if Differentiable in cls.requires else BlackBox(model)
    assert attack(target, x, y).robust_accuracy <= 0.05


def test_transfer_at_a_large_budget_fools_most(cnn) -> None:
    model, x, y = cnn
    surrogate, _, _ = train_cnn(seed=3)
    result = ATTACKS.get("transfer")(eps=0.5, surrogate=surrogate)(BlackBox(model), x, y)
    assert result.robust_accuracy <= 0.2


@pytest.mark.parametrize("eps", [0.05, 0.1])
def test_apgd_ce_at_most_pgd_same_budget_and_steps(cnn, eps) -> None:
    model, x, y = cnn
    pgd = ATTACKS.get("pgd")(eps=eps, steps=50)(model, x, y)
    apgd = ATTACKS.get("apgd-ce")(eps=eps, steps=50)(model, x, y)
    assert apgd.robust_accuracy <= pgd.robust_accuracy


def test_ensemble_at_most_each_part_at_full_length(cnn) -> None:
    model, x, y = cnn
    ensemble = ATTACKS.get("autoattack")(eps=0.08, steps=50, n_target_classes=3,
                                         max_queries=500)
    total = ensemble(model, x, y).robust_accuracy
    for part in ensemble.parts(10):
        assert total <= part(model, x, y).robust_accuracy
