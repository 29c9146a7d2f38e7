"""Model inversion, MI-FACE (Fredrikson et al., 2015, "Model Inversion Attacks that
Exploit Confidence Information and Basic Countermeasures").

Reconstruct a representative input of class ``y`` by gradient descent on the cost
``c(x) = 1 - f_y(x)`` from a featureless start (the middle of the input range),
projecting onto the input bounds after each step, and stopping when the cost falls
below ``tol`` or has not improved for ``patience`` steps (the paper's α, β, γ; its
optional denoising/sharpening post-processing is not applied). White-box, the gradient
is exact (``Differentiable.logits``); black-box, it is estimated from probabilities
alone with antithetic Gaussian sampling (Ilyas et al., 2018), each sample a counted
query. The same descent runs for every class at once.

Quality is judged against the real data, as Fredrikson et al. did with human raters:
a reconstruction *identifies* its class when, after subtracting the overall data mean,
it is more similar (cosine) to its own class mean than to any other class mean.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from bastion.errors import ConfigError, InvalidDataError, ShapeMismatchError, UnsupportedModelError
from bastion.typing import Classifier, Differentiable

if TYPE_CHECKING:
    import torch

__all__ = ["InversionResult", "MIFace", "ReconstructionQuality", "reconstruction_quality"]


@dataclass(frozen=True, kw_only=True)
class ReconstructionQuality:
    """How well reconstructions match the real class means (chance = 1 / n_classes).

    ``cosine[i]`` is the centred cosine similarity of reconstruction ``i`` with its own
    class mean; ``identified[i]`` whether that class mean is the most similar one;
    ``mse[i]`` the mean squared distance to the own class mean.
    """

    cosine: np.ndarray
    identified: np.ndarray
    mse: np.ndarray

    @property
    def identification_rate(self) -> float:
        return float(self.identified.mean())


@dataclass(frozen=True, kw_only=True)
class InversionResult:
    """One reconstruction per class, the model's confidence in it, and its cost."""

    classes: np.ndarray
    reconstructions: np.ndarray
    confidence: np.ndarray
    n_steps: np.ndarray
    n_queries: int
    wall_time_s: float


def reconstruction_quality(
    reconstructions: np.ndarray, classes: np.ndarray, x: np.ndarray, y: np.ndarray
) -> ReconstructionQuality:
    """Compare each reconstruction with the class means of the real records ``(x, y)``."""
    flat = np.asarray(x, dtype=np.float64).reshape(len(x), -1)
    labels = np.asarray(y)
    present = np.unique(labels)
    missing = set(np.asarray(classes).tolist()) - set(present.tolist())
    if missing:
        raise InvalidDataError(
            f"no real records of class(es) {sorted(missing)} to compare reconstructions with"
        )
    centre = flat.mean(axis=0)
    means = np.stack([flat[labels == c].mean(axis=0) for c in present]) - centre
    rec = np.asarray(reconstructions, dtype=np.float64).reshape(len(reconstructions), -1)
    if rec.shape[1] != flat.shape[1]:
        raise ShapeMismatchError(
            f"reconstructions have {rec.shape[1]} features but the data {flat.shape[1]}"
        )
    sims = _cosine(rec - centre, means)  # (n_rec, n_present)
    own = np.searchsorted(present, classes)
    rows = np.arange(len(rec))
    return ReconstructionQuality(
        cosine=sims[rows, own],
        identified=sims.argmax(axis=1) == own,
        mse=((rec - (means[own] + centre)) ** 2).mean(axis=1),
    )


def _cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    na = np.linalg.norm(a, axis=1, keepdims=True)
    nb = np.linalg.norm(b, axis=1, keepdims=True)
    return np.asarray((a @ b.T) / np.maximum(na * nb.T, 1e-12))


@dataclass(frozen=True, kw_only=True)
class MIFace:
    """Gradient-descent class reconstruction; ``black_box=True`` estimates gradients.

    ``lr`` is the step size in input units per unit gradient (white-box); black-box
    steps move ``lr`` along the sign of the estimated gradient, which is robust to the
    estimate's scale. ``n_samples`` antithetic pairs and ``sigma`` set the estimator.
    """

    steps: int = 300
    lr: float = 0.1
    patience: int = 50
    tol: float = 0.001
    black_box: bool = False
    n_samples: int = 20
    sigma: float = 0.01

    def __post_init__(self) -> None:
        if self.steps < 1 or self.patience < 1 or self.n_samples < 1:
            raise ConfigError("steps, patience and n_samples must be at least 1")
        if not (self.lr > 0 and self.sigma > 0 and 0 <= self.tol < 1):
            raise ConfigError("lr and sigma must be > 0 and tol in [0, 1)")

    def __call__(
        self,
        model: Classifier,
        classes: np.ndarray | None = None,
        *,
        generator: torch.Generator | None = None,
    ) -> InversionResult:
        """Reconstruct one input per class in ``classes`` (all classes by default)."""
        import torch

        if not self.black_box and not isinstance(model, Differentiable):
            raise UnsupportedModelError(
                f"{type(model).__name__} has no gradients; use MIFace(black_box=True)"
            )
        started = time.perf_counter()
        wanted = np.arange(model.n_classes) if classes is None else np.asarray(classes)
        if wanted.size == 0 or wanted.min() < 0 or wanted.max() >= model.n_classes:
            raise ConfigError(f"classes must lie in 0..{model.n_classes - 1}")
        low, high = model.bounds
        device = model.device if isinstance(model, Differentiable) else torch.device("cpu")
        y = torch.as_tensor(wanted, device=device)
        x = torch.full((len(wanted), *model.input_shape), (low + high) / 2, device=device)
        before = model.n_queries
        best_x, best_cost = x.clone(), torch.full((len(wanted),), float("inf"), device=device)
        stale = torch.zeros(len(wanted), dtype=torch.long, device=device)
        n_steps = torch.zeros(len(wanted), dtype=torch.long, device=device)
        active = torch.ones(len(wanted), dtype=torch.bool, device=device)
        for _ in range(self.steps):
            idx = active.nonzero().squeeze(1)
            if len(idx) == 0:
                break
            cost, grad = self._cost_grad(model, x[idx], y[idx], generator)
            better = cost < best_cost[idx]
            best_cost[idx] = torch.where(better, cost, best_cost[idx])
            best_x[idx[better]] = x[idx[better]]
            stale[idx] = torch.where(better, 0, stale[idx] + 1)
            step = grad if not self.black_box else grad.sign()
            x[idx] = (x[idx] - self.lr * step).clamp(low, high)
            n_steps[idx] += 1
            active[idx] = (cost > self.tol) & (stale[idx] < self.patience)
        final = 1.0 - self._cost_grad(model, best_x, y, generator, need_grad=False)[0]
        return InversionResult(
            classes=wanted,
            reconstructions=best_x.cpu().numpy(),
            confidence=final.cpu().numpy(),
            n_steps=n_steps.cpu().numpy(),
            n_queries=model.n_queries - before,
            wall_time_s=time.perf_counter() - started,
        )

    def _cost_grad(
        self,
        model: Classifier,
        x: torch.Tensor,
        y: torch.Tensor,
        generator: torch.Generator | None,
        *,
        need_grad: bool = True,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``c(x) = 1 - f_y(x)`` per row and its (exact or estimated) input gradient."""
        import torch

        if not self.black_box and isinstance(model, Differentiable):
            xg = x.detach().requires_grad_(need_grad)
            cost = 1.0 - torch.softmax(model.logits(xg), dim=1).gather(1, y[:, None])[:, 0]
            if not need_grad:
                return cost.detach(), torch.zeros_like(x)
            (grad,) = torch.autograd.grad(cost.sum(), xg)
            return cost.detach(), grad
        cost = 1.0 - _probs(model, x).gather(1, y[:, None])[:, 0]
        if not need_grad:
            return cost, torch.zeros_like(x)
        n, shape = len(x), x.shape[1:]
        u = torch.randn((self.n_samples, n, *shape), generator=generator).to(x.device)
        probe = torch.cat([x[None] + self.sigma * u, x[None] - self.sigma * u])
        p = _probs(model, probe.reshape(-1, *shape)).reshape(2 * self.n_samples, n, -1)
        c = 1.0 - p.gather(2, y[None, :, None].expand(2 * self.n_samples, n, 1))[..., 0]
        diff = (c[: self.n_samples] - c[self.n_samples :]).reshape(self.n_samples, n,
                                                                   *([1] * len(shape)))
        return cost, (diff * u).mean(dim=0) / (2 * self.sigma)


def _probs(model: Classifier, x: torch.Tensor) -> torch.Tensor:
    """Black-box probabilities as a tensor (the adapter counts the queries)."""
    import torch

    probs = model.predict_proba(x.detach().cpu().numpy())
    return torch.as_tensor(probs, dtype=torch.float32, device=x.device)
