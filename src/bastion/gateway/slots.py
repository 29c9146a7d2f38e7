"""The served model and the one before it, so that a bad rollout (or a poisoned model
caught by the monitor) can be undone with :meth:`ModelSlot.rollback` while serving."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import numpy as np

from bastion.errors import ConfigError
from bastion.typing import Classifier

__all__ = ["ModelSlot", "ModelVersion"]


@dataclass(frozen=True)
class ModelVersion:
    """A loaded model and the name it is served under (its file name, or a label)."""

    name: str
    model: Classifier
    lock: threading.Lock = field(default_factory=threading.Lock, compare=False, repr=False)

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        # Adapters count queries and some runtimes are not re-entrant: one call at a time.
        with self.lock:
            return self.model.predict_proba(x)


class ModelSlot:
    """Holds the current and the previous model version; swaps are atomic."""

    def __init__(self, current: ModelVersion, previous: ModelVersion | None = None) -> None:
        self._current = current
        self._previous = previous
        self._lock = threading.Lock()

    @property
    def current(self) -> ModelVersion:
        return self._current

    @property
    def previous(self) -> ModelVersion | None:
        return self._previous

    def deploy(self, version: ModelVersion) -> None:
        """Serve ``version`` from now on; the one it replaces becomes the previous."""
        _check_compatible(self._current.model, version.model)
        with self._lock:
            self._previous, self._current = self._current, version

    def rollback(self) -> ModelVersion:
        """Serve the previous version again (and keep the current as previous)."""
        with self._lock:
            if self._previous is None:
                raise ConfigError("there is no previous model version to roll back to")
            self._previous, self._current = self._current, self._previous
            return self._current


def _check_compatible(old: Classifier, new: Classifier) -> None:
    if (old.input_shape, old.n_classes) != (new.input_shape, new.n_classes):
        raise ConfigError(
            f"the new model takes {new.input_shape} → {new.n_classes} classes but the served "
            f"one takes {old.input_shape} → {old.n_classes}; clients would break"
        )
