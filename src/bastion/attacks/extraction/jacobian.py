"""Jacobian-based dataset augmentation (Papernot et al., 2017, "Practical Black-Box
Attacks against Machine Learning").

Start from a small seed set of natural inputs; after each substitute-training round,
move every known point a step ``λ`` along the sign of the surrogate's Jacobian row for
the label the target gave it, ``x + λ · sign(∂F_{O(x)}(x) / ∂x)``, and ask the target
about the new points. This explores the directions in which the surrogate's decision
changes, where the target's answers teach it most. The step flips sign every ``tau``
rounds (the paper's periodic step size), and once the known set exceeds the round's
budget a seeded random subset of it is augmented (the paper's reservoir sampling).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from bastion.attacks.extraction._base import STRATEGIES, ExtractionState
from bastion.errors import ConfigError, InvalidDataError

__all__ = ["JacobianAugmentation"]


@STRATEGIES.register("jacobian")
@dataclass(frozen=True, kw_only=True)
class JacobianAugmentation:
    """Papernot's augmentation from ``seed_x``; ``step`` is λ in input units."""

    seed_x: np.ndarray = field(repr=False)
    step: float = 0.1
    tau: int = 3

    def __post_init__(self) -> None:
        if len(self.seed_x) == 0:
            raise InvalidDataError("Jacobian augmentation needs a non-empty seed set")
        if not self.step > 0 or self.tau < 1:
            raise ConfigError(f"step={self.step} must be > 0 and tau={self.tau} at least 1")

    @property
    def label(self) -> str:
        return "jacobian"

    def propose(self, n: int, state: ExtractionState, rng: np.random.Generator) -> np.ndarray:
        if state.surrogate is None:
            order = np.random.default_rng(state.seed).permutation(len(self.seed_x))
            return np.asarray(self.seed_x[order[:n]], dtype=np.float32)
        import torch

        pick = np.arange(len(state.x))
        if len(pick) > n:
            pick = np.sort(rng.choice(len(pick), n, replace=False))
        x = torch.as_tensor(state.x[pick], dtype=torch.float32, device=state.surrogate.device)
        labels = torch.as_tensor(state.probs[pick].argmax(1), device=x.device)
        x.requires_grad_(True)
        logits = state.surrogate.logits(x)
        (grad,) = torch.autograd.grad(logits.gather(1, labels[:, None]).sum(), x)
        sign = -1.0 if (state.round // self.tau) % 2 else 1.0
        low, high = state.bounds
        new = (x.detach() + sign * self.step * grad.sign()).clamp(low, high)
        return np.asarray(new.cpu().numpy(), dtype=np.float32)
