"""The evasion-attack base: one final ``__call__`` owns everything but the search.

Following Foolbox 3's split of "what counts as success" from "how to search", the base
validates the request (eps, norm, labels, targets, shapes), checks the model offers
what the attack ``requires``, skips samples that are already adversarial, projects
whatever the search returns onto the budget and the input bounds, and decides success
by re-evaluating the model. A subclass writes only :meth:`EvasionAttack.search`.
"""

from __future__ import annotations

import math
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch

from bastion.attacks._ops import Norm, is_success, lp_norm, project, query
from bastion.errors import ConfigError, InvalidDataError, ShapeMismatchError, UnsupportedModelError
from bastion.registry import Registry
from bastion.typing import Classifier, Differentiable

__all__ = ["ATTACKS", "AttackResult", "EvasionAttack", "Problem", "SearchResult",
           "supported_attacks"]


@dataclass(frozen=True, kw_only=True)
class AttackResult:
    """What an attack produced, per sample.

    ``success`` is decided by re-evaluating the model on ``x_adv``; ``already_adversarial``
    marks samples the model got wrong (or, targeted, already put in the target class)
    before the attack, which are returned unchanged. ``n_queries`` counts model
    evaluations (forward passes for gradient attacks, ``predict_proba`` rows for
    black-box ones), the clean check included; the final re-evaluation is not counted.
    """

    x_adv: torch.Tensor
    success: torch.Tensor
    already_adversarial: torch.Tensor
    n_queries: torch.Tensor
    n_iterations: torch.Tensor
    linf: torch.Tensor
    l2: torch.Tensor
    wall_time_s: float

    @property
    def success_rate(self) -> float:
        return float(self.success.float().mean())

    @property
    def robust_accuracy(self) -> float:
        """Fraction of samples the attack did not fool (untargeted reading)."""
        return 1.0 - self.success_rate

    def to_numpy(self) -> dict[str, np.ndarray]:
        """Plain arrays for saving (``np.savez``) or reporting."""
        out: dict[str, np.ndarray] = {
            k: getattr(self, k).detach().cpu().numpy()
            for k in ("x_adv", "success", "already_adversarial", "n_queries", "n_iterations",
                      "linf", "l2")
        }
        out["wall_time_s"] = np.asarray(self.wall_time_s)
        return out


@dataclass(frozen=True, kw_only=True)
class Problem:
    """The samples a search must attack: those not adversarial yet.

    ``x`` lies inside ``bounds``; ``targets`` is None for untargeted attacks;
    ``clean_probs`` are the model's probabilities on ``x`` (already paid for).
    """

    model: Any
    x: torch.Tensor
    y: torch.Tensor
    targets: torch.Tensor | None
    clean_probs: torch.Tensor
    lo: float
    hi: float
    generator: torch.Generator

    def project(self, x_adv: torch.Tensor, x0: torch.Tensor, eps: torch.Tensor | float,
                norm: Norm) -> torch.Tensor:
        return project(x_adv, x0, eps, norm, self.lo, self.hi)


@dataclass(frozen=True, kw_only=True)
class SearchResult:
    """A search's proposal per sample, with what it cost."""

    x_adv: torch.Tensor
    n_queries: torch.Tensor
    n_iterations: torch.Tensor


@dataclass(frozen=True, kw_only=True)
class EvasionAttack(ABC):
    """Base of every evasion attack; subclasses are frozen kw-only dataclasses.

    ``eps`` is the perturbation budget in ``norm``; minimal-perturbation attacks
    (C&W, DeepFool, FAB) accept ``eps=None`` (no budget). ``requires`` lists the
    Protocols the model must implement.
    """

    requires: ClassVar[tuple[type, ...]] = (Classifier,)
    norms: ClassVar[tuple[Norm, ...]] = ("linf", "l2")
    minimal: ClassVar[bool] = False
    eps: float | None = 8 / 255
    norm: Norm = "linf"

    @abstractmethod
    def search(self, problem: Problem) -> SearchResult:
        """Find adversarial inputs for ``problem.x``; the base projects and judges them."""

    def __call__(
        self, model: Classifier, x: np.ndarray | torch.Tensor, y: np.ndarray | torch.Tensor,
        *, targets: np.ndarray | torch.Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> AttackResult:
        """Attack ``x`` (labels ``y``; goal ``targets`` when given) and judge the result."""
        start = time.perf_counter()
        self._check_model(model)
        lo, hi = (float(b) for b in model.bounds)
        device = model.device if isinstance(model, Differentiable) else torch.device("cpu")
        xt, yt, tt = _as_batch(model, x, y, targets, device)
        self._check_params(lo, hi, xt[0].numel())
        gen = generator if generator is not None else torch.Generator().manual_seed(0)

        clean_probs = query(model, xt)
        already = is_success(clean_probs, yt, tt)
        todo = (~already).nonzero().squeeze(1)
        x_adv = xt.clone()
        n_queries = torch.ones(len(xt), dtype=torch.long, device=device)
        n_iter = torch.zeros(len(xt), dtype=torch.long, device=device)
        if todo.numel() > 0:
            found = self.search(Problem(
                model=model, x=xt[todo], y=yt[todo],
                targets=tt[todo] if tt is not None else None, clean_probs=clean_probs[todo],
                lo=lo, hi=hi, generator=gen,
            ))
            proposal = found.x_adv.detach().to(device, xt.dtype)
            if self.eps is not None:
                proposal = project(proposal, xt[todo], self.eps, self.norm, lo, hi)
            x_adv[todo] = proposal.clamp(lo, hi)
            n_queries[todo] += found.n_queries.to(device)
            n_iter[todo] = found.n_iterations.to(device)
        success = is_success(query(model, x_adv), yt, tt) | already
        delta = x_adv - xt
        return AttackResult(
            x_adv=x_adv, success=success, already_adversarial=already, n_queries=n_queries,
            n_iterations=n_iter, linf=lp_norm(delta, "linf"), l2=lp_norm(delta, "l2"),
            wall_time_s=time.perf_counter() - start,
        )

    def _check_model(self, model: object) -> None:
        missing = [r.__name__ for r in self.requires if not isinstance(model, r)]
        if missing:
            name = _registered_name(type(self))
            works = [n for n in supported_attacks(model) if n != name]
            raise UnsupportedModelError(
                f"attack {name!r} needs a {' and '.join(missing)} model; this model supports: "
                f"{', '.join(works) or 'no registered attack'}"
            )

    def _check_params(self, lo: float, hi: float, dim: int) -> None:
        name = _registered_name(type(self))
        if self.norm not in self.norms:
            raise ConfigError(
                f"attack {name!r} does not support norm {self.norm!r}; use one of "
                f"{', '.join(self.norms)}"
            )
        if self.eps is None:
            if not self.minimal:
                raise ConfigError(f"attack {name!r} needs a budget: pass eps > 0")
            return
        if not math.isfinite(self.eps) or self.eps <= 0:
            raise ConfigError(f"eps must be a positive number; got {self.eps}")
        widest = (hi - lo) * (1.0 if self.norm == "linf" else math.sqrt(dim))
        if self.eps > widest:
            raise ConfigError(
                f"eps={self.eps} is larger than the whole input range ({widest:.4g} in "
                f"{self.norm}); inputs live in [{lo}, {hi}], choose a smaller eps"
            )


def _as_batch(
    model: Classifier, x: np.ndarray | torch.Tensor, y: np.ndarray | torch.Tensor,
    targets: np.ndarray | torch.Tensor | None, device: torch.device,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """Validate inputs, labels and targets against the model and move them to ``device``."""
    xt = torch.as_tensor(x).to(device, torch.float32)
    if xt.dim() == 0 or xt.shape[0] == 0:
        raise InvalidDataError("the batch is empty; pass at least one sample")
    shape = tuple(model.input_shape)
    if tuple(xt.shape[1:]) != shape:
        raise ShapeMismatchError(
            f"inputs have sample shape {tuple(xt.shape[1:])} but the model expects {shape}"
        )
    if not bool(torch.isfinite(xt).all()):
        raise InvalidDataError("inputs contain NaN or inf; clean the data first")
    lo, hi = model.bounds
    if float(xt.min()) < lo - 1e-6 or float(xt.max()) > hi + 1e-6:
        raise InvalidDataError(
            f"inputs fall outside the model's bounds [{lo}, {hi}]; rescale them or set bounds"
        )
    yt = _labels(y, len(xt), model.n_classes, "labels", device)
    tt = None if targets is None else _labels(targets, len(xt), model.n_classes, "targets",
                                              device)
    if tt is not None and bool((tt == yt).any()):
        raise InvalidDataError("some targets equal the true label; pick a different class")
    return xt.clamp(lo, hi), yt, tt


def _labels(
    v: np.ndarray | torch.Tensor, n: int, n_classes: int, what: str, device: torch.device
) -> torch.Tensor:
    t = torch.as_tensor(v)
    if t.dim() != 1 or t.shape[0] != n:
        raise ShapeMismatchError(
            f"{what} have shape {tuple(t.shape)} but the inputs need ({n},); pass one class "
            "index per sample"
        )
    if t.is_floating_point() and not bool((t == t.round()).all()):
        raise InvalidDataError(f"{what} must be integer class indices")
    t = t.to(device, torch.long)
    if bool(((t < 0) | (t >= n_classes)).any()):
        raise InvalidDataError(f"{what} must lie in [0, {n_classes - 1}] for this model")
    return t


ATTACKS: Registry[type[EvasionAttack]] = Registry(
    "attack", packages=("bastion.attacks.evasion",)
)


def _registered_name(cls: type[EvasionAttack]) -> str:
    return ATTACKS.name_of(cls) or cls.__name__


def supported_attacks(model: object) -> list[str]:
    """Names of the registered attacks whose requirements ``model`` meets."""
    return ATTACKS.accepting(model)
