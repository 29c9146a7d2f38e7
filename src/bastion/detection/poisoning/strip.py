"""STRIP: spot backdoor-triggered inputs at run time (Gao et al., ACSAC 2019).

Superimpose ``n_overlays`` random clean inputs on an input (added with weight
``alpha`` and clipped to the model's bounds, as the paper adds images) and look at the model's
predictions: a trigger keeps dictating the target class whatever it is mixed with, so the
predictions' entropy stays low, while a clean input's prediction scatters. The threshold
is set on the clean inputs themselves (each blended with other clean inputs): their
``frr`` quantile of entropy, so about ``frr`` of clean inputs are flagged (the paper's
false rejection rate). Scores are minus the mean entropy (higher = more suspicious).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bastion.detection.poisoning._result import Detection
from bastion.errors import InvalidDataError, ShapeMismatchError
from bastion.typing import Classifier

__all__ = ["STRIP"]


@dataclass(frozen=True, kw_only=True)
class STRIP:
    """Flag inputs whose blended copies all get the same confident prediction."""

    n_overlays: int = 20
    alpha: float = 1.0
    frr: float = 0.01

    def _entropy(self, model: Classifier, x: np.ndarray, clean: np.ndarray,
                 generator: np.random.Generator) -> np.ndarray:
        """Mean prediction entropy of each row of ``x`` superimposed with random clean rows."""
        picks = generator.integers(0, len(clean), size=(len(x), self.n_overlays))
        blended = np.clip(x[:, None] + self.alpha * clean[picks], *model.bounds)
        proba = np.asarray(model.predict_proba(
            blended.reshape(-1, *x.shape[1:]).astype(x.dtype, copy=False)))
        proba = np.clip(proba, 1e-12, 1.0)
        entropy = -(proba * np.log(proba)).sum(axis=1)
        return np.asarray(entropy.reshape(len(x), self.n_overlays).mean(axis=1))

    def __call__(self, model: Classifier, x: np.ndarray, clean: np.ndarray, *,
                 generator: np.random.Generator) -> Detection:
        """Score ``x``; ``clean`` are trusted inputs (held-out data) for overlays and threshold."""
        if len(clean) < 2:
            raise InvalidDataError("STRIP needs at least two trusted clean inputs; pass "
                                   "held-out data")
        if x.shape[1:] != clean.shape[1:]:
            raise ShapeMismatchError(f"inputs of shape {x.shape[1:]} and clean inputs of "
                                     f"shape {clean.shape[1:]} differ; pass the same kind")
        reference = self._entropy(model, clean, clean, generator)
        threshold = float(np.quantile(reference, self.frr))
        entropy = self._entropy(model, x, clean, generator)
        return Detection(scores=-entropy, flagged=entropy < threshold,
                         threshold=f"mean entropy of blended predictions below "
                                   f"{threshold:.3g} (the {self.frr:.0%} quantile on clean "
                                   "inputs)")
