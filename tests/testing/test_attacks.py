"""check_attack catches attacks and models that break the contract."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pytest
import torch

from bastion.attacks import ATTACKS, EvasionAttack, Problem, SearchResult
from bastion.attacks._ops import query
from bastion.testing import check_attack
from bastion.typing import Classifier


class _Net:
    """A tiny white-box model; ``flaky`` makes predict_proba disagree with itself."""

    def __init__(self, *, flaky: bool = False) -> None:
        torch.manual_seed(0)
        self.net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 4))
        self.flaky, self.calls, self.q = flaky, 0, 0

    n_classes = 4
    input_shape = (1, 4, 4)
    bounds = (0.0, 1.0)
    device = torch.device("cpu")
    n_queries = property(lambda self: self.q)

    def reset_queries(self) -> None:
        self.q = 0

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        self.q += len(x)
        self.calls += 1
        with torch.no_grad():
            p = torch.softmax(self.net(torch.as_tensor(x)), 1).numpy()
        return np.roll(p, self.calls, axis=1) if self.flaky and self.calls > 3 else p


def _data(model: _Net) -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.rand(6, 1, 4, 4, generator=torch.Generator().manual_seed(0))
    return x, torch.as_tensor(model.predict_proba(x.numpy()).argmax(1))


def test_a_well_behaved_attack_passes() -> None:
    model = _Net()
    check_attack(ATTACKS.get("pgd")(eps=0.1, steps=3), model, *_data(model))


def test_success_that_does_not_match_the_model_is_caught() -> None:
    model = _Net(flaky=True)
    x, y = _data(model)
    with pytest.raises(AssertionError, match=r"re-evaluation|clean-misclassified"):
        check_attack(ATTACKS.get("pgd")(eps=0.1, steps=3), model, x, y)


@dataclass(frozen=True, kw_only=True)
class _GlobalRandom(EvasionAttack):
    """Draws from the global RNG instead of the injected generator; may hide its queries."""

    requires: ClassVar[tuple[type, ...]] = (Classifier,)
    honest: bool = True

    def search(self, problem: Problem) -> SearchResult:
        query(problem.model, problem.x)
        noise = (torch.rand(problem.x.shape) * 2 - 1) * 0.01
        ones = torch.ones(len(problem.x), dtype=torch.long)
        return SearchResult(x_adv=problem.x + noise, n_queries=ones * int(self.honest),
                            n_iterations=ones)


def test_nondeterministic_attack_is_caught() -> None:
    model = _Net()
    with pytest.raises(AssertionError, match="same seed"):
        check_attack(_GlobalRandom(eps=0.1), model, *_data(model))


def test_uncounted_queries_are_caught() -> None:
    model = _Net()
    with pytest.raises(AssertionError, match=r"made .* queries but reported"):
        check_attack(_GlobalRandom(eps=0.1, honest=False), model, *_data(model))
