"""FAB-T, the targeted fast adaptive boundary attack (Croce & Hein, ICML 2020).

Minimal perturbations in L-inf or L2. At every step the decision boundary between the
true class ``y`` and the target ``t`` is linearised at the current point ``x``:
``f(x) + w . (z - x) = 0`` with ``f = z_t - z_y`` and ``w = grad f``. Both ``x`` and the
original ``x0`` are projected onto that hyperplane inside the input box (exact
box-constrained projections, found by bisection on the KKT multiplier), giving steps
``d`` and ``d0``; the next point is
``(1 - alpha)(x + eta d) + alpha (x0 + eta d0)`` with
``alpha = min(|d| / (|d| + |d0|), alpha_max)``, which biases the search towards points
close to ``x0``. Once a point is adversarial it is recorded if it is the closest so far,
and the search steps back towards ``x0``: ``x <- (1 - beta) x0 + beta x``.

Without ``targets`` the targets are, in turn, the ``n_target_classes`` classes ranked
highest on the clean input after the true one (the AutoAttack variant). Extra restarts
start from a random point in a ball around ``x0`` of half the best distance found (half
``eps`` when none is).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from bastion.attacks._base import ATTACKS, EvasionAttack, Problem, SearchResult
from bastion.attacks._ops import Norm, is_success, lp_norm, random_in_ball
from bastion.errors import ConfigError
from bastion.typing import Classifier, Differentiable

__all__ = ["FABT", "project_on_hyperplane"]

_BISECTIONS = 48


def project_on_hyperplane(
    w: torch.Tensor, r: torch.Tensor, lower: torch.Tensor, upper: torch.Tensor, norm: Norm,
) -> torch.Tensor:
    """Smallest ``d`` (in ``norm``) with ``w . d = r`` and ``lower <= d <= upper``, per row.

    ``w``, ``lower`` (<= 0), ``upper`` (>= 0) are ``(m, n)``; ``r`` is ``(m,)``. The KKT
    solution is ``d = clip(lam * w, lower, upper)`` (L2) or ``clip(lam * sign(w), ...)``
    (L-inf), with ``w . d`` non-decreasing in ``lam``; ``lam`` is found by bisection
    between 0 and the point where every coordinate is clipped. When
    the box cannot reach the hyperplane, the closest reachable point is returned.
    """
    s = torch.where(r < 0, -1.0, 1.0)[:, None]
    ws, need = w * s, r.abs()  # solve with a non-negative target, flip back at the end
    direction = ws if norm == "l2" else ws.sign()

    def reach(lam: torch.Tensor) -> torch.Tensor:
        return torch.clamp(lam[:, None] * direction, lower, upper)

    # Past the largest per-coordinate saturation point every coordinate is clipped.
    bound = torch.where(direction > 0, upper, lower) / torch.where(
        direction == 0, torch.ones_like(direction), direction)
    hi = torch.where(direction == 0, torch.zeros_like(bound), bound).amax(dim=1).clamp_min(1e-12)
    lo = torch.zeros_like(hi)
    for _ in range(_BISECTIONS):
        mid = (lo + hi) / 2
        enough = (ws * reach(mid)).sum(1) >= need
        hi, lo = torch.where(enough, mid, hi), torch.where(enough, lo, mid)
    return reach(hi)


@ATTACKS.register("fab-t")
@dataclass(frozen=True, kw_only=True)
class FABT(EvasionAttack):
    """Targeted FAB (Croce & Hein, 2020): minimal L-inf or L2 adversarial examples."""

    requires: ClassVar[tuple[type, ...]] = (Classifier, Differentiable)
    minimal: ClassVar[bool] = True
    eps: float | None = None
    steps: int = 100
    n_restarts: int = 1
    n_target_classes: int = 9
    eta: float = 1.05
    beta: float = 0.9
    alpha_max: float = 0.1

    def search(self, problem: Problem) -> SearchResult:
        if self.steps < 1 or self.n_restarts < 1 or not 0 < self.beta < 1 or \
                not 0 <= self.alpha_max <= 1 or self.eta < 1:
            raise ConfigError("fab-t needs steps, n_restarts >= 1, 0 < beta < 1, "
                              "0 <= alpha_max <= 1 and eta >= 1")
        p = problem
        n, dev = len(p.x), p.x.device
        if p.targets is not None:
            runs = [p.targets]
        else:
            k = min(self.n_target_classes, p.clean_probs.shape[1] - 1)
            ranked = p.clean_probs.scatter(1, p.y[:, None], float("-inf")).argsort(
                dim=1, descending=True)
            runs = [ranked[:, j] for j in range(k)]
        best = p.x.clone()
        best_norm = torch.full((n,), float("inf"), device=dev)
        iters = torch.zeros(n, dtype=torch.long, device=dev)
        for target in runs:
            for restart in range(self.n_restarts):
                todo = torch.arange(n, device=dev)
                if self.eps is not None:  # budgeted: only samples not yet inside eps
                    todo = (best_norm > self.eps).nonzero().squeeze(1)
                if todo.numel() == 0:
                    break
                x_found, norm_found, taken = self._run(p, todo, target[todo], best_norm[todo],
                                                       random_start=restart > 0)
                better = norm_found < best_norm[todo]
                best[todo[better]] = x_found[better]
                best_norm[todo] = torch.minimum(best_norm[todo], norm_found)
                iters[todo] += taken
        return SearchResult(x_adv=best, n_queries=2 * iters, n_iterations=iters)

    def _run(
        self, p: Problem, idx: torch.Tensor, target: torch.Tensor, known: torch.Tensor,
        *, random_start: bool,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One FAB run towards ``target``: closest adversarial found, its norm, steps."""
        x0, y = p.x[idx], p.y[idx]
        m = len(idx)
        shape = (-1,) + (1,) * (x0.dim() - 1)
        norm: Norm = self.norm
        x = x0
        if random_start:
            fallback = self.eps if self.eps is not None else 1.0
            radius = torch.where(torch.isfinite(known), known, torch.full_like(known, fallback))
            unit = random_in_ball(x0, 1.0, norm, p.generator)
            x = (x0 + unit * (radius / 2).reshape(shape)).clamp(p.lo, p.hi)
        best = x0.clone()
        best_norm = torch.full((m,), float("inf"), device=x0.device)
        goal = target if p.targets is not None else None
        for _ in range(self.steps):
            xg = x.detach().requires_grad_(True)
            logits = p.model.logits(xg)
            f = logits.gather(1, target[:, None]).squeeze(1) - \
                logits.gather(1, y[:, None]).squeeze(1)
            (w,) = torch.autograd.grad(f.sum(), xg)
            f, xd = f.detach(), x.detach()
            flat_w = w.flatten(1)
            low, up = (p.lo - xd).flatten(1), (p.hi - xd).flatten(1)
            d = project_on_hyperplane(flat_w, -f, low, up, norm).reshape(x0.shape)
            f0 = f + (flat_w * (x0 - xd).flatten(1)).sum(1)
            low0, up0 = (p.lo - x0).flatten(1), (p.hi - x0).flatten(1)
            d0 = project_on_hyperplane(flat_w, -f0, low0, up0, norm).reshape(x0.shape)
            nd, nd0 = lp_norm(d, norm), lp_norm(d0, norm)
            alpha = (nd / (nd + nd0).clamp_min(1e-12)).clamp(0, self.alpha_max).reshape(shape)
            x = ((1 - alpha) * (xd + self.eta * d) + alpha * (x0 + self.eta * d0)).clamp(
                p.lo, p.hi)
            with torch.no_grad():
                adv = is_success(p.model.logits(x), y, goal)
            dist = lp_norm(x - x0, norm)
            closer = adv & (dist < best_norm)
            best = torch.where(closer.reshape(shape), x, best)
            best_norm = torch.where(closer, dist, best_norm)
            back = adv.reshape(shape)
            x = torch.where(back, (1 - self.beta) * x0 + self.beta * x, x)
        return best, best_norm, torch.full((m,), self.steps, device=x0.device)
