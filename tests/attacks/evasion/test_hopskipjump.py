"""HopSkipJump: labels only, distance shrinks with queries, budget and eps stop samples."""

from __future__ import annotations

import torch

from bastion.attacks import ATTACKS

from ..conftest import BlackBox


def test_more_queries_give_smaller_perturbations(digits_cnn) -> None:
    model, x, y = digits_cnn
    black = BlackBox(model)
    hsj = ATTACKS.get("hopskipjump")
    few = hsj(max_queries=150, init_evals=20)(black, x[:15], y[:15])
    many = hsj(max_queries=600, init_evals=20)(black, x[:15], y[:15])
    assert few.success_rate == 1.0 and many.success_rate == 1.0
    fooled = ~many.already_adversarial
    assert float(many.l2[fooled].median()) < 0.8 * float(few.l2[fooled].median())


def test_queries_are_counted_and_budget_bounds_them(digits_cnn) -> None:
    model, x, y = digits_cnn
    black = BlackBox(model)
    black.reset_queries()
    result = ATTACKS.get("hopskipjump")(max_queries=300, init_evals=20)(black, x[:20], y[:20])
    assert black.n_queries == int(result.n_queries.sum()) + 20
    # The budget is checked between iterations: one iteration may overrun it.
    assert int(result.n_queries.max()) < 300 + 400


def test_eps_stops_each_sample_once_inside_the_budget(digits_cnn) -> None:
    model, x, y = digits_cnn
    black = BlackBox(model)
    free = ATTACKS.get("hopskipjump")(norm="linf", max_queries=600, init_evals=20)(
        black, x[:20], y[:20])
    eps = float(free.linf.max()) * 1.5
    capped = ATTACKS.get("hopskipjump")(norm="linf", eps=eps, max_queries=600, init_evals=20)(
        black, x[:20], y[:20])
    assert capped.success_rate == 1.0
    assert int(capped.n_queries.sum()) < int(free.n_queries.sum())


def test_targeted_hopskipjump_reaches_the_target(digits_cnn) -> None:
    model, x, y = digits_cnn
    targets = (y[:10] + 1) % 10
    result = ATTACKS.get("hopskipjump")(max_queries=300, init_evals=20, n_init_tries=300)(
        BlackBox(model), x[:10], y[:10], targets=targets)
    pred = torch.as_tensor(model.predict_proba(result.x_adv.numpy()).argmax(1))
    assert torch.equal(result.success, pred == targets)
    assert result.success_rate > 0.5
