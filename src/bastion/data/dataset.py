"""The in-memory dataset every loader returns and every check reads."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

__all__ = ["Dataset", "Kind"]

Kind = Literal["image", "tabular", "other"]


@dataclass(frozen=True, kw_only=True)
class Dataset:
    """Features ``x`` of shape ``(n, *sample_shape)`` and optional integer labels ``y``.

    ``kind`` tells checks how to treat features: ``"image"`` inputs are arrays in the
    model's input space (usually ``[0, 1]``), ``"tabular"`` inputs are feature columns.
    """

    x: np.ndarray
    y: np.ndarray | None = None
    kind: Kind = "other"
    feature_names: tuple[str, ...] = ()
    class_names: tuple[str, ...] = ()
    name: str = ""
    path: Path | None = None
    extra: dict[str, str] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.x.shape[0])

    @property
    def sample_shape(self) -> tuple[int, ...]:
        return tuple(int(d) for d in self.x.shape[1:])

    @property
    def n_classes(self) -> int | None:
        """Number of classes from ``class_names`` or, failing that, the labels seen."""
        if self.class_names:
            return len(self.class_names)
        if self.y is None or len(self.y) == 0:
            return None
        return int(np.max(self.y)) + 1
