"""The two capabilities every model adapter offers, as Protocols.

``Classifier`` is the black-box view: probabilities out, nothing else. Query-based
attacks, extraction and membership inference use only this, so they work on torch,
scikit-learn, ONNX and HTTP models alike. ``Differentiable`` is the white-box view:
logits as a torch tensor on inputs in the model's own input space (any normalisation
happens inside the adapter), so gradient attacks are written once, in torch.

This module must stay importable without torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    import torch

__all__ = ["Bounds", "Classifier", "Differentiable", "FloatArray", "IntArray"]

FloatArray = npt.NDArray[np.floating]
IntArray = npt.NDArray[np.integer]
Bounds = tuple[float, float]


@runtime_checkable
class Classifier(Protocol):
    """A model that maps a batch of inputs to class probabilities.

    ``predict_proba`` takes an array of shape ``(n, *input_shape)`` with values inside
    ``bounds`` and returns an ``(n, n_classes)`` float array whose rows sum to 1.
    Every call adds ``n`` to ``n_queries``: attacks and reports rely on the count.
    """

    @property
    def n_classes(self) -> int: ...

    @property
    def input_shape(self) -> tuple[int, ...]: ...

    @property
    def bounds(self) -> Bounds: ...

    @property
    def n_queries(self) -> int: ...

    def reset_queries(self) -> None: ...

    def predict_proba(self, x: np.ndarray) -> np.ndarray: ...


@runtime_checkable
class Differentiable(Protocol):
    """A model whose logits can be differentiated with respect to its input.

    ``logits`` takes a float tensor of shape ``(n, *input_shape)`` on ``device`` and
    returns ``(n, n_classes)`` logits, keeping the autograd graph. The adapter is in
    eval mode; it never changes ``requires_grad`` of its parameters behind the caller.
    """

    @property
    def device(self) -> torch.device: ...

    def logits(self, x: torch.Tensor) -> torch.Tensor: ...
