"""PGD: stronger with more steps and restarts, early stopping per sample, BIM without start."""

from __future__ import annotations

import pytest
import torch

from bastion.attacks import ATTACKS
from bastion.errors import ConfigError


def test_more_steps_and_restarts_never_weaken_pgd(digits_cnn) -> None:
    model, x, y = digits_cnn
    x, y = x[:150], y[:150]
    pgd = ATTACKS.get("pgd")
    one = pgd(eps=0.1, steps=1)(model, x, y)
    many = pgd(eps=0.1, steps=20)(model, x, y)
    restarted = pgd(eps=0.1, steps=20, n_restarts=3)(model, x, y)
    assert many.success_rate > one.success_rate
    assert restarted.success_rate >= many.success_rate


def test_early_stopping_keeps_first_success_and_counts_steps(digits_cnn) -> None:
    model, x, y = digits_cnn
    result = ATTACKS.get("pgd")(eps=0.2, steps=30)(model, x[:100], y[:100])
    fooled = result.success & ~result.already_adversarial
    assert bool(fooled.any())
    # Fooled samples stopped before the end; queries = clean + steps + the success check.
    assert int(result.n_iterations[fooled].min()) < 30
    assert torch.equal(result.n_queries[fooled], result.n_iterations[fooled] + 2)
    assert bool((result.n_iterations[~result.success] == 30).all())


def test_bim_is_deterministic_without_random_start(digits_cnn) -> None:
    model, x, y = digits_cnn
    bim = ATTACKS.get("pgd")(eps=0.1, steps=5, random_start=False)
    a = bim(model, x[:20], y[:20], generator=torch.Generator().manual_seed(1))
    b = bim(model, x[:20], y[:20], generator=torch.Generator().manual_seed(2))
    assert torch.equal(a.x_adv, b.x_adv)


def test_cosine_schedule_and_l2_run_within_budget(digits_cnn) -> None:
    model, x, y = digits_cnn
    result = ATTACKS.get("pgd")(eps=1.0, norm="l2", steps=10, schedule="cosine")(
        model, x[:50], y[:50])
    assert float(result.l2.max()) <= 1.0 + 1e-5
    assert result.success_rate > 0


def test_zero_steps_is_a_config_error(tiny) -> None:
    model, x, y = tiny
    with pytest.raises(ConfigError, match="steps"):
        ATTACKS.get("pgd")(eps=0.1, steps=0)(model, x, y)
