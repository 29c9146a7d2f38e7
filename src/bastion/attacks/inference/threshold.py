"""Loss-threshold membership inference (Yeom et al., 2018, "Privacy Risk in ML").

A model's loss is lower on the records it was trained on; Yeom et al. call a record a
member when its loss is below a threshold (the average training loss). Scoring by the
negative cross-entropy ``log p_y`` and sweeping the threshold gives the whole ROC curve,
of which Yeom's threshold is one point. ``signal="confidence"`` scores by the top
probability instead (Salem et al., 2019), which needs no label.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

import numpy as np

from bastion.attacks.inference._base import MEMBERSHIP_ATTACKS, MembershipInputs
from bastion.attacks.inference._references import true_class_probability

__all__ = ["LossThreshold"]


@MEMBERSHIP_ATTACKS.register("loss-threshold")
@dataclass(frozen=True, kw_only=True)
class LossThreshold:
    """Members have low loss: score ``log p_y`` (or ``max_c p_c``), no reference models."""

    needs_references: ClassVar[bool] = False
    needs_population: ClassVar[bool] = False
    signal: Literal["loss", "confidence"] = "loss"

    @property
    def label(self) -> str:
        return "loss-threshold" if self.signal == "loss" else "confidence-threshold"

    def scores(self, inputs: MembershipInputs) -> np.ndarray:
        probs = inputs.probs[inputs.evaluated]
        if self.signal == "confidence":
            return np.asarray(probs.max(axis=1), dtype=np.float64)
        p = true_class_probability(probs, inputs.y[inputs.evaluated])
        return np.asarray(np.log(np.maximum(p, 1e-300)), dtype=np.float64)
