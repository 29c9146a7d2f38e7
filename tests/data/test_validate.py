from dataclasses import dataclass

import numpy as np
import pytest

from bastion.data import Dataset
from bastion.data.validate import as_labels, validate_for_model
from bastion.errors import InvalidDataError, ShapeMismatchError


@dataclass
class _Model:
    input_shape: tuple[int, ...] = (3,)
    n_classes: int = 2


def _ds(x: np.ndarray, y: list[int] | None = None) -> Dataset:
    return Dataset(x=x, y=None if y is None else np.array(y), name="d")


def test_good_data_passes() -> None:
    validate_for_model(_ds(np.zeros((2, 3)), [0, 1]), _Model())  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("ds", "error", "needle"),
    [
        (_ds(np.zeros((2, 4))), ShapeMismatchError, "expects (3,)"),
        (_ds(np.zeros((0, 3))), InvalidDataError, "empty"),
        (_ds(np.array([[0, 1, np.inf], [0, 0, 0]])), InvalidDataError, "first at row 0"),
        (_ds(np.zeros((2, 3)), [0, 2]), InvalidDataError, "label 2"),
        (_ds(np.zeros((2, 3)), [0, -1]), InvalidDataError, ">= 0"),
        (_ds(np.array([["a", "b", "c"]] * 2)), InvalidDataError, "numeric"),
    ],
)
def test_unscorable_data_is_refused(ds: Dataset, error: type, needle: str) -> None:
    with pytest.raises(error, match=None) as info:
        validate_for_model(ds, _Model())  # type: ignore[arg-type]
    assert needle in str(info.value)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [([0.0, 2.0], [0, 2]), ([[1], [0]], [1, 0]), ([True, False], [1, 0])],
)
def test_as_labels_accepts_integer_valued_input(raw: list[object], expected: list[int]) -> None:
    y = as_labels(np.array(raw), 2, "d")
    assert y.dtype == np.int64 and y.tolist() == expected


@pytest.mark.parametrize(
    ("raw", "n", "needle"),
    [([0.0, np.nan], 2, "NaN"), ([0.0, 0.5], 2, "fractional"), (["a", "b"], 2, "integers"),
     ([0, 1], 3, "3 samples"), ([[0, 1], [1, 0]], 2, "one integer label")],
)
def test_as_labels_refuses_what_is_not_a_class_index(raw: list[object], n: int,
                                                     needle: str) -> None:
    with pytest.raises(InvalidDataError, match=needle):
        as_labels(np.array(raw), n, "d")
