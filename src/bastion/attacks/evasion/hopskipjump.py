"""HopSkipJump (Chen, Jordan & Wainwright, IEEE S&P 2020): decision-based, labels only.

Uses nothing but the model's top-1 decision (through ``predict_proba``), counting every
query per sample. From an adversarial starting point (uniform noise the model already
misclassifies), each iteration

1. binary-searches the boundary between the clean input and the current point (a blend
   for L2, a shrinking L-inf box for L-inf) down to ``theta = d^{-3/2}`` (L2) or
   ``d^{-2}`` (L-inf);
2. estimates the boundary's normal by Monte-Carlo: ``B_t = init_evals * sqrt(t)`` random
   unit directions at radius ``delta_t`` (``sqrt(d) theta dist`` for L2, ``d theta dist``
   for L-inf), averaging them weighted by the decision with a mean baseline;
3. takes a geometric step ``xi = dist / sqrt(t)`` along the estimate (its sign for
   L-inf), halved until the point is adversarial again.

A sample stops when its query budget ``max_queries`` is spent (checked between
iterations, so the last one may overrun it), after ``max_iterations``,
or, with an ``eps``, as soon as it is adversarial within ``eps``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import torch

from bastion.attacks._base import ATTACKS, EvasionAttack, Problem, SearchResult
from bastion.attacks._ops import Norm, is_success, lp_norm, query
from bastion.errors import ConfigError
from bastion.typing import Classifier

__all__ = ["HopSkipJump"]

_ROWS_PER_QUERY = 20000  # rows sent to predict_proba at once when estimating gradients
_HALVINGS = 25


@ATTACKS.register("hopskipjump")
@dataclass(frozen=True, kw_only=True)
class HopSkipJump(EvasionAttack):
    """HopSkipJump, L2 and L-inf, with its binary search, gradient estimate and geometric step."""

    requires: ClassVar[tuple[type, ...]] = (Classifier,)
    minimal: ClassVar[bool] = True
    eps: float | None = None
    norm: Norm = "l2"
    max_queries: int = 5000
    max_iterations: int = 64
    init_evals: int = 100
    max_evals: int = 10000
    n_init_tries: int = 100
    gamma: float = 1.0

    def search(self, problem: Problem) -> SearchResult:
        if min(self.max_queries, self.max_iterations, self.init_evals, self.n_init_tries) < 1:
            raise ConfigError("hopskipjump needs max_queries, max_iterations, init_evals and "
                              "n_init_tries >= 1")
        return _Run(self, problem).run()


class _Run:
    """One HopSkipJump run over a batch; every query is charged to its sample."""

    def __init__(self, attack: HopSkipJump, p: Problem) -> None:
        self.a, self.p = attack, p
        self.d = p.x[0].numel()
        self.dev = p.x.device
        self.queries = torch.zeros(len(p.x), dtype=torch.long, device=self.dev)
        self.theta = attack.gamma / (self.d ** 1.5 if attack.norm == "l2" else self.d ** 2)
        self.shape = (-1,) + (1,) * (p.x.dim() - 1)

    def _rand(self, shape: tuple[int, ...], normal: bool) -> torch.Tensor:
        gen = self.p.generator
        draw = torch.randn if normal else torch.rand
        return draw(shape, generator=gen, device=gen.device).to(self.dev)

    def adversarial(self, x: torch.Tensor, owners: torch.Tensor) -> torch.Tensor:
        """Whether each row is adversarial for its sample ``owners[i]`` (one query each)."""
        self.queries += torch.bincount(owners, minlength=len(self.queries))
        t = self.p.targets[owners] if self.p.targets is not None else None
        return is_success(query(self.p.model, x), self.p.y[owners], t)

    def dist(self, x: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        return lp_norm(x - self.p.x[idx], self.a.norm)

    def run(self) -> SearchResult:
        p, a = self.p, self.a
        n = len(p.x)
        x_adv, ok = self._init()
        iters = torch.zeros(n, dtype=torch.long, device=self.dev)
        idx = ok.nonzero().squeeze(1)
        if idx.numel() > 0:
            x_adv[idx] = self._boundary(x_adv[idx], idx, self.dist(x_adv[idx], idx))
        dist = torch.full((n,), float("inf"), device=self.dev)
        dist[idx] = self.dist(x_adv[idx], idx)
        for t in range(1, a.max_iterations + 1):
            live = ok & (self.queries < a.max_queries)
            if a.eps is not None:
                live &= dist > a.eps
            idx = live.nonzero().squeeze(1)
            if idx.numel() == 0:
                break
            xb, db = x_adv[idx], dist[idx]
            delta = (torch.full_like(db, 0.1 * (p.hi - p.lo)) if t == 1 else
                     (math.sqrt(self.d) if a.norm == "l2" else self.d) * self.theta * db)
            n_evals = int(min(a.init_evals * math.sqrt(t), a.max_evals))
            grad = self._gradient(xb, idx, delta, n_evals)
            update = grad.sign() if a.norm == "linf" else grad
            x_new = self._step(xb, idx, update, db / math.sqrt(t))
            x_new = self._boundary(x_new, idx, self.dist(x_new, idx))
            d_new = self.dist(x_new, idx)
            closer = d_new < db
            x_adv[idx] = torch.where(closer.reshape(self.shape), x_new, xb)
            dist[idx] = torch.minimum(d_new, db)
            iters[idx] += 1
        x_adv[~ok] = p.x[~ok]
        return SearchResult(x_adv=x_adv, n_queries=self.queries, n_iterations=iters)

    def _init(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Uniform noise the model already gets wrong (or puts in the target class)."""
        p = self.p
        x_adv = p.x.clone()
        ok = torch.zeros(len(p.x), dtype=torch.bool, device=self.dev)
        for _ in range(self.a.n_init_tries):
            idx = (~ok).nonzero().squeeze(1)
            if idx.numel() == 0:
                break
            noise = p.lo + (p.hi - p.lo) * self._rand(tuple(p.x[idx].shape), normal=False)
            hit = self.adversarial(noise, idx)
            x_adv[idx[hit]] = noise[hit]
            ok[idx[hit]] = True
        return x_adv, ok

    def _project(self, x: torch.Tensor, idx: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
        """Point at fraction ``alpha`` between the clean input and ``x`` (L2: blend; L-inf:
        ``x`` clipped to the L-inf box of radius ``alpha``)."""
        x0 = self.p.x[idx]
        if self.a.norm == "l2":
            w = alpha.reshape(self.shape)
            return (1 - w) * x0 + w * x
        r = alpha.reshape(self.shape)
        return torch.maximum(torch.minimum(x, x0 + r), x0 - r)

    def _boundary(self, x: torch.Tensor, idx: torch.Tensor, dist: torch.Tensor) -> torch.Tensor:
        """Binary search between each clean input and its adversarial ``x``."""
        if self.a.norm == "l2":
            low, high = torch.zeros_like(dist), torch.ones_like(dist)
            tol = torch.full_like(dist, self.theta)
        else:
            low, high = torch.zeros_like(dist), dist.clone()
            tol = torch.clamp(dist * self.theta, max=self.theta)
        while True:
            todo = ((high - low) > tol).nonzero().squeeze(1)
            if todo.numel() == 0:
                break
            mid = (high[todo] + low[todo]) / 2
            hit = self.adversarial(self._project(x[todo], idx[todo], mid), idx[todo])
            high[todo] = torch.where(hit, mid, high[todo])
            low[todo] = torch.where(hit, low[todo], mid)
        return self._project(x, idx, high)

    def _gradient(self, xb: torch.Tensor, idx: torch.Tensor, delta: torch.Tensor,
                  n_evals: int) -> torch.Tensor:
        """Monte-Carlo estimate of the boundary normal at each ``xb`` (unit L2 norm)."""
        p = self.p
        grads = torch.empty_like(xb)
        per_chunk = max(1, _ROWS_PER_QUERY // n_evals)
        for start in range(0, len(xb), per_chunk):
            sl = slice(start, start + per_chunk)
            x, m = xb[sl], len(xb[sl])
            shape = (m, n_evals, *x.shape[1:])
            u = self._rand(shape, normal=self.a.norm == "l2")
            if self.a.norm == "linf":
                u = u * 2 - 1
            u = u / lp_norm(u.flatten(0, 1), "l2").reshape(m, n_evals, *([1] * (x.dim() - 1)))
            d = delta[sl].reshape(m, 1, *([1] * (x.dim() - 1)))
            moved = (x[:, None] + d * u).clamp(p.lo, p.hi)
            u = (moved - x[:, None]) / d
            owners = idx[sl].repeat_interleave(n_evals)
            phi = self.adversarial(moved.flatten(0, 1), owners).float().reshape(m, n_evals) * 2 - 1
            mean = phi.mean(dim=1, keepdim=True)
            # Baseline: subtract the mean decision unless all agree (then keep the sign).
            weight = torch.where(mean.abs() == 1, phi, phi - mean)
            g = (weight.reshape(m, n_evals, *([1] * (x.dim() - 1))) * u).mean(dim=1)
            grads[sl] = g / lp_norm(g, "l2").clamp_min(1e-12).reshape(self.shape)
        return grads

    def _step(self, xb: torch.Tensor, idx: torch.Tensor, update: torch.Tensor,
              size: torch.Tensor) -> torch.Tensor:
        """Geometric step: halve ``size`` until ``xb + size * update`` is adversarial."""
        p = self.p
        out = xb.clone()
        size = size.clone()
        todo = torch.arange(len(xb), device=self.dev)
        for _ in range(_HALVINGS):
            cand = (xb[todo] + size[todo].reshape(self.shape) * update[todo]).clamp(p.lo, p.hi)
            hit = self.adversarial(cand, idx[todo])
            out[todo[hit]] = cand[hit]
            todo = todo[~hit]
            if todo.numel() == 0:
                break
            size[todo] /= 2
        return out
