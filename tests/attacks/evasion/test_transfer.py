"""Transfer: crafted on a surrogate, judged on a black-box target that is barely queried."""

from __future__ import annotations

import pytest
import torch

from bastion.attacks import ATTACKS
from bastion.errors import ConfigError, ShapeMismatchError

from ..conftest import BlackBox, TorchNet, train_cnn


def test_examples_transfer_to_an_independently_trained_model(digits_cnn) -> None:
    target, x, y = digits_cnn
    surrogate, _, _ = train_cnn(seed=1, epochs=3)
    black = BlackBox(target)
    black.reset_queries()
    transfer = ATTACKS.get("transfer")(eps=0.25, surrogate=surrogate,
                                       crafting={"steps": 10})
    result = transfer(black, x[:60], y[:60])
    # Only the clean check and the base's final check touch the target.
    assert black.n_queries == 120
    assert bool((result.n_queries == 1).all())
    assert result.success_rate > 0.3
    white = ATTACKS.get("pgd")(eps=0.25, steps=10)(target, x[:60], y[:60])
    assert result.success_rate <= white.success_rate


def test_needs_a_white_box_surrogate_for_the_same_task(tiny) -> None:
    model, x, y = tiny
    with pytest.raises(ConfigError, match="surrogate"):
        ATTACKS.get("transfer")(eps=0.1)(BlackBox(model), x, y)
    other = TorchNet(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 3)),
                     (1, 8, 8), 3)
    with pytest.raises(ShapeMismatchError, match="same task"):
        ATTACKS.get("transfer")(eps=0.1, surrogate=other)(BlackBox(model), x, y)
