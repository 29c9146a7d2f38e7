"""Model adapters and safe loaders: every model becomes a ``Classifier``.

``load_model`` opens a file or URL by its detected format (never unpickling);
``as_classifier`` adapts an in-memory object. The adapters are ``TorchClassifier``
(white-box), ``SklearnClassifier``, ``OnnxClassifier`` and ``HttpClassifier``
(black-box). Names backed by torch or onnxruntime are imported on first use, so
``import bastion.models`` stays cheap.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from bastion.models.adapt import as_classifier, require_differentiable

if TYPE_CHECKING:
    from bastion.models.http import HttpClassifier
    from bastion.models.load import load_model
    from bastion.models.onnx import OnnxClassifier
    from bastion.models.sklearn import SklearnClassifier
    from bastion.models.torch import TorchClassifier

__all__ = [
    "HttpClassifier",
    "OnnxClassifier",
    "SklearnClassifier",
    "TorchClassifier",
    "as_classifier",
    "load_model",
    "require_differentiable",
]

_LAZY = {
    "HttpClassifier": "bastion.models.http",
    "OnnxClassifier": "bastion.models.onnx",
    "SklearnClassifier": "bastion.models.sklearn",
    "TorchClassifier": "bastion.models.torch",
    "load_model": "bastion.models.load",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'bastion.models' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return sorted(__all__)
