import numpy as np
import pytest

from bastion.attacks.poisoning import LabelFlip
from bastion.errors import InvalidDataError


def _data() -> tuple[np.ndarray, np.ndarray]:
    y = np.repeat(np.arange(4), 50)
    return np.arange(200.0).reshape(200, 1), y


def test_random_flip_changes_exactly_the_reported_rows() -> None:
    x, y = _data()
    res = LabelFlip(fraction=0.1)(x, y, generator=np.random.default_rng(0))
    assert len(res.indices) == 20
    changed = np.flatnonzero(res.y != y)
    np.testing.assert_array_equal(changed, res.indices)
    np.testing.assert_array_equal(res.x, x)
    assert set(np.unique(res.y)) <= set(range(4))


def test_targeted_flip_moves_source_to_target() -> None:
    x, y = _data()
    res = LabelFlip(fraction=0.1, source=1, target=3)(x, y, generator=np.random.default_rng(0))
    assert (y[res.indices] == 1).all() and (res.y[res.indices] == 3).all()
    assert res.mask.sum() == 20


def test_same_seed_same_result_and_input_untouched() -> None:
    x, y = _data()
    before = y.copy()
    a = LabelFlip(fraction=0.05)(x, y, generator=np.random.default_rng(3))
    b = LabelFlip(fraction=0.05)(x, y, generator=np.random.default_rng(3))
    np.testing.assert_array_equal(a.y, b.y)
    np.testing.assert_array_equal(y, before)


@pytest.mark.parametrize("flip", [LabelFlip(fraction=0.0), LabelFlip(fraction=1.0),
                                  LabelFlip(fraction=0.5, source=1, target=0)])
def test_bad_settings_raise(flip: LabelFlip) -> None:
    x, y = _data()
    with pytest.raises(InvalidDataError):
        flip(x, y, generator=np.random.default_rng(0))
