"""Auto-PGD (Croce & Hein, ICML 2020): APGD-CE, APGD-DLR and the targeted APGD-T.

PGD without a step size to tune: the step starts at ``2 * eps`` and is halved at
checkpoints ``w_j = ceil(p_j * N)`` (``p_0 = 0``, ``p_1 = 0.22``,
``p_{j+1} = p_j + max(p_j - p_{j-1} - 0.03, 0.06)``) when, since the last checkpoint,
fewer than ``rho = 0.75`` of the steps increased the loss (condition 1) or the step was
not halved last time and the best loss did not improve (condition 2); after a halving
the search restarts from the best point found. Steps use momentum ``alpha = 0.75``:
``x_{k+1} = P(x_k + alpha (z_{k+1} - x_k) + (1 - alpha)(x_k - x_{k-1}))`` with
``z_{k+1} = P(x_k + eta grad)``. All of it is per sample, with early stopping.

APGD-T runs the targeted DLR loss once for each of the ``n_target_classes`` classes the
model ranks highest after the true one, on the samples still robust.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import torch

from bastion.attacks._base import ATTACKS, EvasionAttack, Problem, SearchResult
from bastion.attacks._ops import (
    Loss,
    Norm,
    ce_loss,
    compact,
    dlr_loss,
    is_success,
    loss_grad,
    random_in_ball,
    steepest_step,
)
from bastion.errors import ConfigError
from bastion.typing import Classifier, Differentiable

__all__ = ["APGDCE", "APGDDLR", "APGDT", "checkpoints"]

_RHO = 0.75
_MOMENTUM = 0.75


def checkpoints(steps: int) -> list[int]:
    """The iterations at which APGD may halve its step (Croce & Hein 2020, Sec. 3.2)."""
    p = [0.0, 0.22]
    while p[-1] + max(p[-1] - p[-2] - 0.03, 0.06) <= 1:
        p.append(p[-1] + max(p[-1] - p[-2] - 0.03, 0.06))
    return sorted({math.ceil(round(q * steps, 6)) for q in p[1:]} - {0})


@dataclass(frozen=True)
class _Run:
    """One APGD run's outcome on the samples it was given."""

    x: torch.Tensor
    won: torch.Tensor
    steps: torch.Tensor


def apgd(
    p: Problem, idx: torch.Tensor, *, eps: float, norm: Norm, steps: int, loss: Loss,
    loss_targets: torch.Tensor | None, goal_targets: torch.Tensor | None,
) -> _Run:
    """APGD (Algorithm 1) on the samples ``idx`` of ``p``.

    ``loss_targets`` feed the loss (APGD-T's targeted DLR), ``goal_targets`` decide
    success (None: any wrong class). Returns the first adversarial iterate of each sample
    that succeeded, else its best-loss point.
    """
    nrm = norm
    x0, y = p.x[idx], p.y[idx]
    m, dev = len(idx), x0.device
    shape = (-1,) + (1,) * (x0.dim() - 1)
    x = p.project(x0 + random_in_ball(x0, eps, nrm, p.generator), x0, eps, nrm)
    st: dict[str, torch.Tensor] = {"x0": x0, "y": y, "x": x}
    if loss_targets is not None:
        st["lt"] = loss_targets
    if goal_targets is not None:
        st["gt"] = goal_targets
    out = x.clone()
    won = torch.zeros(m, dtype=torch.bool, device=dev)
    taken = torch.zeros(m, dtype=torch.long, device=dev)
    alive = torch.arange(m, device=dev)

    def evaluate(xk: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return loss_grad(p.model, xk, st["y"], st.get("lt"), loss)

    def stop_winners(logits: torch.Tensor) -> None:
        """Record the samples whose current iterate succeeds and stop attacking them."""
        nonlocal alive, st
        hit = is_success(logits, st["y"], st.get("gt"))
        out[alive[hit]], won[alive[hit]] = st["x"][hit], True
        keep = ~hit
        alive, st = alive[keep], compact(st, keep)

    f, g, logits = evaluate(st["x"])
    st.update(f=f, g=g)
    stop_winners(logits)
    st.update(eta=torch.full((len(alive),), 2.0 * eps, device=dev), x_prev=st["x"],
              f_max=st["f"], x_max=st["x"], g_max=st["g"], n_up=torch.zeros_like(st["f"]),
              f_max_cp=st["f"], reduced=torch.zeros_like(st["f"], dtype=torch.bool))
    marks = set(checkpoints(steps))
    prev_mark = 0
    for k in range(steps):
        if alive.numel() == 0:
            break
        eta = st["eta"].reshape(shape)
        xk = st["x"]
        z = p.project(xk + eta * steepest_step(st["g"], nrm), st["x0"], eps, nrm)
        a = 1.0 if k == 0 else _MOMENTUM
        x_new = p.project(xk + a * (z - xk) + (1 - a) * (xk - st["x_prev"]), st["x0"], eps,
                          nrm)
        f_new, g_new, logits = evaluate(x_new)
        taken[alive] += 1
        better = f_new > st["f_max"]
        st.update(
            x_prev=xk, x=x_new, n_up=st["n_up"] + (f_new > st["f"]).float(), f=f_new, g=g_new,
            f_max=torch.where(better, f_new, st["f_max"]),
            x_max=torch.where(better.reshape(shape), x_new, st["x_max"]),
            g_max=torch.where(better.reshape(shape), g_new, st["g_max"]),
        )
        stop_winners(logits)
        if k + 1 in marks and alive.numel() > 0:
            cond1 = st["n_up"] < _RHO * (k + 1 - prev_mark)
            cond2 = ~st["reduced"] & (st["f_max_cp"] >= st["f_max"])
            halve = cond1 | cond2
            h = halve.reshape(shape)
            st.update(
                eta=torch.where(halve, st["eta"] / 2, st["eta"]),
                x=torch.where(h, st["x_max"], st["x"]),
                x_prev=torch.where(h, st["x_max"], st["x"]),
                g=torch.where(h, st["g_max"], st["g"]),
                f=torch.where(halve, st["f_max"], st["f"]),
                n_up=torch.zeros_like(st["n_up"]), reduced=halve, f_max_cp=st["f_max"],
            )
            prev_mark = k + 1
    out[alive] = st["x_max"] if alive.numel() > 0 else out[alive]
    return _Run(x=out, won=won, steps=taken)


def _restarts(
    attack: EvasionAttack, steps: int, n_restarts: int, p: Problem, loss: Loss,
    runs: Sequence[tuple[torch.Tensor | None, torch.Tensor | None]],
) -> SearchResult:
    """Each (loss targets, goal targets) run, ``n_restarts`` times, on what is still robust."""
    if steps < 1 or n_restarts < 1:
        raise ConfigError("apgd needs steps >= 1 and n_restarts >= 1")
    assert attack.eps is not None  # the base refuses eps=None for budget attacks
    n, dev = len(p.x), p.x.device
    x_adv = p.x.clone()
    done = torch.zeros(n, dtype=torch.bool, device=dev)
    taken = torch.zeros(n, dtype=torch.long, device=dev)
    starts = torch.zeros(n, dtype=torch.long, device=dev)
    for lt, gt in runs:
        for _ in range(n_restarts):
            todo = (~done).nonzero().squeeze(1)
            if todo.numel() == 0:
                break
            r = apgd(p, todo, eps=attack.eps, norm=attack.norm, steps=steps, loss=loss,
                     loss_targets=None if lt is None else lt[todo],
                     goal_targets=None if gt is None else gt[todo])
            x_adv[todo], done[todo] = r.x, r.won
            taken[todo] += r.steps
            starts[todo] += 1
    # One forward for each start point plus one per step taken.
    return SearchResult(x_adv=x_adv, n_queries=taken + starts, n_iterations=taken)


@ATTACKS.register("apgd-ce")
@dataclass(frozen=True, kw_only=True)
class APGDCE(EvasionAttack):
    """APGD on the cross-entropy loss (Croce & Hein 2020)."""

    requires: ClassVar[tuple[type, ...]] = (Classifier, Differentiable)
    steps: int = 100
    n_restarts: int = 1

    def search(self, problem: Problem) -> SearchResult:
        t = problem.targets
        return _restarts(self, self.steps, self.n_restarts, problem, ce_loss, [(t, t)])


@ATTACKS.register("apgd-dlr")
@dataclass(frozen=True, kw_only=True)
class APGDDLR(EvasionAttack):
    """APGD on the scale-invariant DLR loss (Croce & Hein 2020); needs >= 3 classes."""

    requires: ClassVar[tuple[type, ...]] = (Classifier, Differentiable)
    steps: int = 100
    n_restarts: int = 1

    def search(self, problem: Problem) -> SearchResult:
        t = problem.targets
        return _restarts(self, self.steps, self.n_restarts, problem, dlr_loss, [(t, t)])


@ATTACKS.register("apgd-t")
@dataclass(frozen=True, kw_only=True)
class APGDT(EvasionAttack):
    """Targeted APGD on the targeted DLR loss over the top classes (Croce & Hein 2020).

    Without ``targets`` it is an untargeted attack: it tries, in turn, the
    ``n_target_classes`` classes ranked highest on the clean input after the true one.
    With ``targets`` it runs once towards them. Needs >= 4 classes.
    """

    requires: ClassVar[tuple[type, ...]] = (Classifier, Differentiable)
    steps: int = 100
    n_restarts: int = 1
    n_target_classes: int = 9

    def search(self, problem: Problem) -> SearchResult:
        if problem.targets is not None:
            t = problem.targets
            return _restarts(self, self.steps, self.n_restarts, problem, dlr_loss, [(t, t)])
        k = min(self.n_target_classes, problem.clean_probs.shape[1] - 1)
        targets = _top_other(problem.clean_probs, problem.y, k)
        runs = [(targets[:, j], None) for j in range(k)]
        return _restarts(self, self.steps, self.n_restarts, problem, dlr_loss, runs)


def _top_other(scores: torch.Tensor, y: torch.Tensor, k: int) -> torch.Tensor:
    """The ``k`` highest-scoring classes other than ``y``, best first, ``(n, k)``."""
    masked = scores.scatter(1, y[:, None], float("-inf"))
    return masked.argsort(dim=1, descending=True)[:, :k]
