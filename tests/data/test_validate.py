from dataclasses import dataclass

import numpy as np
import pytest

from bastion.data import Dataset
from bastion.data.validate import validate_for_model
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
    ],
)
def test_unscorable_data_is_refused(ds: Dataset, error: type, needle: str) -> None:
    with pytest.raises(error, match=None) as info:
        validate_for_model(ds, _Model())  # type: ignore[arg-type]
    assert needle in str(info.value)


def test_demo_splits_are_seeded_and_stratified() -> None:
    from bastion.data.demo import demo_breast_cancer, demo_digits

    a_train, a_test = demo_digits(seed=1)
    b_train, _ = demo_digits(seed=1)
    np.testing.assert_array_equal(a_train.x, b_train.x)
    assert a_train.x.shape[1:] == (1, 8, 8) and a_train.x.min() >= 0 and a_train.x.max() <= 1
    assert len(a_train) + len(a_test) == 1797
    assert a_test.y is not None and set(a_test.y.tolist()) == set(range(10))
    train, test = demo_breast_cancer()
    assert train.feature_names[0] == "mean radius" and train.class_names == ("malignant", "benign")
    assert train.y is not None and test.y is not None
    assert abs(train.y.mean() - test.y.mean()) < 0.02
