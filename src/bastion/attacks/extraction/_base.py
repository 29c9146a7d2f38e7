"""What a query strategy sees between rounds, and the registry strategies join.

Extraction runs in rounds: a strategy proposes inputs, the target answers (each input
one query), the surrogate is retrained on everything answered so far. A strategy only
decides *what to ask*; budgets, counting and training belong to :mod:`.extract`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np

from bastion.registry import Registry

if TYPE_CHECKING:
    from bastion.models.torch import TorchClassifier

__all__ = ["STRATEGIES", "ExtractionState", "QueryStrategy"]


@dataclass(frozen=True, kw_only=True)
class ExtractionState:
    """The attacker's knowledge after ``round`` rounds.

    ``x``/``probs`` are every input asked so far and the target's answers; ``surrogate``
    is the copy trained on them (None before the first round). ``seed`` is fixed for
    the whole run, for strategies that need one order across rounds.
    """

    round: int
    x: np.ndarray
    probs: np.ndarray
    surrogate: TorchClassifier | None
    input_shape: tuple[int, ...]
    bounds: tuple[float, float]
    seed: int


@runtime_checkable
class QueryStrategy(Protocol):
    """Chooses up to ``n`` new inputs to query; may return fewer when it runs dry."""

    @property
    def label(self) -> str: ...

    def propose(self, n: int, state: ExtractionState, rng: np.random.Generator) -> np.ndarray: ...


STRATEGIES: Registry[type[QueryStrategy]] = Registry(
    "extraction strategy",
    modules=(
        "bastion.attacks.extraction.random_queries",
        "bastion.attacks.extraction.jacobian",
        "bastion.attacks.extraction.knockoff",
    ),
)
