"""Random queries: inputs drawn uniformly inside the model's bounds.

The attacker knows nothing about the data, only the input shape and range (Tramèr et
al., 2016, "Stealing Machine Learning Models via Prediction APIs", use random inputs
for their retraining attacks). A baseline every other strategy should beat.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bastion.attacks.extraction._base import STRATEGIES, ExtractionState

__all__ = ["RandomQueries"]


@STRATEGIES.register("random")
@dataclass(frozen=True, kw_only=True)
class RandomQueries:
    """Uniform samples in ``bounds`` of the model's input shape."""

    @property
    def label(self) -> str:
        return "random"

    def propose(self, n: int, state: ExtractionState, rng: np.random.Generator) -> np.ndarray:
        low, high = state.bounds
        return rng.uniform(low, high, size=(n, *state.input_shape)).astype(np.float32)
