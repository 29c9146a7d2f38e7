"""Randomized smoothing (Cohen, Rosenfeld & Kolter, ICML 2019).

The smoothed classifier ``g(x) = argmax_c P(f(x + e) = c)``, ``e ~ N(0, sigma^2 I)``, is
robust in L2: if the top class has probability ``pA`` under noise, no perturbation of
norm below ``sigma * Phi^-1(pA)`` changes ``g``'s answer. ``pA`` is only estimated, so the
paper's two algorithms make the claims hold with probability ``1 - alpha``:

* PREDICT draws ``n`` noisy copies and returns the top class only if a two-sided binomial
  test says it beats the runner-up (p-value <= alpha); otherwise it abstains.
* CERTIFY guesses the top class from ``n0`` draws, then lower-bounds its probability from
  ``n`` fresh draws with a one-sided Clopper-Pearson interval; if the bound ``pA`` exceeds
  1/2 it certifies radius ``sigma * Phi^-1(pA)``, otherwise it abstains.

The base classifier ``f`` should be trained on Gaussian-noised inputs at the same
``sigma`` (:class:`RandomizedSmoothing` does that to a copy of the user's model).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from scipy.stats import binomtest, norm

from bastion.defenses._base import HARDENERS, HardenResult, copy_torch_model, hardener_name
from bastion.errors import ConfigError, UnsupportedModelError
from bastion.models._base import Wrapper
from bastion.typing import Classifier, Differentiable

if TYPE_CHECKING:
    from bastion.data import Dataset
    from bastion.models.torch import TorchClassifier
    from bastion.progress import ProgressSink

__all__ = ["ABSTAIN", "Certificate", "GaussianNoise", "RandomizedSmoothing",
           "SmoothedClassifier", "noisy_accuracy"]

ABSTAIN = -1
"""The class index PREDICT and CERTIFY return when they refuse to answer."""


@dataclass(frozen=True, kw_only=True)
class Certificate:
    """CERTIFY's answer per sample: class (``ABSTAIN`` when abstaining), certified L2
    radius (0 when abstaining), the lower confidence bound on ``pA``, and the wall time."""

    prediction: np.ndarray
    radius: np.ndarray
    p_lower: np.ndarray
    time_s: np.ndarray

    @property
    def abstained(self) -> np.ndarray:
        abstained: np.ndarray = self.prediction == ABSTAIN
        return abstained

    def certified_accuracy(self, y: np.ndarray, radii: np.ndarray | list[float]) -> np.ndarray:
        """Fraction of samples classified correctly *and* certified at radius >= r, per r."""
        right = self.prediction == np.asarray(y)
        return np.array([float(np.mean(right & (self.radius >= r))) for r in radii])


class GaussianNoise(Wrapper):
    """The base classifier under noise, ``f(x + e)``: what smoothing trains and what an
    adaptive attack differentiates (averaged over draws with EOT; Salman et al. 2019).

    Every call draws fresh noise from ``generator``; queries are counted by the base.
    """

    def __init__(self, base: Classifier, *, sigma: float, generator: torch.Generator
                 ) -> None:
        if not isinstance(base, Differentiable):
            raise UnsupportedModelError("Gaussian noise training and attacks need a model "
                                        "with gradients (torch or scikit-learn linear/MLP)")
        self.base = self._white = self.wrapped = base
        self.sigma, self.generator = sigma, generator

    @property
    def device(self) -> torch.device:
        return self._white.device

    def noisy(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` plus one draw of ``N(0, sigma^2 I)`` noise (not clipped, as in the paper)."""
        noise = torch.randn(x.shape, generator=self.generator, device=self.generator.device)
        return x + self.sigma * noise.to(x.device, x.dtype)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        return self._white.logits(self.noisy(x))

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        moved = self.noisy(torch.as_tensor(np.asarray(x), dtype=torch.float32))
        return self.base.predict_proba(moved.numpy())


class SmoothedClassifier(Wrapper):
    """``g``, the smoothed version of a ``Classifier`` + ``Differentiable`` base model.

    A ``Classifier`` itself: ``predict_proba`` gives the class frequencies of ``n0`` noisy
    draws per input (from a generator that advances with every call). :meth:`predict` and
    :meth:`certify` are the paper's algorithms; each call starts from ``seed`` (or the one
    given), so the same inputs and seed give the same answer.
    """

    def __init__(self, base: Classifier, *, sigma: float, n0: int = 100, n: int = 100_000,
                 alpha: float = 0.001, batch_size: int = 1000, seed: int = 0) -> None:
        if not (isinstance(base, Classifier) and isinstance(base, Differentiable)):
            raise UnsupportedModelError(
                "randomized smoothing samples the base model's logits under noise; give a "
                "torch model or a scikit-learn linear/MLP model"
            )
        if not sigma > 0 or n0 < 1 or n < 1 or not 0 < alpha < 0.5 or batch_size < 1:
            raise ConfigError(
                "smoothing needs sigma > 0, n0 >= 1, n >= 1, 0 < alpha < 0.5, batch_size >= 1"
            )
        self.base = self._white = self.wrapped = base
        self.sigma, self.n0, self.n, self.alpha = sigma, n0, n, alpha
        self.batch_size, self.seed = batch_size, seed
        self._stream = self._generator(seed + 1)
        self._n_queries = 0

    @property
    def n_queries(self) -> int:
        return self._n_queries

    def reset_queries(self) -> None:
        self._n_queries = 0

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        counts = self._counts(self._tensor(x), self.n0, self._stream)
        self._n_queries += len(counts)
        return counts / self.n0

    def predict(self, x: np.ndarray, *, seed: int | None = None) -> np.ndarray:
        """PREDICT: the top class of ``n`` draws if significantly ahead, else ``ABSTAIN``."""
        counts = self._counts(self._tensor(x), self.n, self._generator(seed))
        top2 = np.argsort(-counts, axis=1, kind="stable")[:, :2]
        out = np.full(len(counts), ABSTAIN, dtype=np.int64)
        for i, (a, b) in enumerate(top2):
            n_a, n_b = int(counts[i, a]), int(counts[i, b])
            if binomtest(n_a, n_a + n_b, 0.5).pvalue <= self.alpha:
                out[i] = a
        return out

    def certify(self, x: np.ndarray, *, seed: int | None = None) -> Certificate:
        """CERTIFY each sample: class and certified L2 radius, or ``ABSTAIN``."""
        xt, gen = self._tensor(x), self._generator(seed)
        prediction = np.full(len(xt), ABSTAIN, dtype=np.int64)
        radius, p_lower, took = (np.zeros(len(xt)) for _ in range(3))
        for i in range(len(xt)):
            start = time.perf_counter()
            guess = int(self._counts(xt[i:i + 1], self.n0, gen)[0].argmax())
            n_a = int(self._counts(xt[i:i + 1], self.n, gen)[0, guess])
            p_lower[i] = binomtest(n_a, self.n).proportion_ci(
                confidence_level=1 - 2 * self.alpha, method="exact").low
            if p_lower[i] > 0.5:
                prediction[i], radius[i] = guess, self.sigma * norm.ppf(p_lower[i])
            took[i] = time.perf_counter() - start
        return Certificate(prediction=prediction, radius=radius, p_lower=p_lower, time_s=took)

    def _generator(self, seed: int | None) -> torch.Generator:
        gen = torch.Generator(device=self._white.device)
        return gen.manual_seed(self.seed if seed is None else seed)

    def _tensor(self, x: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(np.asarray(x), dtype=torch.float32, device=self._white.device)

    @torch.no_grad()
    def _counts(self, x: torch.Tensor, num: int, generator: torch.Generator) -> np.ndarray:
        """How often the base model picks each class over ``num`` noisy copies of each row."""
        counts = torch.zeros((len(x), self.n_classes), dtype=torch.long, device=x.device)
        for i in range(len(x)):
            left = num
            while left > 0:
                size = min(self.batch_size, left)
                batch = x[i].expand(size, *x.shape[1:])
                noise = torch.randn(batch.shape, generator=generator, device=generator.device)
                pred = self._white.logits(batch + self.sigma * noise).argmax(1)
                counts[i] += torch.bincount(pred, minlength=self.n_classes)
                left -= size
        return counts.cpu().numpy()


@HARDENERS.register("smoothing")
@dataclass(frozen=True, kw_only=True)
class RandomizedSmoothing:
    """Train a copy of the model on Gaussian-noised inputs, then smooth it (Cohen et al.).

    ``sigma`` is the noise level of both training and certification; ``n0``, ``n`` and
    ``alpha`` are CERTIFY's. The result's adaptive view is the noisy base model under
    EOT, so gradient attacks target the smoothed decision, not one noise draw.
    """

    requires: ClassVar[tuple[type, ...]] = (Classifier, Differentiable)
    masks_gradients: ClassVar[bool] = True  # g is random; plain gradients are one draw's
    sigma: float = 0.25
    epochs: int = 10
    batch_size: int = 128
    lr: float = 1e-3
    val_fraction: float = 0.1
    n0: int = 100
    n: int = 100_000
    alpha: float = 0.001
    eot_samples: int = 16

    def apply(
        self, model: Classifier, train: Dataset, *, val: Dataset | None = None, seed: int = 0,
        progress: ProgressSink | None = None,
    ) -> HardenResult:
        """Noise-train a deep copy of ``model`` and wrap it; the user's model is untouched."""
        from bastion.attacks.eot import eot
        from bastion.defenses._training import EpochScore, fit, make_optimizer, train_val

        name = hardener_name(type(self))
        net = copy_torch_model(model)
        smoothed = SmoothedClassifier(net, sigma=self.sigma, n0=self.n0, n=self.n,
                                      alpha=self.alpha, seed=seed)
        view = eot(GaussianNoise(net, sigma=self.sigma, generator=torch.Generator(
            device=net.device).manual_seed(seed + 2)), n_samples=self.eot_samples)
        data, held_out = train_val(net, train, val, val_fraction=self.val_fraction, seed=seed)
        noisy = GaussianNoise(net, sigma=self.sigma,
                              generator=torch.Generator(device=net.device).manual_seed(seed))

        def loss(_: TorchClassifier, x: torch.Tensor, y: torch.Tensor, t: float
                 ) -> torch.Tensor:
            return F.cross_entropy(noisy.logits(x), y)

        def on_epoch(epoch: int, _loss: float) -> EpochScore:
            return EpochScore({"noisy_accuracy": noisy_accuracy(noisy, held_out.x, held_out.y)})

        log, notes = fit(net, data, loss=loss, epochs=self.epochs, batch_size=self.batch_size,
                         optimizer=make_optimizer(list(net.module.parameters()), "adam",
                                                  self.lr, 0.0),
                         generator=torch.Generator().manual_seed(seed), on_epoch=on_epoch,
                         progress=progress, task=name)
        return HardenResult(
            model=smoothed, method=name, masks_gradients=True, module=net.module,
            wrapper={"smoothing": name, "sigma": self.sigma, "n0": self.n0, "n": self.n,
                     "alpha": self.alpha, "seed": seed},
            adaptive=(("eot-noise", view),), log=tuple(log),
            metrics={"sigma": self.sigma, "validation_noisy_accuracy":
                     log[-1]["noisy_accuracy"] if log else float("nan")},
            notes=tuple(notes),
        )


@torch.no_grad()
def noisy_accuracy(noisy: GaussianNoise, x: torch.Tensor, y: torch.Tensor) -> float:
    """Accuracy of the base model on one Gaussian draw per input."""
    return float((noisy.logits(x).argmax(1) == y).float().mean())
