"""Knockoff Nets (Orekondy et al., 2019): query natural inputs from the attacker's pool.

The attacker holds unlabelled data (the *transfer set*) from a related distribution and
asks the target about it, training on the returned probabilities. This is the paper's
``random`` sampling strategy: pool records without replacement, in a seeded order.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from bastion.attacks.extraction._base import STRATEGIES, ExtractionState
from bastion.errors import InvalidDataError

__all__ = ["KnockoffNets"]


@STRATEGIES.register("knockoff")
@dataclass(frozen=True, kw_only=True)
class KnockoffNets:
    """Sample unqueried records of ``pool``; stops proposing when the pool is used up."""

    pool: np.ndarray = field(repr=False)

    def __post_init__(self) -> None:
        if len(self.pool) == 0:
            raise InvalidDataError("the knockoff pool is empty; give unlabelled attacker data")

    @property
    def label(self) -> str:
        return "knockoff"

    def propose(self, n: int, state: ExtractionState, rng: np.random.Generator) -> np.ndarray:
        # One seeded order per run; round after round takes its next slice.
        order = np.random.default_rng(state.seed).permutation(len(self.pool))
        used = len(state.x)
        return np.asarray(self.pool[order[used : used + n]], dtype=np.float32)
