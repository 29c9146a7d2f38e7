"""Model versions: deploy keeps the previous one; rollback swaps back; shapes must match."""

from __future__ import annotations

import numpy as np
import pytest

from bastion.errors import ConfigError
from bastion.gateway.slots import ModelSlot, ModelVersion


class _Constant:
    """A classifier that always answers one class (enough to tell versions apart)."""

    def __init__(self, label: int, n_features: int = 4, n_classes: int = 3) -> None:
        self.label, self.input_shape, self.n_classes = label, (n_features,), n_classes
        self.bounds, self.n_queries = (0.0, 1.0), 0

    def reset_queries(self) -> None:
        self.n_queries = 0

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        self.n_queries += len(x)
        return np.eye(self.n_classes)[np.full(len(x), self.label)]


def test_deploy_then_rollback() -> None:
    slot = ModelSlot(ModelVersion("v1", _Constant(0)))
    with pytest.raises(ConfigError, match="no previous"):
        slot.rollback()
    slot.deploy(ModelVersion("v2", _Constant(2)))
    x = np.zeros((2, 4))
    assert slot.current.name == "v2" and slot.current.predict_proba(x).argmax(1).tolist() == [2, 2]
    assert slot.rollback().name == "v1" and slot.previous is not None
    assert slot.current.predict_proba(x).argmax(1).tolist() == [0, 0]


def test_incompatible_version_is_refused() -> None:
    slot = ModelSlot(ModelVersion("v1", _Constant(0)))
    with pytest.raises(ConfigError, match="clients would break"):
        slot.deploy(ModelVersion("v2", _Constant(0, n_features=5)))
    assert slot.current.name == "v1"
