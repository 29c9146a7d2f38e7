"""What a dataset detector hands back, and the input checks they share."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bastion.errors import InvalidDataError, ShapeMismatchError

__all__ = ["Detection", "check_inputs"]


@dataclass(frozen=True, kw_only=True)
class Detection:
    """Per-row suspicion ``scores`` (higher = more suspicious) and the rows ``flagged``.

    ``threshold`` says in words what put a row over the line, for reports.
    """

    scores: np.ndarray
    flagged: np.ndarray
    threshold: str

    @property
    def indices(self) -> np.ndarray:
        """Row indices flagged, most suspicious first."""
        idx = np.flatnonzero(self.flagged)
        return idx[np.argsort(-self.scores[idx], kind="stable")]


def check_inputs(features: np.ndarray, y: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """Rows flattened to float64 and labels as an array, or a one-line error."""
    if y is None:
        raise InvalidDataError("the data has no labels; poisoning detection needs them "
                               "(pass --label COLUMN or a 'y' array)")
    x = np.asarray(features, dtype=np.float64).reshape(len(features), -1)
    y = np.asarray(y)
    if len(x) != len(y):
        raise ShapeMismatchError(f"{len(x)} rows but {len(y)} labels; give one label per row")
    if not np.isfinite(x).all():
        raise InvalidDataError("features hold NaN or inf; impute or drop those rows first")
    if len(np.unique(y)) < 2:
        raise InvalidDataError("the labels hold a single class; poisoning detection needs "
                               "at least two")
    return x, y
