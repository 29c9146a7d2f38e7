"""Expectation over transformation (Athalye, Engstrom, Ilyas & Kwok, ICML 2018).

A randomised model or defence (random resizing, noise, dropout at inference) gives a
different gradient at every call, which makes single-draw gradient attacks look weaker
than they are. :func:`eot` wraps such a model so that each evaluation averages
``n_samples`` draws: the averaged logits' gradient is the Monte-Carlo estimate of the
gradient of the expected logits, and any registered attack then optimises the expected
behaviour. Black-box models get averaged probabilities only.
"""

from __future__ import annotations

import numpy as np
import torch

from bastion.errors import ConfigError
from bastion.models._base import Wrapper
from bastion.typing import Classifier, Differentiable

__all__ = ["EOTClassifier", "EOTDifferentiable", "eot"]


class EOTClassifier(Wrapper):
    """A ``Classifier`` whose probabilities are averaged over ``n_samples`` draws.

    Every draw is a real call to the wrapped model, so its query count grows by
    ``n_samples`` per input.
    """

    def __init__(self, model: Classifier, *, n_samples: int) -> None:
        if n_samples < 1:
            raise ConfigError(f"eot needs n_samples >= 1; got {n_samples}")
        self.model = self.wrapped = model
        self.n_samples = n_samples

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        draws = [np.asarray(self.model.predict_proba(x), dtype=np.float64)
                 for _ in range(self.n_samples)]
        mean: np.ndarray = np.mean(draws, axis=0)
        return mean


class EOTDifferentiable(EOTClassifier):
    """Also ``Differentiable``: logits averaged over ``n_samples`` draws, graph kept."""

    def __init__(self, model: Classifier, *, n_samples: int) -> None:
        super().__init__(model, n_samples=n_samples)
        assert isinstance(model, Differentiable)  # eot() only builds this for such models
        self._white = model

    @property
    def device(self) -> torch.device:
        return self._white.device

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        return torch.stack([self._white.logits(x) for _ in range(self.n_samples)]).mean(0)


def eot(model: Classifier, *, n_samples: int = 10) -> EOTClassifier:
    """Wrap a randomised ``model``; white-box when the model is, black-box otherwise."""
    if isinstance(model, Differentiable):
        return EOTDifferentiable(model, n_samples=n_samples)
    return EOTClassifier(model, n_samples=n_samples)
