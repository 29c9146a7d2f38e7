"""Turn whatever model object a user holds into the right adapter.

:func:`as_classifier` returns an adapter that is ``Differentiable`` exactly when
gradients exist: a torch module, or a scikit-learn model with an exact torch twin
(linear models, MLPs, and scaler pipelines in front of them). Anything else that
scikit-learn fits (trees, forests, boosting, SVC, k-NN) is a black-box ``Classifier``.
:func:`require_differentiable` is the one-line refusal for code that needs gradients.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

from bastion.errors import UnsupportedModelError
from bastion.models._checks import check_input_shape
from bastion.typing import Classifier, Differentiable

__all__ = ["as_classifier", "require_differentiable"]


def as_classifier(
    model: Any,
    *,
    input_shape: Sequence[int] | None = None,
    n_classes: int | None = None,
    bounds: Sequence[float] = (0.0, 1.0),
    mean: float | Sequence[float] | None = None,
    std: float | Sequence[float] | None = None,
    device: str = "cpu",
) -> Classifier:
    """The adapter for ``model``; an object that already is a ``Classifier`` is returned as is.

    ``input_shape`` is required for torch modules; scikit-learn models default to
    ``(n_features_in_,)``. ``mean``/``std`` apply to torch modules only (a scikit-learn
    pipeline carries its own scaling).
    """
    if isinstance(model, Classifier):
        return model
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(model, torch.nn.Module):
        from bastion.models.torch import TorchClassifier

        shape = check_input_shape(input_shape, who=f"the torch model {type(model).__name__}")
        return TorchClassifier(model, input_shape=shape, n_classes=n_classes,
                               bounds=bounds, mean=mean, std=std, device=device)
    if hasattr(model, "classes_") and hasattr(model, "predict"):
        return _sklearn(model, input_shape=input_shape, bounds=bounds, device=device)
    raise UnsupportedModelError(
        f"cannot adapt a {type(model).__name__}; give a torch.nn.Module, a fitted "
        "scikit-learn classifier, or an object with predict_proba and n_classes"
    )


def require_differentiable(model: Classifier, purpose: str) -> Differentiable:
    """``model`` as ``Differentiable``, or a one-line ``UnsupportedModelError`` for ``purpose``."""
    if isinstance(model, Differentiable):
        return model
    raise UnsupportedModelError(
        f"{purpose} needs gradients but {type(model).__name__} only gives probabilities; "
        "use a torch or scikit-learn linear/MLP model, or a query-based attack"
    )


def _sklearn(
    estimator: Any, *, input_shape: Sequence[int] | None, bounds: Sequence[float], device: str
) -> Classifier:
    """An exact torch twin when one exists and torch is installed, else the black box."""
    from bastion.models.sklearn import SklearnClassifier

    black_box = SklearnClassifier(estimator, input_shape=input_shape, bounds=bounds)
    try:
        from torch import nn

        from bastion.models.torch import TorchClassifier
        from bastion.models.twins import torch_twin
    except ImportError:  # torch is an optional extra; without it sklearn stays black-box
        return black_box
    twin = torch_twin(estimator)
    if twin is None:
        return black_box
    if len(black_box.input_shape) > 1:
        twin = nn.Sequential(nn.Flatten(), twin)
    return TorchClassifier(twin, input_shape=black_box.input_shape,
                           n_classes=black_box.n_classes, bounds=black_box.bounds, device=device,
                           estimator=estimator)
