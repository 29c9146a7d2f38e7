import numpy as np
import pytest

from bastion.detection.drift import KSDrift, MMDDrift, _mmd2_unbiased
from bastion.errors import ConfigError, InvalidDataError, ShapeMismatchError


def _digits() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    from bastion.data.demo import demo_digits

    train, test = demo_digits(0)
    assert test.y is not None
    return train.x, test.x, test.y


def test_ks_flags_brightened_digits_not_held_out_ones() -> None:
    train, test, _ = _digits()
    clean = KSDrift()(train, test[:200])
    shifted = KSDrift()(train, np.clip(test[:200] + 0.15, 0, 1))
    assert not clean.drift and clean.p_value >= 0.05
    assert shifted.drift and shifted.p_value < 1e-6
    assert len(shifted.drifted_features) > 20


def test_ks_names_the_one_feature_that_moved() -> None:
    rng = np.random.default_rng(0)
    ref, new = rng.normal(size=(500, 6)), rng.normal(size=(300, 6))
    new[:, 4] += 0.5
    for correction in ("bonferroni", "fdr"):
        result = KSDrift(correction=correction)(ref, new)  # type: ignore[arg-type]
        assert result.drift
        assert result.drifted_features.tolist() == [4]


def test_fdr_is_never_stricter_than_bonferroni() -> None:
    rng = np.random.default_rng(1)
    ref, new = rng.normal(size=(200, 10)), rng.normal(0.1, 1, size=(200, 10))
    bonf = KSDrift(correction="bonferroni")(ref, new).feature_p_values
    fdr = KSDrift(correction="fdr")(ref, new).feature_p_values
    assert bonf is not None and fdr is not None
    assert np.all(fdr <= bonf + 1e-12)


def test_ks_false_alarms_stay_near_alpha_on_clean_windows() -> None:
    rng = np.random.default_rng(2)
    ref = rng.normal(size=(1000, 8))
    alarms = sum(KSDrift(alpha=0.05)(ref, rng.normal(size=(100, 8))).drift for _ in range(200))
    assert alarms <= 20  # family-wise 5 %: about 10 of 200 expected, Bonferroni is below


def test_mmd_sees_a_joint_change_that_leaves_marginals_alone() -> None:
    rng = np.random.default_rng(3)
    ref = rng.normal(size=(400, 2))
    z = rng.normal(size=200)
    correlated = np.stack([z, z + 0.1 * rng.normal(size=200)], axis=1)  # same N(0,1) marginals
    gen = np.random.default_rng(0)
    assert MMDDrift()(ref, correlated, generator=gen).drift
    assert not KSDrift()(ref, correlated).drift  # per-feature KS is blind to this


def test_mmd_flags_shifted_digits_not_held_out_ones() -> None:
    train, test, labels = _digits()
    gen = np.random.default_rng(0)
    assert not MMDDrift()(train, test[:100], generator=gen).drift
    shifted = MMDDrift()(train, np.clip(test[:100] + 0.1, 0, 1), generator=gen)
    assert shifted.drift and shifted.p_value <= 1 / 201
    only_zeros_and_ones = test[np.isin(labels, [0, 1])][:60]  # label shift, natural images
    assert MMDDrift()(train, only_zeros_and_ones, generator=gen).drift


def test_mmd_false_alarms_stay_near_alpha() -> None:
    rng = np.random.default_rng(4)
    ref = rng.normal(size=(300, 4))
    test = MMDDrift(n_permutations=100, max_reference=300)
    alarms = sum(test(ref, rng.normal(size=(60, 4)), generator=rng).drift for _ in range(40))
    assert alarms <= 6  # 2 expected at 5 %; P(more than 6) < 0.5 %


def test_permutation_mmd_matches_the_naive_formula() -> None:
    rng = np.random.default_rng(5)
    x = rng.normal(size=(7, 3))
    kernel = np.exp(-((x[:, None] - x[None]) ** 2).sum(-1) / 2)
    mask = np.zeros((1, 7))
    first = [0, 2, 3]
    mask[0, first] = 1
    second = [i for i in range(7) if i not in first]

    def mean_off(a: list[int], b: list[int]) -> float:
        vals = [kernel[i, j] for i in a for j in b if i != j]
        return float(np.mean(vals))

    naive = mean_off(first, first) + mean_off(second, second) - 2 * mean_off(first, second)
    assert _mmd2_unbiased(kernel, mask, 3)[0] == pytest.approx(naive)


def test_same_seed_same_p_value() -> None:
    rng = np.random.default_rng(6)
    ref, new = rng.normal(size=(200, 3)), rng.normal(0.2, 1, size=(50, 3))
    a = MMDDrift()(ref, new, generator=np.random.default_rng(7))
    b = MMDDrift()(ref, new, generator=np.random.default_rng(7))
    assert a.p_value == b.p_value


@pytest.mark.parametrize(("ref", "new", "error"), [
    (np.zeros((10, 3)), np.zeros((10, 4)), ShapeMismatchError),
    (np.zeros((10, 3)), np.full((10, 3), np.nan), InvalidDataError),
    (np.zeros((1, 3)), np.zeros((10, 3)), InvalidDataError),
])
def test_bad_input_is_a_one_line_error(ref: np.ndarray, new: np.ndarray,
                                       error: type[Exception]) -> None:
    with pytest.raises(error):
        KSDrift()(ref, new)
    with pytest.raises(error):
        MMDDrift()(ref, new, generator=np.random.default_rng(0))


@pytest.mark.parametrize("kwargs", [{"alpha": 0.0}, {"alpha": 1.5}, {"n_permutations": 0},
                                    {"bandwidth": -1.0}])
def test_bad_parameters_are_config_errors(kwargs: dict[str, float]) -> None:
    with pytest.raises(ConfigError):
        MMDDrift(**kwargs)  # type: ignore[arg-type]
