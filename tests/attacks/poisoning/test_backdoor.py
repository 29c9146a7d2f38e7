import numpy as np
import pytest

from bastion.attacks.poisoning import BadNets, Blended
from bastion.errors import InvalidDataError


def test_badnets_image_patch_in_corner_and_relabelled() -> None:
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 0.5, size=(100, 1, 8, 8)).astype(np.float32)
    y = rng.integers(0, 3, size=100)
    res = BadNets(target=2, fraction=0.1, patch_size=2)(x, y, generator=rng)
    assert len(res.indices) == 10 and (y[res.indices] != 2).all()
    assert (res.y[res.indices] == 2).all()
    assert (res.x[res.indices][..., -2:, -2:] == 1.0).all()
    np.testing.assert_array_equal(res.x[res.indices][..., :6, :], x[res.indices][..., :6, :])
    clean = np.setdiff1d(np.arange(100), res.indices)
    np.testing.assert_array_equal(res.x[clean], x[clean])
    assert res.x.dtype == np.float32


def test_badnets_tabular_sets_last_features() -> None:
    x = np.zeros((50, 6))
    y = np.repeat([0, 1], 25)
    attack = BadNets(target=1, fraction=0.2, patch_size=2, value=5.0, image=False)
    res = attack(x, y, generator=np.random.default_rng(1))
    assert (res.x[res.indices][:, -2:] == 5.0).all() and (res.x[res.indices][:, :4] == 0).all()
    assert (attack.apply(x)[:, -2:] == 5.0).all()


def test_blended_mixes_the_same_pattern_at_train_and_test_time() -> None:
    x = np.zeros((40, 4, 4))
    y = np.repeat([0, 1], 20)
    attack = Blended(target=0, fraction=0.25, alpha=0.3)
    res = attack(x, y, generator=np.random.default_rng(0))
    np.testing.assert_allclose(res.x[res.indices], attack.apply(x[res.indices]))
    assert np.allclose(res.x[res.indices], 0.3 * attack.pattern((4, 4)))


@pytest.mark.parametrize("attack", [BadNets(patch_size=9), BadNets(patch_size=99, image=False),
                                    Blended(alpha=0.0)])
def test_bad_settings_raise(attack: BadNets | Blended) -> None:
    x, y = np.zeros((20, 8, 8)), np.repeat([0, 1], 10)
    with pytest.raises(InvalidDataError):
        attack(x, y, generator=np.random.default_rng(0))
