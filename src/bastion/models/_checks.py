"""Validation shared by every adapter: shapes, bounds and batches, with one-line fixes.

Kept free of torch so the black-box adapters (scikit-learn, ONNX, HTTP) never import it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from bastion.errors import ConfigError, InvalidDataError, ShapeMismatchError
from bastion.typing import Bounds

__all__ = ["check_batch", "check_batch_size", "check_bounds", "check_input_shape"]


def check_input_shape(shape: Sequence[int] | None, *, who: str) -> tuple[int, ...]:
    """A non-empty tuple of positive ints; the error says how to give one."""
    if shape is None:
        raise ConfigError(
            f"{who} needs the input shape of one sample; pass input_shape "
            "(on the command line --input-shape, e.g. 1,28,28)"
        )
    try:
        dims = tuple(int(d) for d in shape)
    except (TypeError, ValueError):
        dims = ()
    if not dims or any(d <= 0 for d in dims):
        raise ConfigError(
            f"input_shape {tuple(shape)!r} must be positive integers, e.g. (1, 28, 28)"
        )
    return dims


def check_bounds(bounds: Sequence[float]) -> Bounds:
    """``(low, high)`` finite with low < high."""
    try:
        low, high = (float(b) for b in bounds)
    except (TypeError, ValueError):
        raise ConfigError(f"bounds {bounds!r} must be two numbers (low, high)") from None
    if not (math.isfinite(low) and math.isfinite(high) and low < high):
        raise ConfigError(f"bounds ({low}, {high}) must be finite with low < high")
    return low, high


def check_batch_size(batch_size: int) -> int:
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size <= 0:
        raise ConfigError(f"batch_size {batch_size!r} must be a positive integer")
    return batch_size


def check_batch(x: object, input_shape: tuple[int, ...]) -> np.ndarray:
    """``x`` as a numeric array of shape ``(n, *input_shape)``; never copies a good array."""
    arr = np.asarray(x)
    if arr.dtype.kind not in "biuf":
        raise InvalidDataError(f"model inputs must be numbers, got dtype {arr.dtype}")
    if arr.shape == input_shape:
        raise ShapeMismatchError(
            f"got one sample of shape {arr.shape}; the model takes a batch of shape "
            f"(n, {_dims(input_shape)}): add a batch axis (x[None])"
        )
    if arr.ndim != len(input_shape) + 1 or arr.shape[1:] != input_shape:
        raise ShapeMismatchError(
            f"the model takes inputs of shape (n, {_dims(input_shape)}) but got {arr.shape}; "
            "reshape the data or pass the model's --input-shape"
        )
    return arr


def _dims(shape: tuple[int, ...]) -> str:
    return ", ".join(str(d) for d in shape)
