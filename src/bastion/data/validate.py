"""Checks that data can be used, and that a model can score it.

The loaders call :func:`as_labels` on every label array they read. The scan runner
calls :func:`validate_for_model` once per dataset before any check runs, so a bad input
stops the run with one line instead of surfacing as many check errors.

Without a model, odd data (NaN, strange ranges) is a *finding* of the data-quality
check; with a model it is an input error, because the model cannot score it.
"""

from __future__ import annotations

import numpy as np

from bastion.data.dataset import Dataset
from bastion.errors import InvalidDataError, ShapeMismatchError
from bastion.typing import Classifier

__all__ = [
    "as_labels",
    "require_finite",
    "require_labels_in_range",
    "require_nonempty",
    "require_shape",
    "validate_for_model",
]


def _where(ds: Dataset) -> str:
    return str(ds.path) if ds.path else ds.name or "data"


def as_labels(raw: np.ndarray, n_samples: int, where: str) -> np.ndarray:
    """One non-negative int64 label per sample; integer-valued floats are accepted."""
    y = np.asarray(raw)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y.reshape(-1)
    if y.ndim != 1 or len(y) != n_samples:
        raise InvalidDataError(
            f"{where}: labels have shape {tuple(np.shape(raw))} but there are {n_samples} "
            "samples; give one integer label per sample"
        )
    if y.dtype.kind == "f":
        if not np.isfinite(y).all():
            raise InvalidDataError(f"{where}: labels hold NaN or inf; give a label for every row")
        if not np.all(y == np.round(y)):
            raise InvalidDataError(
                f"{where}: labels must be integers (class indices), found fractional values; "
                "bastion scores classifiers, not regressors"
            )
    elif y.dtype.kind not in "iub":
        raise InvalidDataError(f"{where}: labels must be integers, got {y.dtype}")
    if len(y) and y.min() < 0:
        raise InvalidDataError(
            f"{where}: labels must be >= 0, found {int(y.min())}; map classes to 0..k-1"
        )
    return y.astype(np.int64)


def require_nonempty(ds: Dataset) -> None:
    """Refuse a dataset without samples."""
    if len(ds) == 0:
        raise InvalidDataError(f"{_where(ds)} is empty: give a non-empty dataset")


def require_shape(ds: Dataset, input_shape: tuple[int, ...]) -> None:
    """Refuse samples whose shape is not the model's input shape."""
    if ds.sample_shape != tuple(input_shape):
        raise ShapeMismatchError(
            f"{_where(ds)} has samples of shape {ds.sample_shape} but the model expects "
            f"{tuple(input_shape)}: give matching data or --input-shape"
        )


def require_finite(ds: Dataset) -> None:
    """Refuse non-numeric features and NaN/inf, which no model can score."""
    if not (np.issubdtype(ds.x.dtype, np.number) or ds.x.dtype == bool):
        raise InvalidDataError(f"{_where(ds)}: features must be numeric, got {ds.x.dtype}")
    bad = ~np.isfinite(ds.x.reshape(len(ds), -1))
    if bad.any():
        rows = np.flatnonzero(bad.any(axis=1))
        raise InvalidDataError(
            f"{_where(ds)} has NaN or inf in {len(rows)} sample(s) (first at row "
            f"{int(rows[0])}): clean or impute them before scoring"
        )


def require_labels_in_range(ds: Dataset, n_classes: int) -> None:
    """Refuse labels that are not class indices ``0..n_classes-1``."""
    if ds.y is None or len(ds.y) == 0:
        return
    y = as_labels(ds.y, len(ds), _where(ds))
    if int(y.max()) >= n_classes:
        raise InvalidDataError(
            f"{_where(ds)} has label {int(y.max())} but the model has {n_classes} classes "
            f"(0..{n_classes - 1}): check the label column or the model"
        )


def validate_for_model(ds: Dataset, model: Classifier) -> None:
    """Raise a one-line error when ``ds`` cannot be fed to ``model``."""
    require_nonempty(ds)
    require_shape(ds, tuple(model.input_shape))
    require_finite(ds)
    require_labels_in_range(ds, model.n_classes)
