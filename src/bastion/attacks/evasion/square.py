"""Square attack (Andriushchenko et al., ECCV 2020): score-based, random square updates.

Black-box: only ``predict_proba`` is used and every query is counted per sample. A
random search that changes one square window per query and keeps the change when the
loss improves (the margin of the log-probabilities, which equals the logit margin;
the cross-entropy to the target when targeted). The window side follows the paper's
schedule ``p``: the fraction of pixels changed, halved at iterations 10, 50, 200, 500,
1000, 2000, 4000, 6000 and 8000 of a 10,000-query budget (rescaled to ``max_queries``).

* L-inf: start from vertical stripes of ``+-eps`` (one sign per column and channel); each
  window gets one new ``+-eps`` sign per channel, re-drawn until the window changes.
* L2: start from a grid of pseudo-Gaussian tiles; each step moves the perturbation mass
  of a second random window into the first one, reshaped as a new pseudo-Gaussian
  square, keeping the total norm at ``eps``.

Inputs of shape ``(c, h, w)`` are images; ``(h, w)`` and flat feature vectors ``(d,)``
are treated as one channel (flat vectors as a ``1 x d`` image whose windows are runs of
features).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import torch

from bastion.attacks._base import ATTACKS, EvasionAttack, Problem, SearchResult
from bastion.attacks._ops import cw_margin, query
from bastion.errors import ConfigError
from bastion.typing import Classifier

__all__ = ["Square", "p_schedule"]

_HALVINGS = (10, 50, 200, 500, 1000, 2000, 4000, 6000, 8000)
_REDRAWS = 10


def p_schedule(p_init: float, it: int, max_queries: int) -> float:
    """Fraction of pixels to change at iteration ``it`` (Andriushchenko et al., Sec. 4)."""
    scaled = int(it / max_queries * 10000)
    return float(p_init / 2 ** sum(scaled > h for h in _HALVINGS))


@ATTACKS.register("square")
@dataclass(frozen=True, kw_only=True)
class Square(EvasionAttack):
    """Square attack, L-inf and L2 (Andriushchenko et al., 2020); ``max_queries`` per sample."""

    requires: ClassVar[tuple[type, ...]] = (Classifier,)
    max_queries: int = 1000
    p_init: float | None = None  # 0.05 for L-inf, 0.1 for L2 (the paper's defaults)

    def search(self, problem: Problem) -> SearchResult:
        if self.max_queries < 1:
            raise ConfigError("square needs max_queries >= 1")
        p_init = self.p_init if self.p_init is not None else (0.05 if self.norm == "linf"
                                                             else 0.1)
        if not 0 < p_init <= 1:
            raise ConfigError(f"square p_init must lie in (0, 1]; got {p_init}")
        assert self.eps is not None  # the base refuses eps=None for budget attacks
        return _Search(self, problem, p_init, self.eps).run()


class _Search:
    """One Square search over a batch; state tensors shrink as samples are fooled."""

    def __init__(self, attack: Square, p: Problem, p_init: float, eps: float) -> None:
        self.a, self.p, self.p_init, self.eps = attack, p, p_init, eps
        self.img_shape = _as_image(p.x[0].shape)
        self.gen = p.generator

    def _rand(self, *shape: int) -> torch.Tensor:
        return torch.rand(shape, generator=self.gen, device=self.gen.device).to(self.p.x.device)

    def _signs(self, *shape: int) -> torch.Tensor:
        return torch.where(self._rand(*shape) < 0.5, -1.0, 1.0)

    def _loss(self, probs: torch.Tensor, y: torch.Tensor, t: torch.Tensor | None
              ) -> tuple[torch.Tensor, torch.Tensor]:
        """(loss to minimise, margin: <= 0 means the goal is reached)."""
        logp = probs.clamp_min(1e-30).log()
        margin = cw_margin(logp, y, t)
        loss = margin if t is None else -logp.gather(1, t[:, None]).squeeze(1)
        return loss, margin

    def run(self) -> SearchResult:
        p, eps = self.p, self.eps
        n = len(p.x)
        c, h, w = self.img_shape
        x0 = p.x.reshape(n, c, h, w)
        x_best = self._init(x0)
        probs = query(p.model, x_best.reshape(p.x.shape))
        loss, margin = self._loss(probs, p.y, p.targets)
        n_queries = torch.ones(n, dtype=torch.long, device=x0.device)
        out = x_best.clone()
        alive = (margin > 0).nonzero().squeeze(1)
        for it in range(1, self.a.max_queries):
            if alive.numel() == 0:
                break
            frac = p_schedule(self.p_init, it, self.a.max_queries)
            xa, xb = x0[alive], out[alive]
            cand = self._step_linf(xa, xb, frac) if self.a.norm == "linf" else \
                self._step_l2(xa, xb, frac)
            cand = p.project(cand, xa, eps, self.a.norm)
            probs = query(p.model, cand.reshape((len(alive), *p.x.shape[1:])))
            n_queries[alive] += 1
            t = p.targets[alive] if p.targets is not None else None
            new_loss, new_margin = self._loss(probs, p.y[alive], t)
            better = new_loss < loss[alive]
            keep = better.reshape(-1, 1, 1, 1)
            out[alive] = torch.where(keep, cand, xb)
            loss[alive] = torch.where(better, new_loss, loss[alive])
            margin[alive] = torch.where(better, new_margin, margin[alive])
            alive = alive[margin[alive] > 0]
        iters = n_queries - 1
        return SearchResult(x_adv=out.reshape(p.x.shape), n_queries=n_queries,
                            n_iterations=iters)

    def _init(self, x0: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x0.shape
        if self.a.norm == "linf":
            stripes = self._signs(n, c, 1, w) * self.eps
            return self.p.project(x0 + stripes, x0, self.eps, "linf")
        s = max(h // 5, 1)
        delta = torch.zeros_like(x0)
        start_h, start_w = (h - s * (h // s)) // 2, (w - s * (w // s)) // 2
        tile = _pseudo_gaussian(s, s, x0.device)
        for i in range(h // s):
            for j in range(w // s):
                r, q = start_h + i * s, start_w + j * s
                delta[:, :, r:r + s, q:q + s] += tile * self._signs(n, c, 1, 1)
        delta = delta / _norm(delta).clamp_min(1e-12) * self.eps
        return self.p.project(x0 + delta, x0, self.eps, "l2")

    def _window(self, m: int, sh: int, sw: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Random top-left corners of ``sh x sw`` windows, one per sample."""
        _, h, w = self.img_shape
        r = (self._rand(m) * (h - sh + 1)).long().clamp_max(h - sh)
        q = (self._rand(m) * (w - sw + 1)).long().clamp_max(w - sw)
        return r, q

    def _mask(self, m: int, r: torch.Tensor, q: torch.Tensor, sh: int, sw: int) -> torch.Tensor:
        _, h, w = self.img_shape
        dev = r.device
        rows = torch.arange(h, device=dev)[None, :]
        cols = torch.arange(w, device=dev)[None, :]
        mh = (rows >= r[:, None]) & (rows < r[:, None] + sh)
        mw = (cols >= q[:, None]) & (cols < q[:, None] + sw)
        return (mh[:, :, None] & mw[:, None, :]).reshape(m, 1, h, w)

    def _sides(self, frac: float, lowest: int) -> tuple[int, int]:
        """Window height and width for a fraction ``frac`` of the pixels (at least ``lowest``)."""
        _, h, w = self.img_shape
        if h == 1:  # a feature vector: windows are runs of features
            return 1, max(min(round(frac * w), w - 1), min(lowest, w), 1)
        s = max(min(round(math.sqrt(frac * h * w)), h - 1, w - 1), min(lowest, h, w), 1)
        return s, s

    def _step_linf(self, x0: torch.Tensor, x_best: torch.Tensor, frac: float) -> torch.Tensor:
        m, c = x0.shape[0], x0.shape[1]
        sh, sw = self._sides(frac, 1)
        mask = self._mask(m, *self._window(m, sh, sw), sh, sw)
        lo, hi = self.p.lo, self.p.hi
        cand = x_best
        redo = torch.ones(m, dtype=torch.bool, device=x0.device)
        # Re-draw the window's signs until it differs from the current iterate (a few
        # rounds suffice: each fails with probability at most 2^-channels).
        for _ in range(_REDRAWS):
            signs = self._signs(m, c, 1, 1) * self.eps
            fresh = torch.where(mask, (x0 + signs).clamp(lo, hi), x_best)
            cand = torch.where(redo.reshape(-1, 1, 1, 1), fresh, cand)
            redo = ((cand - x_best).abs() <= 1e-7).flatten(1).all(dim=1)
            if not bool(redo.any()):
                break
        return cand

    def _step_l2(self, x0: torch.Tensor, x_best: torch.Tensor, frac: float) -> torch.Tensor:
        m, c = x0.shape[0], x0.shape[1]
        sh, sw = self._sides(frac, 3)
        if sh > 1 and sh % 2 == 0:  # the paper keeps the L2 square's side odd
            sh = sw = sh + 1 if sh < min(self.img_shape[1:]) else sh - 1
        delta = x_best - x0
        r1, q1 = self._window(m, sh, sw)
        r2, q2 = self._window(m, sh, sw)
        mask1, mask2 = self._mask(m, r1, q1, sh, sw), self._mask(m, r2, q2, sh, sw)
        total = _norm(delta)
        both = _norm(delta * (mask1 | mask2), dims=(2, 3))
        old = _crop(delta, r1, q1, sh, sw)
        old = old / (_norm(old, dims=(2, 3)) + 1e-10)
        tile = _pseudo_gaussian_split(sh, sw, self._rand(1), x0.device)
        new = tile[None, None] * self._signs(m, c, 1, 1) + old
        budget = ((self.eps ** 2 - total ** 2).clamp_min(0) / c + both ** 2).sqrt()
        new = new / _norm(new, dims=(2, 3)).clamp_min(1e-12) * budget
        delta = torch.where(mask2, torch.zeros_like(delta), delta)
        delta = _paste(delta, new, r1, q1)
        delta = delta / _norm(delta).clamp_min(1e-12) * self.eps
        return x0 + delta


def _as_image(shape: torch.Size) -> tuple[int, int, int]:
    if len(shape) == 3:
        return int(shape[0]), int(shape[1]), int(shape[2])
    if len(shape) == 2:
        return 1, int(shape[0]), int(shape[1])
    return 1, 1, int(math.prod(shape))


def _norm(v: torch.Tensor, dims: tuple[int, ...] = (1, 2, 3)) -> torch.Tensor:
    return (v ** 2).sum(dim=dims, keepdim=True).sqrt()


def _crop(v: torch.Tensor, r: torch.Tensor, q: torch.Tensor, sh: int, sw: int) -> torch.Tensor:
    """Per-sample ``sh x sw`` windows at ``(r, q)``: ``(m, c, sh, sw)``."""
    ar = torch.arange(len(v), device=v.device)[:, None, None]
    rows = (r[:, None] + torch.arange(sh, device=v.device))[:, :, None]
    cols = (q[:, None] + torch.arange(sw, device=v.device))[:, None, :]
    return v.permute(0, 2, 3, 1)[ar, rows, cols].permute(0, 3, 1, 2)


def _paste(v: torch.Tensor, win: torch.Tensor, r: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """``v`` with each sample's window at ``(r, q)`` replaced by ``win``."""
    sh, sw = win.shape[2], win.shape[3]
    ar = torch.arange(len(v), device=v.device)[:, None, None]
    rows = (r[:, None] + torch.arange(sh, device=v.device))[:, :, None]
    cols = (q[:, None] + torch.arange(sw, device=v.device))[:, None, :]
    out = v.permute(0, 2, 3, 1).clone()
    out[ar, rows, cols] = win.permute(0, 2, 3, 1)
    return out.permute(0, 3, 1, 2)


def _pseudo_gaussian(sh: int, sw: int, device: torch.device) -> torch.Tensor:
    """Concentric rectangles weighted ``1/(k+1)^2`` from the centre, unit L2 norm (paper, L2)."""
    delta = torch.zeros(sh, sw, device=device)
    ch, cw = sh // 2, sw // 2
    for k in range(max(ch, cw) + 1):
        delta[max(ch - k, 0):min(ch + k + 1, sh), max(cw - k, 0):min(cw + k + 1, sw)] += \
            1.0 / (k + 1) ** 2
    unit: torch.Tensor = delta / torch.linalg.vector_norm(delta)
    return unit


def _pseudo_gaussian_split(sh: int, sw: int, coin: torch.Tensor, device: torch.device
                           ) -> torch.Tensor:
    """Two opposite-signed pseudo-Gaussian halves (the paper's L2 update), maybe transposed."""
    if sh < 2:
        return _pseudo_gaussian(sh, sw, device)
    half = sh // 2
    delta = torch.cat([_pseudo_gaussian(half, sw, device),
                       -_pseudo_gaussian(sh - half, sw, device)])
    delta = delta / torch.linalg.vector_norm(delta)
    flipped: torch.Tensor = delta.T if sh == sw and bool(coin[0] > 0.5) else delta
    return flipped
