"""The demo datasets: scikit-learn's bundled digits and breast-cancer data, split seeded."""

from __future__ import annotations

import numpy as np

from bastion.data.dataset import Dataset

__all__ = ["demo_breast_cancer", "demo_digits", "split_dataset"]


def split_dataset(ds: Dataset, *, test_fraction: float, seed: int) -> tuple[Dataset, Dataset]:
    """A stratified, seeded train/test split that keeps names and kind."""
    from dataclasses import replace

    from sklearn.model_selection import train_test_split

    idx = np.arange(len(ds))
    train_idx, test_idx = train_test_split(
        idx, test_size=test_fraction, random_state=seed, stratify=ds.y
    )
    def part(rows: np.ndarray, suffix: str) -> Dataset:
        y = None if ds.y is None else ds.y[rows]
        return replace(ds, x=ds.x[rows], y=y, name=f"{ds.name}-{suffix}")

    return part(train_idx, "train"), part(test_idx, "test")


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
