import numpy as np
from sklearn.metrics import roc_auc_score

from bastion.attacks.poisoning import PoisonResult
from bastion.detection.poisoning import ActivationClustering


def test_flags_the_backdoor_cluster(backdoored: PoisonResult) -> None:
    d = ActivationClustering()(backdoored.x, backdoored.y)
    assert roc_auc_score(backdoored.mask, d.scores) >= 0.99
    assert d.flagged[backdoored.mask].mean() >= 0.95
    assert d.flagged[~backdoored.mask].mean() <= 0.02


def test_a_single_blob_per_class_is_not_flagged() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 6))
    y = np.repeat([0, 1, 2], 100)
    x[y == 1] += 5.0
    assert not ActivationClustering()(x, y).flagged.any()


def test_ica_reduction_and_determinism(backdoored: PoisonResult) -> None:
    ac = ActivationClustering(reduce="ica", n_components=5)
    a, b = ac(backdoored.x, backdoored.y), ac(backdoored.x, backdoored.y)
    np.testing.assert_array_equal(a.scores, b.scores)
    assert roc_auc_score(backdoored.mask, a.scores) >= 0.9
