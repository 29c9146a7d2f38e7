"""Clean-label feature-collision poisoning ("Poison Frogs", Shafahi et al., NeurIPS 2018).

The attacker wants one *target* input classified as ``base_class`` after the victim
retrains on its data, without touching any label. Each poison starts from a base row of
``base_class`` and is optimised to

    p = argmin_x ||f(x) - f(t)||^2 + beta * ||x - b||^2

where ``f`` is the victim's feature extractor (its penultimate layer in the paper; the
model's logits by default) and ``b`` the base: the poison collides with the target in
feature space while still looking like ``b``, and keeps ``b``'s correct label. The
optimiser is the paper's forward-backward splitting (Algorithm 1): a gradient step on
the feature loss, ``x^ = x - lr * grad ||f(x) - f(t)||^2``, then the proximal step of the
input term, ``x = (x^ + lr * beta * b) / (1 + lr * beta)``. As in the authors' code, a
poison whose feature loss went up has that step undone and its step size halved. ``beta``
is the paper's ``beta0 * (2048 / input dim)^2`` scaling with 2048 (Inception's feature
size) read as the feature size, ``beta0 = 0.25``. The result is clipped to the model's
bounds (an addition: the paper's images needed none).

Small inputs leave little room to hide: on 8x8 digits with a 64-unit feature layer, five
poisons at ``beta0 = 0.25`` move 0.87 of the way from base to target in input space
and make a retrained final layer call the target ``base_class``; at ``beta0 = 4`` they
stay at 0.6 of the way but no longer win. The paper's invisible poisons are 299x299
images.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from bastion.attacks.poisoning._result import PoisonResult
from bastion.errors import InvalidDataError, ShapeMismatchError
from bastion.models.adapt import require_differentiable
from bastion.typing import Classifier

if TYPE_CHECKING:
    import torch

__all__ = ["FeatureCollision"]


@dataclass(frozen=True, kw_only=True)
class FeatureCollision:
    """Replace ``n_poisons`` rows of ``base_class`` by poisons that collide with a target."""

    base_class: int
    n_poisons: int = 5
    beta0: float = 0.25
    lr: float = 0.01
    steps: int = 1000

    def __call__(self, model: Classifier, x: np.ndarray, y: np.ndarray, target: np.ndarray, *,
                 generator: np.random.Generator,
                 features: Callable[[torch.Tensor], torch.Tensor] | None = None,
                 ) -> PoisonResult:
        """Poison ``x`` against the single input ``target``; labels are left as they are.

        ``features`` maps model inputs to the feature space (default: the model's logits).
        """
        import torch

        net = require_differentiable(model, "feature-collision poisoning")
        extract = features or net.logits
        shape = tuple(model.input_shape)
        y = np.asarray(y)
        if tuple(np.shape(target)) not in (shape, (1, *shape)) or x.shape[1:] != shape:
            raise ShapeMismatchError(f"rows {x.shape[1:]} and target {np.shape(target)} must "
                                     f"both have the model's input shape {shape}")
        candidates = np.flatnonzero(y == self.base_class)
        if not 0 < self.n_poisons <= len(candidates):
            raise InvalidDataError(f"cannot make {self.n_poisons} poisons from "
                                   f"{len(candidates)} rows of class {self.base_class}")
        idx = np.sort(generator.choice(candidates, size=self.n_poisons, replace=False))
        device = net.device
        base = torch.as_tensor(np.asarray(x[idx], dtype=np.float32), device=device)
        with torch.no_grad():
            goal = extract(torch.as_tensor(np.asarray(target, dtype=np.float32),
                                           device=device).reshape(1, *shape))
        beta = self.beta0 * (goal[0].numel() / base[0].numel()) ** 2
        poison = self._optimise(extract, base, goal, beta, model.bounds)
        x_out = np.array(x, copy=True)
        x_out[idx] = poison.cpu().numpy().astype(x.dtype)
        return PoisonResult(x=x_out, y=y.copy(), indices=idx, target=self.base_class)

    def _optimise(self, extract: Callable[[torch.Tensor], torch.Tensor], base: torch.Tensor,
                  goal: torch.Tensor, beta: float, bounds: tuple[float, float]) -> torch.Tensor:
        """Forward-backward splitting, one step size per poison, halved on a bad step."""
        import torch

        lo, hi = bounds
        view = (-1, *([1] * (base.dim() - 1)))
        lr = torch.full((len(base),), self.lr, device=base.device)

        def feature_loss(p: torch.Tensor) -> torch.Tensor:
            return ((extract(p) - goal) ** 2).reshape(len(p), -1).sum(dim=1)

        x = base.clone()
        loss = feature_loss(x).detach()
        for _ in range(self.steps):
            x.requires_grad_(True)
            (grad,) = torch.autograd.grad(feature_loss(x).sum(), x)
            with torch.no_grad():
                step = lr.reshape(view)
                forward = x - step * grad
                nxt = ((forward + step * beta * base) / (1 + step * beta)).clamp(lo, hi)
                new_loss = feature_loss(nxt)
                worse = new_loss > loss
                x = torch.where(worse.reshape(view), x, nxt).detach()
                loss = torch.where(worse, loss, new_loss)
                lr = torch.where(worse, lr / 2, lr)
        return x.detach()
