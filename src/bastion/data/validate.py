"""Checks that data can be scored by a model, run once before any scan check.

Without a model, odd data (NaN, strange ranges) is a *finding* of the data-quality
check; with a model it is an input error, because the model cannot score it.
"""

from __future__ import annotations

import numpy as np

from bastion.data.dataset import Dataset
from bastion.errors import InvalidDataError, ShapeMismatchError
from bastion.typing import Classifier

__all__ = ["validate_for_model"]


def validate_for_model(ds: Dataset, model: Classifier) -> None:
    """Raise a one-line error when ``ds`` cannot be fed to ``model``."""
    where = str(ds.path) if ds.path else ds.name or "data"
    if len(ds) == 0:
        raise InvalidDataError(f"{where} is empty: give a non-empty dataset")
    if ds.sample_shape != tuple(model.input_shape):
        raise ShapeMismatchError(
            f"{where} has samples of shape {ds.sample_shape} but the model expects "
            f"{tuple(model.input_shape)}: give matching data or --input-shape"
        )
    if not np.issubdtype(ds.x.dtype, np.number):
        raise InvalidDataError(f"{where}: features must be numeric, got {ds.x.dtype}")
    bad = ~np.isfinite(ds.x)
    if bad.any():
        rows = np.flatnonzero(bad.reshape(len(ds), -1).any(axis=1))
        raise InvalidDataError(
            f"{where} has NaN or inf in {len(rows)} sample(s) (first at row {int(rows[0])}): "
            "clean or impute them before scoring"
        )
    if ds.y is not None and len(ds.y):
        top = int(ds.y.max())
        if top >= model.n_classes or int(ds.y.min()) < 0:
            raise InvalidDataError(
                f"{where} has label {top} but the model has {model.n_classes} classes "
                f"(0..{model.n_classes - 1}): check the label column or the model"
            )
