import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from bastion.attacks.poisoning import AdversarialLabelFlip, LabelFlip
from bastion.data.demo import demo_breast_cancer
from bastion.errors import InvalidDataError


def _test_accuracy(x: np.ndarray, y: np.ndarray, xt: np.ndarray, yt: np.ndarray) -> float:
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)).fit(x, y)
    return float(model.score(xt, yt))


def test_hurts_test_accuracy_more_than_random_flips() -> None:
    train, test = demo_breast_cancer(0)
    assert train.y is not None and test.y is not None
    adv = AdversarialLabelFlip(fraction=0.1)(train.x, train.y,
                                             generator=np.random.default_rng(0))
    randoms = [_test_accuracy(train.x, LabelFlip(fraction=0.1)(
        train.x, train.y, generator=np.random.default_rng(s)).y, test.x, test.y)
        for s in range(3)]
    assert _test_accuracy(train.x, adv.y, test.x, test.y) < min(randoms) - 0.05


def test_flips_exactly_the_reported_rows_to_another_label() -> None:
    train, _ = demo_breast_cancer(0)
    assert train.y is not None
    res = AdversarialLabelFlip(fraction=0.05)(train.x, train.y,
                                              generator=np.random.default_rng(0))
    assert len(res.indices) == round(0.05 * len(train.y))
    assert (res.y[res.indices] != train.y[res.indices]).all()
    np.testing.assert_array_equal(res.y[~res.mask], train.y[~res.mask])
    np.testing.assert_array_equal(res.x, train.x)


def test_picks_the_rows_the_model_is_surest_of() -> None:
    # Two 1-d blobs; the rows farthest from the boundary carry the largest loss gain.
    x = np.r_[np.linspace(-5, -0.5, 50), np.linspace(0.5, 5, 50)][:, None]
    y = np.repeat([0, 1], 50)
    res = AdversarialLabelFlip(fraction=0.04)(x, y, generator=np.random.default_rng(0))
    assert sorted(res.indices.tolist()) == [0, 1, 98, 99]


def test_one_class_is_refused() -> None:
    with pytest.raises(InvalidDataError):
        AdversarialLabelFlip()(np.zeros((10, 2)), np.zeros(10, dtype=int),
                               generator=np.random.default_rng(0))
