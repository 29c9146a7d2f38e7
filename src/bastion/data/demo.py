"""The demo datasets: scikit-learn's bundled digits and breast-cancer data, split seeded."""

from __future__ import annotations

import numpy as np

from bastion.data.dataset import Dataset
from bastion.data.split import split_dataset

__all__ = ["demo_breast_cancer", "demo_digits"]


def demo_digits(seed: int = 0) -> tuple[Dataset, Dataset]:
    """8x8 handwritten digits as (n, 1, 8, 8) float32 images in [0, 1]."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = (bunch.images / 16.0).astype(np.float32)[:, None]
    ds = Dataset(x=x, y=bunch.target.astype(np.int64), kind="image",
                 class_names=tuple(str(c) for c in range(10)), name="digits")
    return split_dataset(ds, test_fraction=0.25, seed=seed)


def demo_breast_cancer(seed: int = 0) -> tuple[Dataset, Dataset]:
    """The Wisconsin breast-cancer table: 30 float32 features, malignant vs benign."""
    from sklearn.datasets import load_breast_cancer

    bunch = load_breast_cancer()
    ds = Dataset(x=bunch.data.astype(np.float32), y=bunch.target.astype(np.int64),
                 kind="tabular", feature_names=tuple(bunch.feature_names),
                 class_names=tuple(bunch.target_names), name="breast-cancer")
    return split_dataset(ds, test_fraction=0.25, seed=seed)
