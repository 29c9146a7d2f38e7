"""What a membership-inference attack sees, and the registry attacks join.

An attack is a pure scoring function: the target has already been queried once on
every record (so the query count is the same whichever attacks run), and reference
models, when the attack needs them, have already been trained on the pool.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Protocol, runtime_checkable

import numpy as np

from bastion.attacks.inference._references import ReferenceModels
from bastion.registry import Registry

__all__ = ["MEMBERSHIP_ATTACKS", "MembershipAttack", "MembershipInputs", "logit_confidence"]


@dataclass(frozen=True, kw_only=True)
class MembershipInputs:
    """Everything an attack may use.

    ``probs`` are the target's probabilities on every pool record and ``y`` their labels.
    ``evaluated`` indexes the records whose membership is to be scored; ``population``
    indexes records known not to be in the target's training set (RMIA's ``z``).
    ``references`` covers every pool record, or is None when no recipe was given.
    """

    probs: np.ndarray
    y: np.ndarray
    evaluated: np.ndarray
    population: np.ndarray
    references: ReferenceModels | None
    seed: int = 0


@runtime_checkable
class MembershipAttack(Protocol):
    """Scores records: higher means "more likely a training member"."""

    needs_references: ClassVar[bool]
    needs_population: ClassVar[bool]

    @property
    def label(self) -> str: ...

    def scores(self, inputs: MembershipInputs) -> np.ndarray: ...


MEMBERSHIP_ATTACKS: Registry[type[MembershipAttack]] = Registry(
    "membership attack",
    modules=(
        "bastion.attacks.inference.threshold",
        "bastion.attacks.inference.shadow",
        "bastion.attacks.inference.lira",
        "bastion.attacks.inference.rmia",
    ),
)


def logit_confidence(p_true: np.ndarray, p_others: np.ndarray) -> np.ndarray:
    """LiRA's logit-scaled confidence ``log p_y - log(1 - p_y)`` (Carlini et al., 2022).

    ``1 - p_y`` is taken as the sum of the other classes' probabilities, which keeps
    precision when ``p_y`` rounds to 1. Both terms are floored at float32's epsilon
    (about 1.2e-7): most adapters return float32 probabilities, which resolve nothing
    finer near 1, and models with saturated or coarse outputs (a forest's vote shares
    of 0 or 1) would otherwise put records at arbitrary extremes that swamp the
    Gaussian fits.
    """
    floor = float(np.finfo(np.float32).eps)
    return np.asarray(np.log(np.maximum(p_true, floor)) - np.log(np.maximum(p_others, floor)))
