import numpy as np
import pytest

from bastion.detection.poisoning import Detection, KNNLabelConsistency
from bastion.errors import InvalidDataError, ShapeMismatchError


def test_indices_are_flagged_rows_most_suspicious_first() -> None:
    d = Detection(scores=np.array([0.1, 0.9, 0.5, 0.7]),
                  flagged=np.array([False, True, True, True]), threshold="t")
    np.testing.assert_array_equal(d.indices, [1, 3, 2])


@pytest.mark.parametrize(("x", "y", "error"), [
    (np.zeros((4, 2)), None, InvalidDataError),
    (np.zeros((4, 2)), np.array([0, 1, 0]), ShapeMismatchError),
    (np.array([[0.0], [np.nan], [1.0], [2.0]]), np.array([0, 1, 0, 1]), InvalidDataError),
    (np.zeros((4, 2)), np.zeros(4), InvalidDataError),
])
def test_bad_input_is_a_one_line_error(x: np.ndarray, y: np.ndarray | None,
                                       error: type[Exception]) -> None:
    with pytest.raises(error) as info:
        KNNLabelConsistency()(x, y)
    assert "\n" not in str(info.value)
