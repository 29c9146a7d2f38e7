import numpy as np
from sklearn.metrics import roc_auc_score

from bastion.detection.poisoning import IsolationDetector


def test_isolated_rows_score_high_and_are_flagged() -> None:
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(400, 6)), np.repeat([0, 1], 200)
    planted = np.r_[3, 17, 250, 399]
    x[planted] += rng.choice([-6.0, 6.0], size=(4, 6))  # far from their class on every axis
    d = IsolationDetector()(x, y)
    truth = np.isin(np.arange(400), planted)
    assert d.flagged[planted].all()
    assert d.flagged[~truth].mean() <= 0.06
    assert roc_auc_score(truth, d.scores) >= 0.99


def test_scores_are_per_class() -> None:
    rng = np.random.default_rng(1)
    # Class 1 sits far from class 0 but is ordinary among its own rows: nothing to flag.
    x = np.r_[rng.normal(size=(150, 4)), rng.normal(loc=20.0, size=(150, 4))]
    d = IsolationDetector()(x, np.repeat([0, 1], 150))
    assert d.flagged.mean() <= 0.06
    assert 0.3 < float(np.median(d.scores)) < 0.55


def test_same_seed_same_scores() -> None:
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(100, 3)), np.repeat([0, 1], 50)
    np.testing.assert_array_equal(IsolationDetector(seed=3)(x, y).scores,
                                  IsolationDetector(seed=3)(x, y).scores)
