"""Shared steps of every evasion attack: geometry, losses, success, queries.

Attacks are written against these plain functions so that projection, clipping, the
losses of the papers (cross-entropy, DLR, C&W margin) and query counting exist once.
Everything takes and returns torch tensors; numpy appears only in :func:`query`, the
adapter boundary of the black-box ``Classifier`` protocol.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import torch
import torch.nn.functional as F

from bastion.errors import UnsupportedModelError
from bastion.typing import Classifier, Differentiable

__all__ = [
    "Loss",
    "Norm",
    "ce_loss",
    "clip",
    "compact",
    "cw_margin",
    "dlr_loss",
    "dlr_targeted_loss",
    "is_success",
    "loss_grad",
    "lp_norm",
    "project",
    "query",
    "random_in_ball",
    "steepest_step",
]

Norm = Literal["linf", "l2"]
# A loss maps (logits, labels, targets or None) to one value per sample to *maximise*.
Loss = Callable[[torch.Tensor, torch.Tensor, torch.Tensor | None], torch.Tensor]

_TINY = 1e-12


def _per_sample(v: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Reshape a per-sample vector ``(n,)`` to broadcast against ``like`` ``(n, ...)``."""
    return v.reshape((-1,) + (1,) * (like.dim() - 1))


def lp_norm(delta: torch.Tensor, norm: Norm) -> torch.Tensor:
    """Per-sample L-inf or L2 norm of a batch of perturbations."""
    flat = delta.flatten(1)
    if norm == "linf":
        return flat.abs().amax(dim=1)
    norms: torch.Tensor = torch.linalg.vector_norm(flat, ord=2, dim=1)
    return norms


def clip(x: torch.Tensor, lo: float, hi: float) -> torch.Tensor:
    """Clip to the model's input bounds."""
    return x.clamp(lo, hi)


def project(
    x: torch.Tensor, x0: torch.Tensor, eps: torch.Tensor | float, norm: Norm, lo: float,
    hi: float,
) -> torch.Tensor:
    """Project ``x`` onto the ``eps``-ball around ``x0`` intersected with the bounds box.

    Ball first, box second is exact for L-inf and keeps the L2 budget (clipping only
    shrinks coordinates towards ``x0``, which lies inside the box). ``eps`` may be a
    per-sample tensor ``(n,)``.
    """
    delta = x - x0
    eps_t = _per_sample(eps, x) if isinstance(eps, torch.Tensor) else eps
    if norm == "linf":
        delta = torch.maximum(torch.minimum(delta, eps_t), -eps_t) if isinstance(
            eps_t, torch.Tensor) else delta.clamp(-eps_t, eps_t)
    else:
        n = _per_sample(lp_norm(delta, "l2"), x)
        delta = delta * torch.clamp(eps_t / (n + _TINY), max=1.0)
    return clip(x0 + delta, lo, hi)


def steepest_step(grad: torch.Tensor, norm: Norm) -> torch.Tensor:
    """Unit steepest-ascent direction for the norm: sign for L-inf, g/||g|| for L2."""
    if norm == "linf":
        return grad.sign()
    return grad / (_per_sample(lp_norm(grad, "l2"), grad) + _TINY)


def random_in_ball(
    x: torch.Tensor, eps: float, norm: Norm, generator: torch.Generator
) -> torch.Tensor:
    """A uniform random perturbation inside the ``eps``-ball (drawn on the generator's device).

    L-inf: uniform in the cube. L2: a Gaussian direction with radius ``eps * u**(1/d)``,
    which is uniform in the ball.
    """
    dev = generator.device
    if norm == "linf":
        noise = torch.rand(x.shape, generator=generator, device=dev) * 2 - 1
        return (noise * eps).to(x.device, x.dtype)
    d = x[0].numel()
    g = torch.randn(x.shape, generator=generator, device=dev)
    r = torch.rand((x.shape[0],), generator=generator, device=dev) ** (1.0 / d)
    g = g / (_per_sample(lp_norm(g, "l2"), g) + _TINY)
    return (g * _per_sample(r * eps, g)).to(x.device, x.dtype)


def ce_loss(logits: torch.Tensor, y: torch.Tensor, targets: torch.Tensor | None) -> torch.Tensor:
    """Cross-entropy to the label (untargeted) or minus cross-entropy to the target."""
    if targets is None:
        return F.cross_entropy(logits, y, reduction="none")
    return -F.cross_entropy(logits, targets, reduction="none")


def _check_classes(logits: torch.Tensor, need: int, loss: str) -> None:
    if logits.shape[1] < need:
        raise UnsupportedModelError(
            f"the {loss} loss needs at least {need} classes; the model has "
            f"{logits.shape[1]} (use the cross-entropy variant instead)"
        )


def dlr_loss(logits: torch.Tensor, y: torch.Tensor, targets: torch.Tensor | None) -> torch.Tensor:
    """Difference of logits ratio (Croce & Hein 2020, eq. 5); shift- and scale-invariant.

    Untargeted: ``-(z_y - max_{i!=y} z_i) / (z_pi1 - z_pi3)``; with targets it is the
    targeted DLR: ``-(z_y - z_t) / (z_pi1 - (z_pi3 + z_pi4) / 2)``.
    """
    if targets is not None:
        return dlr_targeted_loss(logits, y, targets)
    _check_classes(logits, 3, "DLR")
    top, _ = logits.sort(dim=1, descending=True)
    z_y = logits.gather(1, y[:, None]).squeeze(1)
    return -(z_y - _max_other(logits, y)) / (top[:, 0] - top[:, 2] + _TINY)


def dlr_targeted_loss(
    logits: torch.Tensor, y: torch.Tensor, targets: torch.Tensor
) -> torch.Tensor:
    """Targeted DLR (Croce & Hein 2020, eq. 6), used by APGD-T."""
    _check_classes(logits, 4, "targeted DLR")
    top, _ = logits.sort(dim=1, descending=True)
    z_y = logits.gather(1, y[:, None]).squeeze(1)
    z_t = logits.gather(1, targets[:, None]).squeeze(1)
    return -(z_y - z_t) / (top[:, 0] - (top[:, 2] + top[:, 3]) / 2 + _TINY)


def _max_other(scores: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Largest score among the classes other than ``y``."""
    other = scores.scatter(1, y[:, None], float("-inf"))
    return other.amax(dim=1)


def cw_margin(
    logits: torch.Tensor, y: torch.Tensor, targets: torch.Tensor | None
) -> torch.Tensor:
    """Carlini-Wagner margin: how far the model is from the attacker's goal (> 0: not yet).

    Untargeted ``z_y - max_{i!=y} z_i``; targeted ``max_{i!=t} z_i - z_t``. Also works on
    log-probabilities, whose margins equal the logits' margins.
    """
    if targets is None:
        return logits.gather(1, y[:, None]).squeeze(1) - _max_other(logits, y)
    return _max_other(logits, targets) - logits.gather(1, targets[:, None]).squeeze(1)


def is_success(
    scores: torch.Tensor, y: torch.Tensor, targets: torch.Tensor | None
) -> torch.Tensor:
    """Whether the prediction meets the goal: not ``y`` (untargeted) or ``targets``."""
    pred = scores.argmax(dim=1)
    return pred == targets if targets is not None else pred != y


def query(model: Classifier, x: torch.Tensor) -> torch.Tensor:
    """Class probabilities from the black-box view, as a tensor on ``x``'s device.

    The one place attacks cross into numpy: ``Classifier.predict_proba`` takes arrays, and
    the adapter counts the queries.
    """
    probs = model.predict_proba(x.detach().cpu().numpy())
    return torch.as_tensor(probs, dtype=torch.float32).to(x.device)


def loss_grad(
    model: Differentiable, x: torch.Tensor, y: torch.Tensor, targets: torch.Tensor | None,
    loss: Loss,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-sample loss, its input gradient and the logits, from one forward+backward."""
    x = x.detach().requires_grad_(True)
    logits = model.logits(x)
    values = loss(logits, y, targets)
    (grad,) = torch.autograd.grad(values.sum(), x)
    return values.detach(), grad, logits.detach()


def compact(state: dict[str, torch.Tensor], keep: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per-sample early stopping: keep only the rows of every state tensor in ``keep``."""
    return {k: v[keep] for k, v in state.items()}
