import numpy as np
from sklearn.metrics import roc_auc_score

from bastion.attacks.poisoning import PoisonResult
from bastion.detection.poisoning import KNNLabelConsistency


def test_flipped_labels_disagree_with_their_neighbours(flipped: PoisonResult) -> None:
    d = KNNLabelConsistency()(flipped.x, flipped.y)
    assert roc_auc_score(flipped.mask, d.scores) >= 0.97
    assert d.flagged[flipped.mask].mean() >= 0.9
    assert d.flagged[~flipped.mask].mean() <= 0.08


def test_exact_duplicates_do_not_count_themselves() -> None:
    x = np.array([[0.0], [0.0], [0.0], [10.0], [10.0], [10.0]])
    y = np.array([0, 0, 1, 1, 1, 1])
    d = KNNLabelConsistency(k=2)(x, y)
    assert d.scores[2] == 1.0 and d.flagged[2]
    assert not d.flagged[3:].any()
