import numpy as np
from sklearn.metrics import roc_auc_score

from bastion.attacks.poisoning import PoisonResult
from bastion.detection.poisoning import SpectralSignatures


def test_ranks_backdoor_rows_high(backdoored: PoisonResult) -> None:
    d = SpectralSignatures()(backdoored.x, backdoored.y)
    assert roc_auc_score(backdoored.mask, d.scores) >= 0.9
    assert d.flagged[~backdoored.mask].mean() <= 0.08  # 1.5 x 5 % removed per class


def test_removes_one_and_a_half_times_the_expected_fraction_per_class() -> None:
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(200, 5)), np.repeat([0, 1], 100)
    d = SpectralSignatures(expected_fraction=0.1)(x, y)
    assert d.flagged[y == 0].sum() == 15 and d.flagged[y == 1].sum() == 15


def test_finds_a_planted_direction() -> None:
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(300, 8)), np.repeat([0, 1, 2], 100)
    x[:10, 0] += 8.0  # ten rows of class 0 shifted along one axis
    d = SpectralSignatures(expected_fraction=0.1)(x, y)
    assert d.flagged[:10].all()
