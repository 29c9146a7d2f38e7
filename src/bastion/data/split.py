"""Train/test pairs: a seeded stratified split, and loading two files that must agree."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import numpy as np

from bastion.data.dataset import Dataset, Kind
from bastion.data.load import load_dataset
from bastion.errors import ConfigError, InvalidDataError, ShapeMismatchError

__all__ = ["load_split", "split_dataset"]


def split_dataset(ds: Dataset, *, test_fraction: float, seed: int) -> tuple[Dataset, Dataset]:
    """A seeded train/test split that keeps names and kind.

    Stratified by label when the labels allow it: every class needs two samples and
    the test part room for every class; otherwise the split is plain random.
    """
    from sklearn.model_selection import train_test_split

    if not 0.0 < test_fraction < 1.0:
        raise ConfigError(f"test_fraction {test_fraction} must lie strictly between 0 and 1")
    n_test = math.ceil(test_fraction * len(ds))  # how scikit-learn rounds
    if not 0 < n_test < len(ds):
        raise InvalidDataError(
            f"a {test_fraction:g} test fraction of {len(ds)} sample(s) leaves one side empty: "
            "give more data or another fraction"
        )
    stratify = None
    if ds.y is not None:
        counts = np.bincount(ds.y)
        stratify = ds.y if counts[counts > 0].min() >= 2 else None
    idx = np.arange(len(ds))
    try:
        train_idx, test_idx = train_test_split(
            idx, test_size=test_fraction, random_state=seed, stratify=stratify
        )
    except ValueError:  # too few rows per class for this fraction
        train_idx, test_idx = train_test_split(idx, test_size=test_fraction, random_state=seed)

    def part(rows: np.ndarray, suffix: str) -> Dataset:
        y = None if ds.y is None else ds.y[rows]
        return replace(ds, x=ds.x[rows], y=y, name=f"{ds.name}-{suffix}")

    return part(train_idx, "train"), part(test_idx, "test")


def load_split(
    train: str | Path,
    test: str | Path,
    *,
    label: str | None = None,
    kind: Kind | None = None,
) -> tuple[Dataset, Dataset]:
    """Load a training and a test file that describe the same features and classes.

    Class names read from strings or folder names are merged and both label arrays
    re-indexed, so a class missing from one file does not shift the other's labels.
    """
    a = load_dataset(train, label=label, kind=kind)
    b = load_dataset(test, label=label, kind=kind)
    if a.sample_shape != b.sample_shape:
        raise ShapeMismatchError(
            f"{b.path} has samples of shape {b.sample_shape} but {a.path} has "
            f"{a.sample_shape}: give train and test data with the same features"
        )
    if a.feature_names and b.feature_names and a.feature_names != b.feature_names:
        diff = sorted(set(a.feature_names) ^ set(b.feature_names)) or ["(column order)"]
        raise InvalidDataError(
            f"{a.path} and {b.path} have different feature columns ({', '.join(diff[:5])}): "
            "give both files the same columns in the same order"
        )
    if (a.y is None) != (b.y is None):
        raise InvalidDataError(
            f"only one of {a.path} and {b.path} has labels: label both or neither"
        )
    if bool(a.class_names) != bool(b.class_names):
        raise InvalidDataError(
            f"one of {a.path} and {b.path} names its classes and the other uses numbers: "
            "use the same label encoding in both"
        )
    if not a.class_names:
        return a, b
    names = tuple(sorted(set(a.class_names) | set(b.class_names)))
    return _reindex(a, names), _reindex(b, names)


def _reindex(ds: Dataset, names: tuple[str, ...]) -> Dataset:
    if ds.y is None or ds.class_names == names:
        return replace(ds, class_names=names)
    table = np.array([names.index(n) for n in ds.class_names], dtype=np.int64)
    return replace(ds, y=table[ds.y], class_names=names)
