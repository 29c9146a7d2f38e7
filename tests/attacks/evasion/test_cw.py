"""C&W L2: minimal, inside the bounds by construction, and the binary search over c helps."""

from __future__ import annotations

import pytest

from bastion.attacks import ATTACKS
from bastion.errors import ConfigError


def test_cw_finds_smaller_perturbations_than_a_fixed_budget_pgd(digits_cnn) -> None:
    model, x, y = digits_cnn
    x, y = x[:20], y[:20]
    cw = ATTACKS.get("cw-l2")(max_iterations=30, n_binary_steps=3)(model, x, y)
    assert cw.success_rate > 0.9
    fooled = cw.success & ~cw.already_adversarial
    # An L2 PGD at the C&W median budget fools fewer samples than C&W does below it.
    budget = float(cw.l2[fooled].median())
    pgd = ATTACKS.get("pgd")(eps=budget, norm="l2", steps=20)(model, x, y)
    below = float((cw.success & (cw.l2 <= budget + 1e-6)).float().mean())
    assert below >= 0.5
    assert pgd.success_rate < 1.0


def test_more_binary_steps_never_increase_the_distance(digits_cnn) -> None:
    model, x, y = digits_cnn
    x, y = x[:15], y[:15]
    one = ATTACKS.get("cw-l2")(max_iterations=20, n_binary_steps=1, initial_const=10.0)(
        model, x, y)
    four = ATTACKS.get("cw-l2")(max_iterations=20, n_binary_steps=3, initial_const=10.0)(
        model, x, y)
    both = one.success & four.success & ~one.already_adversarial
    assert bool(both.any())
    assert bool((four.l2[both] <= one.l2[both] + 1e-5).all())


def test_cw_is_l2_only(tiny) -> None:
    model, x, y = tiny
    with pytest.raises(ConfigError, match="does not support norm"):
        ATTACKS.get("cw-l2")(norm="linf")(model, x, y)
