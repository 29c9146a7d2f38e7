"""Square attack: the paper's p schedule, black-box only, counted queries, any input shape."""

from __future__ import annotations

import pytest
import torch

from bastion.attacks import ATTACKS
from bastion.attacks.evasion.square import p_schedule

from ..conftest import BlackBox, TorchNet


@pytest.mark.parametrize(
    ("it", "expected"),
    [(0, 0.8), (10, 0.8), (11, 0.4), (50, 0.4), (51, 0.2), (200, 0.2), (201, 0.1),
     (8000, 0.8 / 256), (8001, 0.8 / 512), (9999, 0.8 / 512)],
)
def test_p_schedule_halves_at_the_papers_iterations(it, expected) -> None:
    assert p_schedule(0.8, it, 10000) == pytest.approx(expected)


def test_p_schedule_rescales_to_the_query_budget() -> None:
    assert p_schedule(0.8, 1, 1000) == pytest.approx(0.8)  # 10 of 10,000
    assert p_schedule(0.8, 6, 1000) == pytest.approx(0.2)  # 60 of 10,000


@pytest.mark.parametrize(("norm", "eps"), [("linf", 0.15), ("l2", 1.5)])
def test_square_fools_a_black_box_cnn_and_counts_queries(digits_cnn, norm, eps) -> None:
    model, x, y = digits_cnn
    black = BlackBox(model)
    black.reset_queries()
    result = ATTACKS.get("square")(eps=eps, norm=norm, max_queries=150)(black, x[:60], y[:60])
    assert result.success_rate > 0.4
    assert black.n_queries == int(result.n_queries.sum()) + 60
    assert int(result.n_queries.max()) <= 150 + 1
    fooled = result.success & ~result.already_adversarial
    # Fooled samples stopped early: fewer queries than the budget.
    assert float(result.n_queries[fooled].float().median()) < 150


def test_square_on_flat_features_changes_runs_of_features() -> None:
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(30, 3))
    model = BlackBox(TorchNet(net, (30,), 3, bounds=(-3.0, 3.0)))
    x = torch.randn(40, 30, generator=torch.Generator().manual_seed(0)).clamp(-3, 3)
    y = torch.as_tensor(model.predict_proba(x.numpy()).argmax(1))
    result = ATTACKS.get("square")(eps=0.3, max_queries=100)(model, x, y)
    assert result.success_rate > 0.2
    assert float(result.linf.max()) <= 0.3 + 1e-6


def test_more_queries_never_hurt(digits_cnn) -> None:
    model, x, y = digits_cnn
    square = ATTACKS.get("square")
    few = square(eps=0.1, max_queries=20)(BlackBox(model), x[:30], y[:30])
    many = square(eps=0.1, max_queries=100)(BlackBox(model), x[:30], y[:30])
    assert many.success_rate >= few.success_rate
