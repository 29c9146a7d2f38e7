"""Fast gradient sign method (Goodfellow et al., 2015) and its L2 form, the fast gradient method.

One step of size ``eps`` along the steepest-ascent direction of the cross-entropy
(towards the target class when ``targets`` are given). For a linear model this single
step is the optimal L-inf attack.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from bastion.attacks._base import ATTACKS, EvasionAttack, Problem, SearchResult
from bastion.attacks._ops import ce_loss, loss_grad, steepest_step
from bastion.typing import Classifier, Differentiable

__all__ = ["FGSM"]


@ATTACKS.register("fgsm")
@dataclass(frozen=True, kw_only=True)
class FGSM(EvasionAttack):
    """One gradient step of size ``eps`` (Goodfellow et al., 2015)."""

    requires: ClassVar[tuple[type, ...]] = (Classifier, Differentiable)

    def search(self, problem: Problem) -> SearchResult:
        assert self.eps is not None  # the base refuses eps=None for budget attacks
        _, grad, _ = loss_grad(problem.model, problem.x, problem.y, problem.targets, ce_loss)
        x_adv = problem.x + self.eps * steepest_step(grad, self.norm)
        ones = torch.ones(len(problem.x), dtype=torch.long, device=problem.x.device)
        return SearchResult(x_adv=x_adv, n_queries=ones, n_iterations=ones)
