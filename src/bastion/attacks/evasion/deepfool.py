"""DeepFool (Moosavi-Dezfooli et al., CVPR 2016): minimal perturbations by linearisation.

At each step the classifier is linearised around the current point; the closest linear
boundary between the true class and one of the ``n_candidates`` classes ranked highest
on the clean input is ``l = argmin_k |f_k| / ||w_k||_q`` (``f_k = z_k - z_y``,
``w_k = grad f_k``, ``q`` the dual norm: 2 for L2, 1 for L-inf), and the step that
reaches it is added to the total perturbation. The final point is
``x0 + (1 + overshoot) * r_total``, as in the paper. With ``targets`` the only candidate is
the target class. ``eps=None`` (the default) reports minimal perturbations; with an
``eps`` the base keeps only what fits the budget.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from bastion.attacks._base import ATTACKS, EvasionAttack, Problem, SearchResult
from bastion.attacks._ops import Norm, compact, is_success, lp_norm
from bastion.errors import ConfigError
from bastion.typing import Classifier, Differentiable

__all__ = ["DeepFool"]


@ATTACKS.register("deepfool")
@dataclass(frozen=True, kw_only=True)
class DeepFool(EvasionAttack):
    """DeepFool with overshoot, L2 or L-inf (Moosavi-Dezfooli et al., 2016)."""

    requires: ClassVar[tuple[type, ...]] = (Classifier, Differentiable)
    minimal: ClassVar[bool] = True
    eps: float | None = None
    norm: Norm = "l2"
    max_iterations: int = 50
    overshoot: float = 0.02
    n_candidates: int = 10

    def search(self, problem: Problem) -> SearchResult:
        if self.max_iterations < 1 or self.overshoot < 0 or self.n_candidates < 2:
            raise ConfigError(
                "deepfool needs max_iterations >= 1, overshoot >= 0 and n_candidates >= 2"
            )
        p = problem
        n, dev = len(p.x), p.x.device
        if p.targets is not None:
            cands = p.targets[:, None]
        else:
            k = min(self.n_candidates, p.clean_probs.shape[1]) - 1
            cands = p.clean_probs.scatter(1, p.y[:, None], float("-inf")).argsort(
                dim=1, descending=True)[:, :k]
        shape = (-1,) + (1,) * (p.x.dim() - 1)
        st = {"x0": p.x, "y": p.y, "c": cands, "r": torch.zeros_like(p.x)}
        if p.targets is not None:
            st["t"] = p.targets
        out, alive = p.x.clone(), torch.arange(n, device=dev)
        iters = torch.zeros(n, dtype=torch.long, device=dev)
        for _ in range(self.max_iterations):
            x = (st["x0"] + (1 + self.overshoot) * st["r"]).clamp(p.lo, p.hi)
            x.requires_grad_(True)
            logits = p.model.logits(x)
            hit = is_success(logits.detach(), st["y"], st.get("t"))
            out[alive[hit]] = x.detach()[hit]
            if bool(hit.all()):
                alive = alive[:0]
                break
            iters[alive[~hit]] += 1
            z_y = logits.gather(1, st["y"][:, None]).squeeze(1)
            (g_y,) = torch.autograd.grad(z_y.sum(), x, retain_graph=True)
            best_ratio = torch.full((len(x),), float("inf"), device=dev)
            best_step = torch.zeros_like(x)
            for j in range(st["c"].shape[1]):
                last = j == st["c"].shape[1] - 1
                z_k = logits.gather(1, st["c"][:, j:j + 1]).squeeze(1)
                (g_k,) = torch.autograd.grad(z_k.sum(), x, retain_graph=not last)
                w, f = g_k - g_y, (z_k - z_y).detach()
                dual = lp_norm(w, "l2") if self.norm == "l2" else w.flatten(1).abs().sum(1)
                ratio = (f.abs() + 1e-4) / (dual + 1e-12)
                step = (w * (ratio / (dual + 1e-12)).reshape(shape) if self.norm == "l2"
                        else ratio.reshape(shape) * w.sign())
                better = ratio < best_ratio
                best_ratio = torch.where(better, ratio, best_ratio)
                best_step = torch.where(better.reshape(shape), step, best_step)
            st["r"] = st["r"] + best_step
            keep = ~hit
            alive, st = alive[keep], compact(st, keep)
        if alive.numel() > 0:
            out[alive] = (st["x0"] + (1 + self.overshoot) * st["r"]).clamp(p.lo, p.hi)
        return SearchResult(x_adv=out, n_queries=iters + 1, n_iterations=iters)
