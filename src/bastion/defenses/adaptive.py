"""Adaptive attacks on input transforms: BPDA, and EOT for randomised ones.

Athalye, Carlini & Wagner (ICML 2018) showed that transforms which break or hide the
gradient (JPEG, bit depth, TV denoising) give no robustness once the attacker uses
*Backward Pass Differentiable Approximation*: run the real transform forward and, on the
way back, differentiate a smooth stand-in ``g`` with ``g(x) ~ transform(x)`` (the
identity for these transforms). Randomised transforms additionally need
*Expectation over Transformation* (:mod:`bastion.attacks.eot`): gradients averaged over
draws. :func:`adaptive_views` builds the view an attack should differentiate; success is
always judged on the deployed (transformed) model itself.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from bastion.attacks.eot import eot
from bastion.defenses.transforms import TransformedClassifier, TransformedDifferentiable
from bastion.errors import ConfigError
from bastion.models._base import Wrapper
from bastion.typing import Classifier, Differentiable

__all__ = ["BPDA", "adaptive_views"]

Approximation = Callable[[torch.Tensor], torch.Tensor]


class BPDA(Wrapper):
    """A transformed model whose forward pass is real and whose backward pass is ``g``'s.

    ``logits(x)`` evaluates the model on ``transform(x)`` exactly, with gradient
    ``d model / d x`` taken through ``approximation`` (in ``[0, 1]`` space like the
    transforms; the transform's own :meth:`~InputTransform.approximation` when not given).
    Probabilities, queries and bounds are the defended model's own.
    """

    def __init__(self, defended: TransformedDifferentiable,
                 approximation: Approximation | None = None) -> None:
        self.defended = self.wrapped = defended
        self.approximation = approximation or defended.transform.approximation
        assert isinstance(defended.model, Differentiable)  # TransformedDifferentiable's model is
        self._white = defended.model

    @property
    def device(self) -> torch.device:
        return self.defended.device

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        return self.defended.predict_proba(x)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        lo, hi = self.bounds
        with torch.no_grad():
            forward = self.defended.preprocess(x.detach())
        smooth = lo + self.approximation(((x - lo) / (hi - lo)).clamp(0, 1)) * (hi - lo)
        return self._white.logits(smooth + (forward - smooth).detach())


def adaptive_views(
    defended: TransformedClassifier, *, eot_samples: int = 16
) -> tuple[tuple[str, Classifier], ...]:
    """``(label, view)`` pairs an adaptive gradient attack should run on.

    BPDA where the transform's gradient is flat or hidden, EOT (``eot_samples`` draws per
    gradient) where it is random, both where both hold; nothing for a black-box model
    (query-based attacks need no view) or an exact, deterministic transform.
    """
    if eot_samples < 1:
        raise ConfigError(f"eot_samples must be >= 1; got {eot_samples}")
    if not isinstance(defended, TransformedDifferentiable):
        return ()
    view: Classifier = defended
    labels = []
    if not defended.transform.differentiable:
        view, labels = BPDA(defended), ["bpda"]
    if defended.transform.randomized:
        view, labels = eot(view, n_samples=eot_samples), [*labels, "eot"]
    return (("+".join(labels), view),) if labels else ()
