"""Projected gradient descent (Madry et al., 2018); without random start it is BIM
(Kurakin et al., 2017).

Gradient-ascent steps on the cross-entropy, each projected back onto the ``eps``-ball
and the input bounds, from a random point in the ball, restarted ``n_restarts`` times
for the samples still robust. Every sample stops as soon as it is misclassified (or
reaches its target): its iterate at that moment is kept.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar, Literal

import torch

from bastion.attacks._base import ATTACKS, EvasionAttack, Problem, SearchResult
from bastion.attacks._ops import (
    ce_loss,
    compact,
    is_success,
    loss_grad,
    random_in_ball,
    steepest_step,
)
from bastion.errors import ConfigError
from bastion.typing import Classifier, Differentiable

__all__ = ["PGD"]


@ATTACKS.register("pgd")
@dataclass(frozen=True, kw_only=True)
class PGD(EvasionAttack):
    """Projected gradient descent with random start, restarts and a step-size schedule.

    ``step_size`` defaults to ``2.5 * eps / steps`` (Madry et al.); ``schedule="cosine"``
    anneals it to zero over the steps.
    """

    requires: ClassVar[tuple[type, ...]] = (Classifier, Differentiable)
    steps: int = 10
    step_size: float | None = None
    random_start: bool = True
    n_restarts: int = 1
    schedule: Literal["constant", "cosine"] = "constant"

    def search(self, problem: Problem) -> SearchResult:
        if self.steps < 1 or self.n_restarts < 1:
            raise ConfigError("pgd needs steps >= 1 and n_restarts >= 1")
        n, dev = len(problem.x), problem.x.device
        x_adv = problem.x.clone()
        done = torch.zeros(n, dtype=torch.bool, device=dev)
        n_steps = torch.zeros(n, dtype=torch.long, device=dev)
        n_queries = torch.zeros(n, dtype=torch.long, device=dev)
        for restart in range(self.n_restarts):
            todo = (~done).nonzero().squeeze(1)
            if todo.numel() == 0:
                break
            last = restart == self.n_restarts - 1
            x, won, steps, queries = self._run(problem, todo, check_end=not last)
            x_adv[todo], done[todo] = x, won
            n_steps[todo] += steps
            n_queries[todo] += queries
        return SearchResult(x_adv=x_adv, n_queries=n_queries, n_iterations=n_steps)

    def _run(
        self, p: Problem, idx: torch.Tensor, *, check_end: bool
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """One PGD run on the samples ``idx``: final iterates, success, steps, queries."""
        assert self.eps is not None  # the base refuses eps=None for budget attacks
        eps, norm = self.eps, self.norm
        alpha = self.step_size if self.step_size is not None else 2.5 * eps / self.steps
        x0 = p.x[idx]
        x = x0 + random_in_ball(x0, eps, norm, p.generator) if self.random_start else x0
        state = {"x": p.project(x, x0, eps, norm), "x0": x0, "y": p.y[idx]}
        if p.targets is not None:
            state["t"] = p.targets[idx]
        m = len(idx)
        out, won = state["x"].clone(), torch.zeros(m, dtype=torch.bool, device=x0.device)
        steps = torch.zeros(m, dtype=torch.long, device=x0.device)
        alive = torch.arange(m, device=x0.device)
        for k in range(self.steps):
            _, grad, logits = loss_grad(p.model, state["x"], state["y"], state.get("t"), ce_loss)
            hit = is_success(logits, state["y"], state.get("t"))
            if bool(hit.any()):
                out[alive[hit]], won[alive[hit]] = state["x"][hit], True
                keep = ~hit
                alive, state, grad = alive[keep], compact(state, keep), grad[keep]
                if alive.numel() == 0:
                    break
            step = alpha * (0.5 * (1 + math.cos(math.pi * k / self.steps))
                            if self.schedule == "cosine" else 1.0)
            state["x"] = p.project(state["x"] + step * steepest_step(grad, norm), state["x0"],
                                   eps, norm)
            steps[alive] += 1
        out[alive] = state["x"]
        queries = steps + won.long()  # a success was seen on one more forward pass
        if check_end and alive.numel() > 0:
            with torch.no_grad():
                logits = p.model.logits(state["x"])
            won[alive] = is_success(logits, state["y"], state.get("t"))
            queries[alive] += 1
        return out, won, steps, queries
