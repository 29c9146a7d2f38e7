import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bastion.data import Dataset, load_split, split_dataset
from bastion.errors import ConfigError, InvalidDataError, ShapeMismatchError


def _ds(y: list[int]) -> Dataset:
    return Dataset(x=np.arange(len(y) * 2, dtype=np.float32).reshape(-1, 2), y=np.array(y),
                   kind="tabular", name="d")


def test_split_is_seeded_stratified_and_partitions_the_rows() -> None:
    ds = _ds([0] * 80 + [1] * 20)
    train, test = split_dataset(ds, test_fraction=0.25, seed=7)
    again, _ = split_dataset(ds, test_fraction=0.25, seed=7)
    np.testing.assert_array_equal(train.x, again.x)
    assert len(train) == 75 and len(test) == 25 and test.y is not None
    assert np.bincount(test.y).tolist() == [20, 5]  # class ratio kept exactly
    rows = sorted(np.r_[train.x[:, 0], test.x[:, 0]].tolist())
    assert rows == ds.x[:, 0].tolist() and (train.name, test.name) == ("d-train", "d-test")


def test_split_falls_back_to_random_for_a_singleton_class() -> None:
    train, test = split_dataset(_ds([0] * 9 + [1]), test_fraction=0.3, seed=0)
    assert len(train) + len(test) == 10


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.1])
def test_split_fraction_must_be_a_proper_fraction(fraction: float) -> None:
    with pytest.raises(ConfigError):
        split_dataset(_ds([0, 1, 0, 1]), test_fraction=fraction, seed=0)


def test_load_split_reindexes_string_classes_missing_from_one_file(tmp_path: Path) -> None:
    (tmp_path / "train.csv").write_text("a,label\n1,cat\n2,dog\n3,eel\n")
    (tmp_path / "test.csv").write_text("a,label\n4,dog\n5,eel\n")
    train, test = load_split(tmp_path / "train.csv", tmp_path / "test.csv")
    assert train.class_names == test.class_names == ("cat", "dog", "eel")
    assert train.y is not None and test.y is not None
    assert train.y.tolist() == [0, 1, 2] and test.y.tolist() == [1, 2]  # not [0, 1]


@pytest.mark.parametrize(
    ("test_csv", "error", "needle"),
    [
        ("a,b,label\n1,2,0\n", ShapeMismatchError, "same features"),
        ("b,label\n1,0\n", InvalidDataError, "different feature columns"),
        ("a\n1\n", InvalidDataError, "label both or neither"),
        ("a,label\n1,cat\n", InvalidDataError, "same label encoding"),
    ],
)
def test_load_split_refuses_files_that_disagree(tmp_path: Path, test_csv: str, error: type,
                                                needle: str) -> None:
    (tmp_path / "train.csv").write_text("a,label\n1,0\n2,1\n")
    (tmp_path / "test.csv").write_text(test_csv)
    with pytest.raises(error, match=needle):
        load_split(tmp_path / "train.csv", tmp_path / "test.csv")


@settings(derandomize=True, max_examples=40, deadline=None)
@given(labels=st.lists(st.integers(0, 3), min_size=4, max_size=60),
       fraction=st.floats(0.1, 0.9), seed=st.integers(0, 2**16))
def test_split_partitions_the_rows_for_any_labels(labels: list[int], fraction: float,
                                                  seed: int) -> None:
    ds = _ds(labels)
    if not 0 < math.ceil(fraction * len(ds)) < len(ds):
        with pytest.raises(InvalidDataError, match="leaves one side empty"):
            split_dataset(ds, test_fraction=fraction, seed=seed)
        return
    train, test = split_dataset(ds, test_fraction=fraction, seed=seed)
    again, _ = split_dataset(ds, test_fraction=fraction, seed=seed)
    assert sorted(np.r_[train.x[:, 0], test.x[:, 0]].tolist()) == ds.x[:, 0].tolist()
    assert len(train) >= 1 and len(test) >= 1
    np.testing.assert_array_equal(train.x, again.x)
